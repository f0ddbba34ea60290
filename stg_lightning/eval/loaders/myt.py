"""MiningYouTube loader: ``annotations/*.srt`` (+ ``weakYouTube_dict.txt`` class list) → records.

Each ``.srt`` (UTF-8 with BOM, CRLF) holds blocks ``index / hh:mm:ss,mmm --> hh:mm:ss,mmm / label``.
Raw labels are kept in ``Segment.label``; queries are the normalised form (lower case, ``_`` → space).
Segments that contain no frame at 1 fps leave the ordered step list and are counted.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from stg_lightning.eval.records import (
    AnnotationError,
    DatasetReport,
    EvalDataset,
    Segment,
    Skipper,
    VideoRecord,
    log_report_once,
    normalise_query,
    query_vocabulary,
)

# MYT ships no frame size (only annotations); a placeholder for the common record.
MYT_FRAME_SIZE = (640, 480)
BACKGROUND = "background"
_TIME = re.compile(r"^\s*(\d+):(\d\d):(\d\d)[,.](\d{1,3})\s*-->\s*(\d+):(\d\d):(\d\d)[,.](\d{1,3})\s*$")


def load_class_dict(path: str | Path) -> list[str]:
    """Class names of ``weakYouTube_dict.txt`` (trailing spaces stripped), background excluded."""
    path = Path(path)
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    return [n for n in names if n and n != BACKGROUND]


def load_myt(
    annotations: str | Path, class_dict: str | Path | None = None, lenient: bool = False
) -> EvalDataset:
    """Load every ``*.srt`` under ``annotations``; ``class_dict`` defaults to the sibling dictionary."""
    annotations = Path(annotations)
    files = sorted(annotations.glob("*.srt"))
    if not files:
        raise AnnotationError(f"{annotations}: no .srt files (expected MiningYouTube annotations/*.srt)")
    report = DatasetReport("myt", str(annotations))
    skip = Skipper(report, lenient)
    records, empty, raw_labels = [], 0, set()
    for file in files:
        segments = _parse_srt(file, skip)
        if segments is None:
            continue
        raw_labels.update(s.label for s in segments)
        kept = [s for s in segments if len(s.frames()) > 0]
        empty += len(segments) - len(kept)
        if not kept:  # nothing to align or score: refuse it rather than evaluate an empty video
            skip.fail(f"{file}: no segment covering a whole second (an empty or zero-length .srt)")
            continue
        records.append(_record(file, kept))
    report.counts.update(
        videos=len(records),
        segments=sum(len(r.segments) for r in records) + empty,
        raw_labels=len(raw_labels),
        empty_segments_at_1fps=empty,
    )
    dict_path = Path(class_dict) if class_dict else annotations.parent / "weakYouTube_dict.txt"
    if dict_path.exists():
        report.counts["classes"] = len(load_class_dict(dict_path))
    log_report_once(report)
    return EvalDataset("myt", records, report)


def _record(file: Path, segments: list[Segment]) -> VideoRecord:
    labels = {t: s.query for s in segments for t in s.frames()}  # overlaps: the later segment wins
    return VideoRecord(
        video_id=file.stem,
        frame_size=MYT_FRAME_SIZE,
        num_frames=max((math.ceil(s.end) for s in segments), default=0),
        segments=segments,
        labels=labels,
        queries=query_vocabulary(segments),
        source=str(file),
    )


def _parse_srt(file: Path, skip: Skipper) -> list[Segment] | None:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        skip.fail(f"{file}: cannot read .srt: {exc}")
        return None
    blocks = [b for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()) if b.strip()]
    segments = []
    for block in blocks:
        lines = [line.strip() for line in block.split("\n")]
        where = f"{file}: video {file.stem!r}, block {lines[0]!r}"
        match = _TIME.match(lines[1]) if len(lines) >= 3 else None
        if match is None or not lines[2]:
            skip.fail(f"{where}: expected 'index / hh:mm:ss,mmm --> hh:mm:ss,mmm / label', got {block!r}")
            continue
        g = [int(x) for x in match.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + int(match.group(4).ljust(3, "0")) / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + int(match.group(8).ljust(3, "0")) / 1000
        if end < start:
            skip.fail(f"{where}: end {lines[1].split('-->')[1].strip()} is before start")
            continue
        label = " ".join(lines[2:])
        segments.append(Segment(label=label, query=normalise_query(label), start=start, end=end))
    return sorted(segments, key=lambda s: (s.start, s.end))
