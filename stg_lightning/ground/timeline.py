"""What one video's predictions say per query and second, read back from the predictions schema.

`stg ground` and `stg view` draw everything (timeline figure, overlay video, viewer page) from a
`VideoPredictions` alone, so a file made by `stg eval`, `stg combine` or another model's exporter is shown
exactly like one `stg ground` just wrote. The score of (second t, query q) is the ``frames`` entry's when it
labels t with q, else a ``grounding`` entry's for (t, q); `stg ground` writes every pair
(``inference.grounding=all``), other files may hold only some (the rest are unknown, NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stg_lightning.eval.metrics.video_map import label_runs
from stg_lightning.eval.predictions import VideoPredictions


@dataclass(frozen=True)
class Segment:
    """A maximal run of seconds [start, end) labelled with query index `query`, and its mean score."""

    start: int
    end: int
    query: int
    score: float


@dataclass
class Timeline:
    """One video at 1 fps: `queries`, `scores` [T, Q] (NaN = not in the file), `labels` [T] (query index,
    -1 = background), and the heat grids `heat[(t, q)]` ([h, w]) the file holds."""

    queries: list[str]
    scores: np.ndarray
    labels: np.ndarray
    heat: dict[tuple[int, int], np.ndarray]

    @property
    def num_seconds(self) -> int:
        return len(self.labels)

    def segments(self) -> list[Segment]:
        """The detected segments: maximal runs of one query label, in time order (the runs video mAP scores
        as detections)."""
        queries, starts, ends = label_runs(self.labels)
        return [
            Segment(int(a), int(b), int(q), float(np.nanmean(self.scores[a:b, q])))
            for q, a, b in zip(queries, starts, ends)
        ]

    def heat_of(self, t: int, query: int) -> np.ndarray | None:
        return self.heat.get((t, query))


def query_order(video: VideoPredictions) -> list[str]:
    """The queries a predictions entry names, in order of first appearance (frames, then grounding)."""
    labels = [p.label for p in [*video.frames, *video.grounding] if p.label is not None]
    return list(dict.fromkeys(labels))


def timeline(video: VideoPredictions, queries: Sequence[str] | None = None) -> Timeline:
    """The Timeline of one video's predictions over `queries` (default: those it names, see
    :func:`query_order`); labels the file has that `queries` lacks are added after them."""
    names = list(dict.fromkeys([*(queries or []), *query_order(video)]))
    index = {name: i for i, name in enumerate(names)}
    entries = [*video.frames, *video.grounding]
    last = max((p.t for p in entries), default=-1)
    seconds = max(video.num_frames or 0, last + 1)
    scores = np.full((seconds, len(names)), np.nan)
    labels = np.full(seconds, -1, dtype=np.int64)
    heat: dict[tuple[int, int], np.ndarray] = {}
    for p in video.grounding:
        if p.label is not None:
            scores[p.t, index[p.label]] = p.score
            if p.heat is not None:
                heat[(p.t, index[p.label])] = np.asarray(p.heat, dtype=np.float32)
    for p in video.frames:  # the untrimmed answer wins over a grounding entry for the same pair
        if p.label is None:
            continue
        labels[p.t] = index[p.label]
        scores[p.t, index[p.label]] = p.score
        if p.heat is not None:
            heat[(p.t, index[p.label])] = np.asarray(p.heat, dtype=np.float32)
    return Timeline(names, scores, labels, heat)
