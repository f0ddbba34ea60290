"""MiningYouTube's text-blind baseline: each video's seconds cut into equal consecutive parts, one per step.

As predictions, every second is labelled with its part's step and has one-hot step scores ``[T, S]``.
Scored like a model (Viterbi over the step scores, ``eval/viterbi.py``) they give back the split itself:
a second scores 1 in its own part's step and at most ``background_score`` (< 1; 0.5 by default) or 0
anywhere else, and the split is a valid alignment (every step gets a non-empty run when T ≥ S), so it is
the unique best one.
"""

from __future__ import annotations

import numpy as np

from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.viterbi import BACKGROUND


def uniform_split(num_frames: int, num_steps: int) -> np.ndarray:
    """Text-blind baseline: the frames cut into ``num_steps`` equal consecutive parts, no background."""
    if num_steps == 0:
        return np.full(num_frames, BACKGROUND, dtype=np.int64)
    return np.arange(num_frames) * num_steps // max(num_frames, 1)


def uniform_split_predictions(dataset: EvalDataset) -> Predictions:
    """Per video: the uniform split of its ``num_frames`` seconds over its ordered steps, as labels and
    one-hot step scores."""
    out: Predictions = {}
    for rec in dataset.records:
        steps = [s.query for s in rec.segments]
        split = uniform_split(rec.num_frames, len(steps))
        frames = [
            FramePrediction(t, None if i == BACKGROUND else steps[i], 1.0)
            for t, i in enumerate(split.tolist())
        ]
        step_scores = np.zeros((rec.num_frames, len(steps)))
        inside = split != BACKGROUND
        step_scores[np.flatnonzero(inside), split[inside]] = 1.0
        out[rec.video_id] = VideoPredictions(
            frames=frames, num_frames=rec.num_frames, step_scores=step_scores
        )
    return out
