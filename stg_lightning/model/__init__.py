"""Grounding heads (DESIGN §3.3–3.4) and attention rollout (§4)."""

from stg_lightning.model.global_head import GlobalHead, GlobalHeadConfig, masked_mean
from stg_lightning.model.local_head import LocalHead, LocalHeadConfig
from stg_lightning.model.rollout import rollout_heatmap

__all__ = ["GlobalHead", "GlobalHeadConfig", "LocalHead", "LocalHeadConfig", "masked_mean", "rollout_heatmap"]
