"""PretrainModule: CLIP-style image–text training of a tiny open_clip backbone on synthetic pairs.

Loss = global term (frame global token vs caption sentence token) + phrase term (frame global token vs
single-action phrases, hard negatives included: still image level) + patch term (phrase sentence token vs
the frame's patch tokens, pooled by a softmax over patches). All are symmetric InfoNCE with a learnable
logit scale (the two frame-level terms share one); a text is a positive of every frame it is true of
(`data.caption_fits`, phrase keys), so two frames that show the same thing are not pushed apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stg_lightning.backbones import OpenClipBackbone, OpenClipConfig, build_backbone
from stg_lightning.model.patch_pooling import pooled_patch_scores
from stg_lightning.optim import warmup_cosine_factor
from stg_lightning.pretrain.data import caption_fits


@dataclass
class PretrainLossConfig:
    """global_weight / phrase_weight / patch_weight: weights of the three terms (0 turns one off). With
        patch_weight 0 the backbone is trained at the level of the whole frame only, as CLIP is.
    init_temperature: initial softmax temperature of both terms (CLIP: 0.07); the logit scales are learnt,
        clamped at max_logit_scale.
    patch_pool_temperature: temperature of the softmax over patches that pools phrase–patch cosines into one
        frame–phrase score (small: close to the max; 0 = max)."""

    global_weight: float = 1.0
    phrase_weight: float = 0.0
    patch_weight: float = 1.0
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0
    patch_pool_temperature: float = 0.05


@dataclass
class PretrainOptimConfig:
    """AdamW with linear warmup and cosine decay to min_lr_ratio * lr (over the run's max_steps).
    Weight decay skips gains, biases, embeddings and logit scales (as open_clip's training does).
    train_token_embedding: also train the 49k-row BPE embedding (slow on CPU; its random rows already
        tell the few words of the synthetic vocabulary apart)."""

    lr: float = 2e-3
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    train_token_embedding: bool = False


def multi_positive_nce(logits: Tensor, positives: Tensor) -> Tensor:
    """Symmetric InfoNCE over logits [R, C]; each row's (column's) target is uniform over its positives.
    With positives = identity this is CLIP's loss. Every row needs a positive; a column without one (a
    hard-negative text no frame of the batch shows) is a negative for every row and has no column term."""
    target = positives.float()
    if not bool(target.sum(1).all()):
        raise ValueError("multi_positive_nce: a row has no positive")
    rows = -(target / target.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    has_positive = target.sum(0) > 0
    col_target = target[:, has_positive]
    col_log_p = logits[:, has_positive].log_softmax(0)
    cols = -(col_target / col_target.sum(0, keepdim=True) * col_log_p).sum(0).mean()
    return (rows + cols) / 2


class PretrainModule(L.LightningModule):
    """Trains every backbone weight (random init unless `backbone.pretrained`) image–text.

    num_action_keys: how many leading content keys are (verb, object) keys (`ContentKeys`).
    total_steps: length of the learning-rate schedule."""

    def __init__(
        self,
        backbone: OpenClipConfig,
        loss: PretrainLossConfig | None = None,
        optim: PretrainOptimConfig | None = None,
        num_action_keys: int = 0,
        total_steps: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, OpenClipConfig):
            raise ValueError(f"stg pretrain trains open_clip backbones, got {type(backbone).__name__}")
        self.loss_cfg = loss or PretrainLossConfig()
        self.optim_cfg = optim or PretrainOptimConfig()
        self.num_action_keys = num_action_keys
        self.total_steps = total_steps
        self.save_hyperparameters(
            {"backbone": asdict(backbone), "loss": asdict(self.loss_cfg), "optim": asdict(self.optim_cfg)}
        )
        self.backbone: OpenClipBackbone = build_backbone(replace(backbone, finetune=True))
        self.backbone.text.token_embedding.requires_grad_(self.optim_cfg.train_token_embedding)
        init = math.log(1 / self.loss_cfg.init_temperature)
        self.logit_scale = nn.Parameter(torch.tensor(init))
        self.patch_logit_scale = nn.Parameter(torch.tensor(init))

    def _scale(self, param: Tensor) -> Tensor:
        return param.exp().clamp(max=self.loss_cfg.max_logit_scale)

    def embed(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """L2-normalised frame globals [B, D], patches [B, N, D], caption [B, D] and phrase [B * P, D] tokens."""
        frames = self.backbone.encode_frames(self.backbone.normalize(batch["frames"])[:, None])
        captions = self.backbone.encode_text(batch["caption_ids"]).sentence
        phrases = self.backbone.encode_text(batch["phrase_ids"].flatten(0, 1)).sentence
        return {
            "frames": F.normalize(frames.global_[:, 0], dim=-1),
            "patches": F.normalize(frames.patches[:, 0], dim=-1),
            "captions": F.normalize(captions, dim=-1),
            "phrases": F.normalize(phrases, dim=-1),
        }

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The weighted total and both terms of one batch."""
        cfg = self.loss_cfg
        emb = self.embed(batch)
        action_mask = torch.arange(batch["content"].shape[1], device=self.device) < self.num_action_keys
        fits = caption_fits(batch["content"], batch["caption_keys"], action_mask)
        global_loss = multi_positive_nce(
            self._scale(self.logit_scale) * emb["frames"] @ emb["captions"].T, fits
        )
        named = batch["content"][:, batch["phrase_keys"].flatten()]
        out = {"global": global_loss}
        if cfg.phrase_weight:
            logits = self._scale(self.logit_scale) * emb["frames"] @ emb["phrases"].T
            out["phrase"] = multi_positive_nce(logits, named)
        if cfg.patch_weight:
            scores = pooled_patch_scores(emb["patches"], emb["phrases"], cfg.patch_pool_temperature)
            out["patch"] = multi_positive_nce(self._scale(self.patch_logit_scale) * scores, named)
        weights = {"global": cfg.global_weight, "phrase": cfg.phrase_weight, "patch": cfg.patch_weight}
        out["loss"] = sum(weights[k] * v for k, v in out.items())
        return out

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.losses(batch)
        self.log_dict({f"train/{k}": v.detach() for k, v in out.items()}, prog_bar=True)
        self.log("train/logit_scale", self._scale(self.logit_scale).detach())
        return out["loss"]

    def configure_optimizers(self):
        cfg = self.optim_cfg
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 and "embedding" not in name else no_decay).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
            betas=cfg.betas,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: warmup_cosine_factor(step, self.total_steps, cfg.warmup_steps, cfg.min_lr_ratio),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def open_clip_state_dict(self) -> dict[str, Tensor]:
        """The trained backbone under open_clip's key names, with the learnt global logit scale."""
        self.backbone.logit_scale.copy_(
            self.logit_scale.detach().clamp(max=math.log(self.loss_cfg.max_logit_scale))
        )
        return {k: v.detach().cpu().clone() for k, v in self.backbone.open_clip_state_dict().items()}
