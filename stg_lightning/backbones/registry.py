"""Backbone registry: config class → implementation."""

from __future__ import annotations

from collections.abc import Callable

from stg_lightning.backbones.base import Backbone
from stg_lightning.backbones.config import BackboneConfig, OpenClipConfig, S3DConfig
from stg_lightning.backbones.open_clip_backbone import OpenClipBackbone
from stg_lightning.backbones.s3d_backbone import S3DWord2VecBackbone

BACKBONES: dict[type, Callable[[BackboneConfig], Backbone]] = {
    OpenClipConfig: OpenClipBackbone,
    S3DConfig: S3DWord2VecBackbone,
}


def build_backbone(cfg: BackboneConfig) -> Backbone:
    """Instantiate the backbone `cfg` configures (frozen unless `cfg.finetune`)."""
    if type(cfg) not in BACKBONES:
        raise TypeError(
            f"model.backbone: {type(cfg).__name__} is not a backbone config; "
            f"choose one of {[c.__name__ for c in BACKBONES]}"
        )
    return BACKBONES[type(cfg)](cfg)
