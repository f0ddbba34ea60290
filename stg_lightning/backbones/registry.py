"""Backbone registry: `BackboneConfig.kind` → implementation."""

from __future__ import annotations

from collections.abc import Callable

from stg_lightning.backbones.base import Backbone
from stg_lightning.backbones.config import BackboneConfig
from stg_lightning.backbones.open_clip_backbone import OpenClipBackbone
from stg_lightning.backbones.s3d_backbone import S3DWord2VecBackbone

BACKBONES: dict[str, Callable[[BackboneConfig], Backbone]] = {
    "open_clip": OpenClipBackbone,
    "s3d_word2vec": S3DWord2VecBackbone,
}


def build_backbone(cfg: BackboneConfig) -> Backbone:
    """Instantiate the backbone named by `cfg.kind` (frozen unless `cfg.finetune`)."""
    if cfg.kind not in BACKBONES:
        raise ValueError(f"model.backbone.kind={cfg.kind!r} is unknown; choose one of {sorted(BACKBONES)}")
    return BACKBONES[cfg.kind](cfg)
