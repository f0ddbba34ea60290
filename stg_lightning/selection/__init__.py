"""Frame selection (docs/method.md §2): Sinkhorn optimal transport and baseline strategies."""

from stg_lightning.selection.selector import (
    FrameSelector,
    SelectionConfig,
    SelectionResult,
    SelectionSpace,
    top_frames,
)
from stg_lightning.selection.sinkhorn import plan_entropy, sinkhorn

__all__ = [
    "FrameSelector",
    "SelectionConfig",
    "SelectionResult",
    "SelectionSpace",
    "plan_entropy",
    "sinkhorn",
    "top_frames",
]
