"""docs/evaluation.md §5 metrics as rank-synced ``torchmetrics.Metric`` subclasses."""

from stg_lightning.eval.metrics.iou_pointing import IoUPointing
from stg_lightning.eval.metrics.pointing import PointingGame
from stg_lightning.eval.metrics.spatial import MaskConfig
from stg_lightning.eval.metrics.spatial_map import SpatialMAP
from stg_lightning.eval.metrics.temporal import TemporalAlignment
from stg_lightning.eval.metrics.video_map import VideoMAP

__all__ = ["IoUPointing", "MaskConfig", "PointingGame", "SpatialMAP", "TemporalAlignment", "VideoMAP"]
