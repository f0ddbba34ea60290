"""Backbone pretraining (`stg pretrain`): a tiny open_clip model trained image–text on synthetic frames,
the stand-in for CLIP's pretraining; its weights load frozen via `OpenClipConfig(pretrained=<file>)`.
The command itself (config, run, report) is in `stg_lightning.pretrain.cli`."""

from stg_lightning.pretrain.data import PairSet, PretrainDataConfig, draw_pairs
from stg_lightning.pretrain.module import PretrainLossConfig, PretrainModule, PretrainOptimConfig
from stg_lightning.pretrain.probe import (
    PointingSet,
    ProbeConfig,
    draw_pointing_set,
    probe,
    zero_shot_pointing,
    zero_shot_retrieval,
    zero_shot_verb_choice,
)

__all__ = [
    "PairSet",
    "PointingSet",
    "PretrainDataConfig",
    "PretrainLossConfig",
    "PretrainModule",
    "PretrainOptimConfig",
    "ProbeConfig",
    "draw_pairs",
    "draw_pointing_set",
    "probe",
    "zero_shot_pointing",
    "zero_shot_retrieval",
    "zero_shot_verb_choice",
]
