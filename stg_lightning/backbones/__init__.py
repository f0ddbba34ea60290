"""Video/text backbones (docs/method.md §1): open_clip (+ tiny registered configs) and S3D-word2vec."""

from stg_lightning.backbones.base import Backbone
from stg_lightning.backbones.checkpoints import BackboneWeightsUnavailable
from stg_lightning.backbones.config import (
    BackboneConfig,
    InputSpec,
    OpenClipConfig,
    S3DConfig,
    backbone_config,
    config_to_dict,
)
from stg_lightning.backbones.open_clip_backbone import OpenClipBackbone
from stg_lightning.backbones.registry import BACKBONES, build_backbone
from stg_lightning.backbones.s3d_backbone import S3DWord2VecBackbone
from stg_lightning.backbones.tiny_configs import TINY_MODELS, register_tiny_configs

register_tiny_configs()

__all__ = [
    "BACKBONES",
    "TINY_MODELS",
    "Backbone",
    "BackboneConfig",
    "BackboneWeightsUnavailable",
    "InputSpec",
    "OpenClipBackbone",
    "OpenClipConfig",
    "S3DConfig",
    "S3DWord2VecBackbone",
    "backbone_config",
    "build_backbone",
    "config_to_dict",
    "register_tiny_configs",
]
