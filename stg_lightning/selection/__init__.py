"""Frame selection (DESIGN §3.2): Sinkhorn optimal transport and baseline strategies."""

from stg_lightning.selection.selector import (
    FrameSelector,
    SelectionConfig,
    SelectionResult,
    head_projections,
    top_frames,
)
from stg_lightning.selection.sinkhorn import plan_entropy, sinkhorn

__all__ = [
    "FrameSelector",
    "SelectionConfig",
    "SelectionResult",
    "head_projections",
    "plan_entropy",
    "sinkhorn",
    "top_frames",
]
