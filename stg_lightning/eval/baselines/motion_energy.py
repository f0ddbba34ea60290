"""Motion energy: point where the frame changed most since the previous second.

The point is the argmax (first maximum, row-major) of the box-filtered absolute difference between the
frames at t and t − 1 s summed over RGB (t = 0 uses the frames at 0 and 1 s), read from the videos
(``<id>.mp4`` or ``<id>/<second>.jpg``, :mod:`stg_lightning.eval.frames`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.pointing import Point, pointing_predictions, pointing_seconds
from stg_lightning.eval.frames import find_video, iter_source_frames
from stg_lightning.eval.predictions import Predictions
from stg_lightning.eval.records import EvalDataset

SMOOTH_FRACTION = 0.05  # box-filter side / frame short side (odd, ≥ 1 px)


def smoothing_size(frame_shape: tuple[int, int], fraction: float) -> int:
    """Odd box-filter side for a ``(h, w)`` frame: ``fraction`` of the short side, at least 1."""
    k = max(1, round(fraction * min(frame_shape)))
    return k if k % 2 else k + 1


def box_filter(image: np.ndarray, kernel: int) -> np.ndarray:
    """Mean over the ``kernel``² window around each pixel (windows cut at the border), by an integral image."""
    r = kernel // 2
    h, w = image.shape
    integral = np.pad(image.astype(np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    y0, y1 = np.clip(np.arange(h) - r, 0, h), np.clip(np.arange(h) + r + 1, 0, h)
    x0, x1 = np.clip(np.arange(w) - r, 0, w), np.clip(np.arange(w) + r + 1, 0, w)
    sums = integral[y1][:, x1] - integral[y0][:, x1] - integral[y1][:, x0] + integral[y0][:, x0]
    return sums / ((y1 - y0)[:, None] * (x1 - x0)[None, :])


def motion_energy_point(previous: np.ndarray, current: np.ndarray, kernel: int) -> Point:
    """(x, y) of the first maximum (row-major) of the box-filtered |current − previous| summed over RGB."""
    energy = np.abs(current.astype(np.int16) - previous.astype(np.int16)).sum(axis=-1)
    y, x = np.unravel_index(int(np.argmax(box_filter(energy, kernel))), energy.shape)
    return float(x), float(y)


def _motion_points(
    source: Path, seconds: set[int], fraction: float
) -> tuple[dict[int, Point], tuple[int, int]]:
    """Motion-energy points at ``seconds`` (decoded frame pixels) and the decoded ``(w, h)``."""
    points: dict[int, Point] = {}
    previous: np.ndarray | None = None
    last = max(seconds)
    for t, frame in iter_source_frames(source, 1.0):
        s = round(t)
        if previous is not None:
            point = motion_energy_point(previous, frame, smoothing_size(frame.shape[:2], fraction))
            # t = 0 has no previous frame: it shares the (0 s, 1 s) pair with t = 1.
            points.update({k: point for k in ((0, 1) if s == 1 else (s,)) if k in seconds})
        previous = frame
        if s >= last:
            break
    size = (previous.shape[1], previous.shape[0]) if previous is not None else (1, 1)
    return points, size


def motion_energy_predictions(
    dataset: EvalDataset, videos_dir: str | Path, smooth_fraction: float = SMOOTH_FRACTION
) -> Predictions:
    """Motion-energy points from the videos (``<id>.mp4`` or ``<id>/<second>.jpg`` under ``videos_dir``).

    Points are mapped from the decoded resolution to the record's frame size; a scored second past the end
    of the decoded video gets no point (a miss). ``smooth_fraction``: see :func:`smoothing_size`.
    """
    points: dict[str, dict[int, Point]] = {}
    for rec in dataset.records:
        seconds = {t for t, _ in pointing_seconds(rec)}
        if not seconds:
            continue
        source = find_video(videos_dir, rec.video_id)
        if source is None:
            raise StgUserError(
                f"{videos_dir}: no video for {rec.video_id!r} (expected <id>.mp4 or <id>/<second>.jpg)"
            )
        found, (w, h) = _motion_points(source, seconds, smooth_fraction)
        sx, sy = rec.frame_size[0] / w, rec.frame_size[1] / h  # pixel centres map between resolutions
        points[rec.video_id] = {
            t: ((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5) for t, (x, y) in found.items()
        }
    return pointing_predictions(dataset, lambda rec, t: points[rec.video_id].get(t))
