"""Seeded prediction sets over a GroundingYouTube dataset: what ``bench_eval.py`` scores.

Each set stresses one part of the protocol (docs/evaluation.md §5): random or GT labels with random or
peaked heat, tied scores, plateau and unnormalised heat, a mixture of file defects, and a frames-only
file (no ``grounding`` entries, as an outside model may write).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.records import EvalDataset, VideoRecord

GRID = 7


def _random_label(rec: VideoRecord, rng: np.random.Generator) -> str | None:
    choice = int(rng.integers(len(rec.queries) + 1))
    return rec.queries[choice] if choice < len(rec.queries) else None


def _peaked(rec: VideoRecord, t: int, grid: int = GRID) -> np.ndarray:
    """A Gaussian bump on the grid at the GT box centre (uniform where the second has no box)."""
    if t not in rec.boxes:
        return np.full((grid, grid), 1.0, dtype=np.float32)
    w, h = rec.frame_size
    x1, y1, x2, y2 = rec.boxes[t]
    cx, cy = (x1 + x2) / 2 / w * grid - 0.5, (y1 + y2) / 2 / h * grid - 0.5
    yy, xx = np.mgrid[0:grid, 0:grid]
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 2).astype(np.float32)


def _plateau(rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(4))
    if kind == 0:
        return np.ones((GRID, GRID), dtype=np.float32)
    if kind == 1:  # two equal maxima
        g = rng.random((GRID, GRID)).astype(np.float32) * 0.5
        g.flat[rng.choice(GRID * GRID, 2, replace=False)] = 1.0
        return g
    if kind == 2:  # a plateau block
        g = np.zeros((GRID, GRID), dtype=np.float32)
        r, c = rng.integers(GRID - 2, size=2)
        g[r : r + 3, c : c + 3] = 1.0
        return g
    return np.zeros((GRID, GRID), dtype=np.float32)  # all zero: uniform after normalisation


def _per_second(
    dataset: EvalDataset, seed: int, label: Callable, heat: Callable, score: Callable | None = None
) -> Predictions:
    rng = np.random.default_rng(seed)
    out: Predictions = {}
    for rec in dataset.records:
        frames = []
        for t in range(rec.num_frames):
            lab = label(rec, t, rng)
            s = float(rng.random()) if score is None else score(rec, t, rng)
            frames.append(FramePrediction(t, lab, s, heat=None if lab is None else heat(rec, t, rng)))
        out[rec.video_id] = VideoPredictions(frames=frames, num_frames=rec.num_frames)
    return out


def _with_grounding(dataset: EvalDataset, preds: Predictions, heat: Callable, seed: int) -> Predictions:
    """Add a grounding entry at every GT-boxed second whose frames entry predicts another query."""
    rng = np.random.default_rng(seed + 1)
    for rec in dataset.records:
        video = preds[rec.video_id]
        by_t = {p.t: p for p in video.frames}
        for t in sorted(rec.boxes):
            q = rec.labels.get(t)
            if q is not None and (t not in by_t or by_t[t].label != q):
                video.grounding.append(FramePrediction(t, q, float(rng.random()), heat=heat(rec, t, rng)))
    return preds


def _random_heat(rec: VideoRecord, t: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random((GRID, GRID)).astype(np.float32)


def _gt_label(rec: VideoRecord, t: int, rng: np.random.Generator) -> str | None:
    return rec.labels.get(t)


def _mixture(dataset: EvalDataset, seed: int) -> Predictions:
    """Missing seconds, explicit background, other videos' steps, wrong num_frames, seconds past the end,
    videos without predictions, grounding for a third of the seconds."""
    rng = np.random.default_rng(seed)
    steps = sorted({q for r in dataset.records for q in r.queries})
    out: Predictions = {}
    for v, rec in enumerate(dataset.records):
        if v % 10 == 0:
            continue  # no predictions for this video
        frames, grounding = [], []
        length = max(1, rec.num_frames + int(rng.integers(-10, 11)))
        for t in range(length):
            r = rng.random()
            if r < 0.15:
                continue  # missing second
            if r < 0.3:
                lab = None  # explicit background
            elif r < 0.45:
                lab = steps[int(rng.integers(len(steps)))]  # a step of any video
            else:
                lab = _random_label(rec, rng)
            frames.append(FramePrediction(t, lab, float(rng.random()), heat=_random_heat(rec, t, rng)))
            if t in rec.labels and rng.random() < 0.33:
                grounding.append(
                    FramePrediction(t, rec.labels[t], float(rng.random()), heat=_random_heat(rec, t, rng))
                )
        out[rec.video_id] = VideoPredictions(frames=frames, grounding=grounding, num_frames=length)
    return out


def prediction_sets(dataset: EvalDataset, seed: int = 0) -> dict[str, Predictions]:
    """name → predictions, every set seeded from ``seed``."""
    rand_label = lambda rec, t, rng: _random_label(rec, rng)  # noqa: E731
    return {
        "random_labels_random_heat": _with_grounding(
            dataset, _per_second(dataset, seed, rand_label, _random_heat), _random_heat, seed
        ),
        "gt_labels_random_heat": _per_second(dataset, seed, _gt_label, _random_heat),
        "gt_labels_peaked_heat": _per_second(dataset, seed, _gt_label, lambda rec, t, rng: _peaked(rec, t)),
        "tied_scores": _per_second(dataset, seed, rand_label, _random_heat, score=lambda rec, t, rng: 0.5),
        "plateau_heat": _per_second(dataset, seed, _gt_label, lambda rec, t, rng: _plateau(rng)),
        "unnormalised_heat": _per_second(
            dataset, seed, _gt_label, lambda rec, t, rng: _random_heat(rec, t, rng) * 10 ** rng.uniform(-3, 3)
        ),
        "mixture": _mixture(dataset, seed),
        "frames_only": _per_second(dataset, seed, rand_label, _random_heat),
    }
