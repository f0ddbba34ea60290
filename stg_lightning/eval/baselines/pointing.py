"""What the spatial baselines share: the seconds the trimmed pointing game scores, a point per second.

A spatial baseline answers the trimmed pointing game only: one ``grounding`` entry per boxed GT second
(label = the GT step, a ``point``; no heat, no box, no temporal labels), so it fills the ``pointing``
column and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.records import EvalDataset, VideoRecord

Point = tuple[float, float]


def pointing_seconds(record: VideoRecord) -> list[tuple[int, str]]:
    """The (second, GT query) pairs the pointing game scores: boxed seconds inside a GT step."""
    return [(t, record.labels[t]) for t in sorted(record.boxes) if t in record.labels]


def pointing_predictions(
    dataset: EvalDataset, point_of: Callable[[VideoRecord, int], Point | None]
) -> Predictions:
    """One ``grounding`` entry (GT query, ``point_of(record, t)``) per scored second of every video."""
    out: Predictions = {}
    for rec in dataset.records:
        entries = [FramePrediction(t, q, 1.0, point=point_of(rec, t)) for t, q in pointing_seconds(rec)]
        out[rec.video_id] = VideoPredictions(grounding=entries)
    return out
