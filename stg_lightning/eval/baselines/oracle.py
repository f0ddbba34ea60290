"""The oracle: ground truth as predictions, the ceiling of every metric (and a check of the scoring)."""

from __future__ import annotations

import numpy as np

from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import step_targets


def oracle_predictions(dataset: EvalDataset) -> Predictions:
    """GT as predictions (label = GT step, point = box centre, box = GT box, one-hot step scores)."""
    out: Predictions = {}
    for rec in dataset.records:
        frames = []
        for t, label in sorted(rec.labels.items()):
            box = rec.boxes.get(t)
            point = None if box is None else ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            frames.append(FramePrediction(t, label, 1.0, point=point, box=box))
        gt = step_targets(rec, rec.num_frames)
        step_scores = np.zeros((rec.num_frames, len(rec.segments)))
        step_scores[gt >= 0, gt[gt >= 0]] = 1.0
        out[rec.video_id] = VideoPredictions(frames=frames, step_scores=step_scores)
    return out
