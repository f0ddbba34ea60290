"""docs/evaluation.md §5 metrics.

Each module holds a numpy metric (states + ``update`` + ``compute``, see :mod:`.accumulate`) that scoring
runs without importing torch; this package exports their rank-synced ``torchmetrics.Metric`` twins
(:mod:`.synced`), imported on first use.
"""

from __future__ import annotations

from typing import Any

from stg_lightning.eval.metrics.spatial import MaskConfig

_SYNCED = ("IoUPointing", "PointingGame", "SpatialMAP", "TemporalAlignment", "VideoMAP")
__all__ = ["MaskConfig", *_SYNCED]


def __getattr__(name: str) -> Any:
    if name in _SYNCED:
        from stg_lightning.eval.metrics import synced

        return getattr(synced, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
