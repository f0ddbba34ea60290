"""GroundingModule: backbone (or cached tokens) → frame selection → global + local heads → NCE losses."""

from __future__ import annotations

import random
from dataclasses import asdict, is_dataclass
from typing import Any, TypeVar

import lightning as L
import numpy as np
import torch
from torch import Tensor

from stg_lightning.backbones import BackboneConfig, build_backbone
from stg_lightning.losses import LossConfig, grounding_loss
from stg_lightning.model import GlobalHead, GlobalHeadConfig, LocalHead, LocalHeadConfig
from stg_lightning.optim import OptimConfig, build_optimizer, build_param_groups
from stg_lightning.selection import FrameSelector, SelectionConfig
from stg_lightning.selection.selector import head_projections
from stg_lightning.tokens import FrameTokens, TextTokens

ConfigT = TypeVar("ConfigT")


def as_config(value: ConfigT | dict[str, Any] | None, cls: type[ConfigT]) -> ConfigT:
    """Accept a config dataclass, a plain dict (checkpoint hparams) or None (defaults)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls(**value)
    raise TypeError(f"expected {cls.__name__} or dict, got {type(value).__name__}")


def _numpy_state_to_safe(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return (name, torch.from_numpy(keys.copy()), int(pos), int(has_gauss), float(cached))


class GroundingModule(L.LightningModule):
    """The paper's global-local model trained with frame selection and symmetric NCE (DESIGN §3)."""

    def __init__(
        self,
        backbone: BackboneConfig | None = None,
        selection: SelectionConfig | None = None,
        global_head: GlobalHeadConfig | None = None,
        local_head: LocalHeadConfig | None = None,
        loss: LossConfig | None = None,
        optim: OptimConfig | None = None,
    ) -> None:
        super().__init__()
        self.backbone_cfg = as_config(backbone, BackboneConfig)
        self.selection_cfg = as_config(selection, SelectionConfig)
        self.global_head_cfg = as_config(global_head, GlobalHeadConfig)
        self.local_head_cfg = as_config(local_head, LocalHeadConfig)
        self.loss_cfg = as_config(loss, LossConfig)
        self.optim_cfg = as_config(optim, OptimConfig)
        self.save_hyperparameters(
            {
                name: asdict(cfg) if is_dataclass(cfg) else cfg
                for name, cfg in {
                    "backbone": self.backbone_cfg,
                    "selection": self.selection_cfg,
                    "global_head": self.global_head_cfg,
                    "local_head": self.local_head_cfg,
                    "loss": self.loss_cfg,
                    "optim": self.optim_cfg,
                }.items()
            }
        )
        self.backbone = build_backbone(self.backbone_cfg)
        video_dim = (
            self.backbone.frame_dim
            if self.global_head_cfg.frame_pooling == "cls"
            else self.backbone.patch_dim
        )
        self.global_head = GlobalHead(video_dim, self.backbone.sentence_dim, self.global_head_cfg)
        self.local_head = LocalHead(self.backbone.patch_dim, self.backbone.word_dim, self.local_head_cfg)
        self.selector = FrameSelector(self.selection_cfg)
        # A head whose loss is switched off (Table 6) gets no gradient: freezing it keeps plain DDP working.
        self.global_head.requires_grad_(self.loss_cfg.global_weight > 0)
        self.local_head.requires_grad_(self.loss_cfg.local_weight > 0)

    # ----------------------------------------------------------------------------------------- tokens
    def encode_batch(self, batch: dict[str, Any]) -> tuple[FrameTokens, Tensor, TextTokens]:
        """Tokens of a batch: cached backbone outputs when the DataModule provides them, else computed."""
        frame_mask = batch["frame_mask"].bool()
        if "frame_global" in batch:
            frames = FrameTokens(
                batch["frame_global"].float(), batch["frame_patches"].float(), self.backbone.grid
            )
        else:
            frames = self.backbone.encode_frames(batch["frames"])
            # Video backbones with a temporal stride (S3D: one token per 8 frames) keep a step if any frame is real.
            frame_mask = frame_mask.unflatten(1, (-1, self.backbone.temporal_stride)).any(-1)
        if "sentence" in batch:
            text = TextTokens(batch["sentence"].float(), batch["words"].float(), batch["word_mask"].bool())
        elif "text_ids" in batch and self.backbone_cfg.kind == "open_clip":
            text = self.backbone.encode_text(batch["text_ids"])
        else:  # backbones with their own tokenizer (S3D-word2vec) read the raw sentences
            text = self.backbone.encode_text(self.backbone.tokenize(batch["text"]).to(frame_mask.device))
        return frames, frame_mask, text

    # ----------------------------------------------------------------------------------------- losses
    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Loss terms and selection statistics of one batch (DESIGN §3.2–3.5)."""
        frames, frame_mask, text = self.encode_batch(batch)
        selection = self.selector(
            frames,
            frame_mask,
            text,
            **head_projections(self.selection_cfg, self.global_head, self.local_head),
        )
        video = self.global_head.encode_video(frames, frame_mask, selection.indices, selection.mask)
        sentence = self.global_head.project_text(text.sentence)
        selected = frames.select(selection.indices)
        out = grounding_loss(
            self.loss_cfg,
            video,
            sentence,
            self.local_head,
            selected.patches,
            selection.mask,
            text.words,
            text.word_mask,
        )
        for key, value in selection.stats.items():
            out[f"select/{key}"] = value
        return out

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

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        out = self.compute_losses(batch)
        if not torch.isfinite(out["loss"]):
            raise FloatingPointError(
                f"non-finite training loss at step {self.global_step} "
                f"(videos {batch.get('video_id', [])[:4]}); lower optim.head_lr or check the input data"
            )
        self._log_losses(out, "train", batch["frame_mask"].shape[0])
        return out["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._log_losses(self.compute_losses(batch), "val", batch["frame_mask"].shape[0])

    # ----------------------------------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> dict[str, Any]:
        groups = build_param_groups([self.global_head, self.local_head], self.backbone, self.optim_cfg)
        optimizer, scheduler = build_optimizer(
            groups, self.optim_cfg, total_steps=int(self.trainer.estimated_stepping_batches)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ----------------------------------------------------------------------------------------- exact resume
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning restores optimiser, scheduler and step; RNG streams are ours to keep for an exact resume.
        checkpoint["rng_state"] = {
            "python": random.getstate(),
            # numpy's state as plain types + a tensor, so checkpoints stay loadable with weights_only=True
            "numpy": _numpy_state_to_safe(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("rng_state")
        if state is None:
            return
        random.setstate(state["python"])
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if state["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
