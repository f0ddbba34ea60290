"""The grounding model (docs/method.md §3–§4): heads, attention rollout, and `GroundingModel`, their API."""

from stg_lightning.model.global_head import GlobalHead, GlobalHeadConfig, masked_mean
from stg_lightning.model.grounding_model import GroundingModel, GroundingOutput, PairScores, Queries
from stg_lightning.model.local_head import LocalHead, LocalHeadConfig
from stg_lightning.model.rollout import rollout_heatmap

__all__ = [
    "GlobalHead",
    "GlobalHeadConfig",
    "GroundingModel",
    "GroundingOutput",
    "LocalHead",
    "LocalHeadConfig",
    "PairScores",
    "Queries",
    "masked_mean",
    "rollout_heatmap",
]
