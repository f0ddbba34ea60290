"""Common evaluation records: what every dataset loader produces and every metric consumes.

Time is in seconds at 1 fps: frame ``t`` (an int) is the frame shown at ``t`` s. A segment covers the
frames ``start <= t < end``. Boxes are ``(x1, y1, x2, y2)`` in frame pixels, inclusive on both ends.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

Box = tuple[float, float, float, float]

logger = logging.getLogger(__name__)


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the file, the video and the key."""


def normalise_query(label: str) -> str:
    """Query text for a raw label: lower case, ``_`` → space, single spaces."""
    return " ".join(label.replace("_", " ").lower().split())


def box_area(box: Box) -> float:
    """Pixel area of an inclusive box; 0 when x2 < x1 or y2 < y1."""
    return max(0.0, box[2] - box[0] + 1) * max(0.0, box[3] - box[1] + 1)


def clip_box(box: Box, frame_size: tuple[int, int]) -> Box:
    """Clip an inclusive box to a ``(width, height)`` frame."""
    w, h = frame_size
    return (
        min(max(box[0], 0), w - 1),
        min(max(box[1], 0), h - 1),
        min(max(box[2], 0), w - 1),
        min(max(box[3], 0), h - 1),
    )


def parse_box(value: object, where: str) -> Box:
    """Four finite numbers or an :class:`AnnotationError` naming ``where``."""
    # Booleans and strings are refused though float() would take them ("1", True → 1.0).
    if (
        not isinstance(value, list | tuple)
        or len(value) != 4
        or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    ):
        raise AnnotationError(f"{where}: box must be 4 numbers [x1, y1, x2, y2], got {value!r}")
    box = tuple(float(v) for v in value)
    if not all(math.isfinite(v) for v in box):
        raise AnnotationError(f"{where}: box has a non-finite coordinate: {value!r}")
    return box  # type: ignore[return-value]


@dataclass(frozen=True)
class Segment:
    """One annotated step: raw label, query text and its time span ``[start, end)`` in seconds."""

    label: str
    query: str
    start: float
    end: float

    def frames(self) -> range:
        """Integer seconds ``t`` with ``start <= t < end``."""
        return range(max(0, math.ceil(self.start)), max(0, math.ceil(self.end)))


@dataclass
class VideoRecord:
    """Ground truth of one evaluation video at 1 fps.

    ``labels[t]``: the GT step's query text at second t (absent = background); ``boxes[t]``: GT box;
    ``segments``: ordered steps (by start); ``queries``: the video's query vocabulary (distinct step
    queries in order of appearance; background is implicit); ``num_frames``: the evaluated length.
    """

    video_id: str
    frame_size: tuple[int, int]  # (width, height)
    num_frames: int
    segments: list[Segment]
    labels: dict[int, str] = field(default_factory=dict)
    boxes: dict[int, Box] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def frame_times(self) -> list[float]:
        """Timestamps (s) of the evaluated frames at 1 fps."""
        return [float(t) for t in range(self.num_frames)]


@dataclass
class DatasetReport:
    """What a loader counted: defects, skipped entries (lenient mode) and dataset sizes."""

    dataset: str
    source: str
    counts: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line per count plus the number of skipped entries."""
        lines = [f"{self.dataset} ({self.source}):"]
        lines += [f"  {k}: {v:g}" for k, v in self.counts.items()]
        lines.append(f"  skipped (lenient): {len(self.skipped)}")
        return "\n".join(lines)


@dataclass
class EvalDataset:
    """Loaded records plus the loader's report."""

    name: str
    records: list[VideoRecord]
    report: DatasetReport

    def by_id(self) -> dict[str, VideoRecord]:
        return {r.video_id: r for r in self.records}


class Skipper:
    """Raise :class:`AnnotationError` (strict) or record and continue (``lenient``)."""

    def __init__(self, report: DatasetReport, lenient: bool) -> None:
        self.report = report
        self.lenient = lenient

    def fail(self, message: str) -> None:
        if not self.lenient:
            raise AnnotationError(message + " (pass lenient=True / --lenient to skip and count such entries)")
        self.report.skipped.append(message)


_reported: set[tuple[str, str]] = set()


def log_report_once(report: DatasetReport) -> None:
    """Log a loader report once per (dataset, file) per process."""
    key = (report.dataset, str(Path(report.source).resolve()))
    if key not in _reported:
        _reported.add(key)
        logger.warning("%s", report.summary())


def runs_to_segments(labels: dict[int, str]) -> list[Segment]:
    """Maximal runs of consecutive seconds with the same raw label → segments ``[first, last + 1)``."""
    segments: list[Segment] = []
    prev_t, start = None, None
    for t in sorted(labels):
        if prev_t is None or t != prev_t + 1 or labels[t] != labels[prev_t]:
            if prev_t is not None:
                segments.append(_segment(labels[prev_t], start, prev_t + 1))
            start = t
        prev_t = t
    if prev_t is not None:
        segments.append(_segment(labels[prev_t], start, prev_t + 1))
    return segments


def _segment(label: str, start: float, end: float) -> Segment:
    return Segment(label=label, query=normalise_query(label), start=float(start), end=float(end))


def query_vocabulary(segments: list[Segment]) -> list[str]:
    """Distinct queries in order of first appearance."""
    return list(dict.fromkeys(s.query for s in segments))
