"""GroundingModule: the LightningModule that trains a GroundingModel on ClipBatches with the NCE losses."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from torch import Tensor

from stg_lightning.backbones import BackboneConfig, backbone_config, config_to_dict
from stg_lightning.config import as_config
from stg_lightning.data.batch import ClipBatch
from stg_lightning.data.text_negatives import TextNegativesConfig, swapped_sentences
from stg_lightning.distributed import within_rank
from stg_lightning.losses import (
    LossConfig,
    chance_levels,
    grounding_loss,
    retrieval_top1,
    swap_top1,
)
from stg_lightning.model import GlobalHeadConfig, GroundingModel, GroundingOutput, LocalHeadConfig
from stg_lightning.model.grounding_model import HEADS
from stg_lightning.optim import OptimConfig, build_optimizer, build_param_groups
from stg_lightning.selection import SelectionConfig
from stg_lightning.tokens import FrameTokens, TextTokens


class GroundingModule(L.LightningModule):
    """Trains a `GroundingModel` (docs/method.md) with frame selection and symmetric NCE.

    The module holds the model and calls its public API; it owns what training adds: the loss, the
    optimiser, logging, the batch format (`ClipBatch`) and step-seeded randomness for an exact resume.
    """

    def __init__(
        self,
        backbone: BackboneConfig | None = None,
        selection: SelectionConfig | None = None,
        global_head: GlobalHeadConfig | None = None,
        local_head: LocalHeadConfig | None = None,
        loss: LossConfig | None = None,
        optim: OptimConfig | None = None,
        negatives: TextNegativesConfig | None = None,
    ) -> None:
        super().__init__()
        backbone_cfg = backbone_config(backbone)
        selection_cfg = as_config(selection, SelectionConfig)
        global_head_cfg = as_config(global_head, GlobalHeadConfig)
        local_head_cfg = as_config(local_head, LocalHeadConfig)
        self.loss_cfg = as_config(loss, LossConfig)
        self.optim_cfg = as_config(optim, OptimConfig)
        self.negatives_cfg = as_config(negatives, TextNegativesConfig)
        # Plain types only: checkpoints stay loadable with weights_only=True and rebuild the same model.
        self.save_hyperparameters(
            {
                "backbone": config_to_dict(backbone_cfg),
                "selection": asdict(selection_cfg),
                "global_head": asdict(global_head_cfg),
                "local_head": asdict(local_head_cfg),
                "loss": asdict(self.loss_cfg),
                "optim": asdict(self.optim_cfg),
                "negatives": asdict(self.negatives_cfg),
            }
        )
        self.model = GroundingModel(backbone_cfg, selection_cfg, global_head_cfg, local_head_cfg)
        # A head whose loss is switched off (Table 6) gets no gradient: freezing it keeps plain DDP working.
        for name, head in zip(HEADS, self.model.heads()):
            head.requires_grad_(name in self.loss_cfg.heads)

    # ----------------------------------------------------------------------------------------- tokens
    def tokens(self, batch: ClipBatch) -> tuple[FrameTokens, Tensor, TextTokens]:
        """Frame tokens, their mask and text tokens of a batch: cached ones when the batch carries them."""
        # Cached tokens arrive as fp16 (as stored): scores are computed in float32.
        if batch.tokens is not None:
            frames, frame_mask = batch.tokens.to(torch.float32), batch.frame_mask.bool()
        else:
            frames, frame_mask = self.model.encode_video(batch.frames, batch.frame_mask)
        if batch.text_tokens is not None:
            text = batch.text_tokens.to(torch.float32)
        else:
            ids = batch.text_ids if batch.text_ids is not None else self.model.tokenize(batch.text)
            text = self.model.encode_text(ids.to(frame_mask.device))
        return frames, frame_mask, text

    # ----------------------------------------------------------------------------------------- losses
    def swapped_text(
        self, batch: ClipBatch, generator: torch.Generator | None = None
    ) -> tuple[TextTokens, Tensor] | tuple[None, None]:
        """Word-swapped negatives of the batch's sentences (`negatives.per_clip` each), encoded by the
        backbone's text tower, and their mask [B, K]; (None, None) when switched off."""
        if not self.negatives_cfg.per_clip:
            return None, None
        sentences, mask = swapped_sentences(batch.text, self.negatives_cfg, generator)
        device = batch.frame_mask.device
        text = self.model.encode_text(self.model.tokenize(sentences).to(device))
        if batch.text_tokens is not None:
            # Positives come cached in fp16: round the negatives alike, so precision tells them nothing.
            text = text.to(torch.float16).to(torch.float32)
        return text, mask.to(device)

    def forward(self, batch: ClipBatch, generator: torch.Generator | None = None) -> GroundingOutput:
        """Selection and the scores of the heads whose loss is on (docs/method.md §2–§5), with the
        word-swapped negatives when they are on (`generator` draws them)."""
        negatives, mask = self.swapped_text(batch, generator)
        return self.model(
            *self.tokens(batch), heads=self.loss_cfg.heads, negatives=negatives, negative_mask=mask
        )

    def compute_losses(self, batch: ClipBatch) -> dict[str, Tensor]:
        """Loss terms and selection statistics of one batch."""
        return self._loss_terms(self(batch))

    def _loss_terms(self, out: GroundingOutput) -> dict[str, Tensor]:
        losses = grounding_loss(self.loss_cfg, out.scores) | chance_levels(self.loss_cfg, out.scores)
        for key, value in out.selection.stats.items():
            losses[f"select/{key}"] = value
        return losses

    def _log_losses(self, out: dict[str, Tensor], stage: str, batch_size: int) -> None:
        on_step = stage == "train"
        for key, value in out.items():
            self.log(
                f"{stage}/{key}",
                value.detach(),
                on_step=on_step,
                on_epoch=not on_step,
                prog_bar=key == "loss",
                batch_size=batch_size,
                sync_dist=not on_step,
            )

    def training_step(self, batch: ClipBatch, batch_idx: int) -> Tensor:
        out = self.compute_losses(batch)
        if not torch.isfinite(out["loss"]):
            raise FloatingPointError(
                f"non-finite training loss at step {self.global_step} "
                f"(videos {batch.video_id[:4]}); lower optim.head_lr or check the input data"
            )
        self._log_losses(out, "train", batch.size)
        return out["loss"]

    def validation_step(self, batch: ClipBatch, batch_idx: int) -> None:
        # Held-out clips are split over ranks by shard, so ranks hold different numbers and sizes of batches:
        # scored within each rank (no gather), the only collective is the epoch-end mean.
        with within_rank():
            # The same swapped sentences at every validation (a generator per held-out batch).
            out = self(batch, torch.Generator().manual_seed(batch_idx))
        losses = self._loss_terms(out)
        # Held-out clip↔sentence retrieval per head; chance is 1 / batch size.
        for head, scores in out.scores.items():
            losses[f"top1_{head}"] = retrieval_top1(scores)
            if scores.negative_mask is not None and scores.negative_mask.any():
                # Own sentence above all its word swaps; chance 1 / (K + 1).
                losses[f"swap_top1_{head}"] = swap_top1(scores)
        losses["chance_top1"] = torch.tensor(1.0 / batch.size)
        self._log_losses(losses, "val", batch.size)

    def test_step(self, batch: ClipBatch, batch_idx: int) -> None:
        with within_rank():
            self._log_losses(self.compute_losses(batch), "test", batch.size)

    def predict_step(self, batch: ClipBatch, batch_idx: int) -> dict[str, Any]:
        """Per clip: the selected frames (indices into the clip, their timestamps) and the clip's own
        (diagonal) score under each head (scored within the rank, as validation)."""
        with within_rank():
            out = self.model(*self.tokens(batch), heads=self.loss_cfg.heads)
        rows = torch.arange(batch.size, device=out.selection.indices.device)
        selected = out.selection.indices.masked_fill(~out.selection.mask, -1)
        # Token time step t starts at frame t·stride (cached tokens: one per frame).
        stride = 1 if batch.tokens is not None else self.model.temporal_stride
        step_times = batch.timestamps.to(selected.device)[:, ::stride]
        clip_times = step_times.gather(1, out.selection.indices)
        return {
            "video_id": batch.video_id,
            "text": batch.text,
            "selected_frames": selected.cpu(),
            "selected_times": clip_times.masked_fill(~out.selection.mask, float("nan")).cpu(),
            **{
                f"score_{head}": scores.video_to_text[rows, rows + scores.offset].detach().cpu()
                for head, scores in out.scores.items()
            },
        }

    # ----------------------------------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> dict[str, Any]:
        groups = build_param_groups(self.model.heads(), self.model.backbone, self.optim_cfg)
        optimizer, scheduler = build_optimizer(
            groups, self.optim_cfg, total_steps=int(self.trainer.estimated_stepping_batches)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ----------------------------------------------------------------------------------------- exact resume
    def on_fit_start(self) -> None:
        self._run_seed = torch.initial_seed()  # what seed_everything set (the same again on resume)

    def on_train_batch_start(self, batch: ClipBatch, batch_idx: int) -> None:
        # The model's random draws at a step (random selection, dropout) depend on (seed, step, rank) only,
        # so a resumed run draws what the uninterrupted one did, whatever ran in between (a validation's
        # DataLoader seeds, the restore itself).
        step_seed = (self._run_seed * 1_000_003 + self.global_step) * 1009 + self.global_rank
        torch.manual_seed(step_seed % 2**63)
