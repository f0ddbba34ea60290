"""Ground your own video (`stg ground`) and look at any predictions file (`stg view`)."""

from stg_lightning.ground.api import GroundOutputs, ViewOutputs, ground_video, view_predictions
from stg_lightning.ground.config import GroundConfig, RenderConfig, ViewConfig

__all__ = [
    "GroundConfig",
    "GroundOutputs",
    "RenderConfig",
    "ViewConfig",
    "ViewOutputs",
    "ground_video",
    "view_predictions",
]
