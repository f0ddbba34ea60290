"""Chance by area: the pointing accuracy of a uniformly random pixel.

Its expected value is computed analytically (:func:`chance_by_area`: the mean over scored GT boxes of the
box's pixels inside the frame over the frame's pixels) and sampled with :func:`random_point_predictions`
as a check. A uniform heat grid is no chance baseline: its argmax is the first pixel.
"""

from __future__ import annotations

import math

import numpy as np

from stg_lightning.eval.baselines.pointing import Point, pointing_predictions, pointing_seconds
from stg_lightning.eval.metrics.spatial import box_areas, box_rects, rects_area
from stg_lightning.eval.predictions import Predictions
from stg_lightning.eval.records import EvalDataset, VideoRecord


def chance_by_area(dataset: EvalDataset) -> float:
    """Expected pointing accuracy of a uniformly random pixel (NaN when no box is scored)."""
    fractions = []
    for rec in dataset.records:
        w, h = rec.frame_size
        boxes = np.array([rec.boxes[t] for t, _ in pointing_seconds(rec)], dtype=np.float64).reshape(-1, 4)
        scored = boxes[box_areas(boxes) > 0]  # zero-area boxes are excluded from pointing
        fractions.extend(rects_area(box_rects(scored, rec.frame_size)) / (w * h))
    return float(np.mean(fractions)) if fractions else math.nan


def random_point_predictions(dataset: EvalDataset, seed: int) -> Predictions:
    """A uniformly random integer pixel per scored second (its expected score is :func:`chance_by_area`)."""
    rng = np.random.default_rng(seed)

    def point(rec: VideoRecord, t: int) -> Point:
        w, h = rec.frame_size
        return float(rng.integers(w)), float(rng.integers(h))

    return pointing_predictions(dataset, point)
