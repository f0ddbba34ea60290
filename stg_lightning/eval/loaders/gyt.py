"""GroundingYouTube loader: ``GoundingYouTubeBox.json`` → records + defect report.

Format: ``{video_id: {second: {"box": [x1, y1, x2, y2], "step": str}}}``, boxes in 640×480 pixels,
second k = the frame at t = k s. Temporal GT = runs of consecutive seconds with the same step.
"""

from __future__ import annotations

from pathlib import Path

from stg_lightning.eval.records import (
    AnnotationError,
    Box,
    DatasetReport,
    EvalDataset,
    Skipper,
    VideoRecord,
    box_area,
    clip_box,
    log_report_once,
    normalise_query,
    parse_box,
    query_vocabulary,
    runs_to_segments,
)
from stg_lightning.jsonfile import read_json_object

GYT_FRAME_SIZE = (640, 480)
# The release clips x at this value (a known defect counted in the report).
GYT_CLIPPED_X = 480


def load_gyt(
    path: str | Path,
    clip_to_frame: bool = False,
    lenient: bool = False,
    frame_size: tuple[int, int] = GYT_FRAME_SIZE,
) -> EvalDataset:
    """Load GroundingYouTube; boxes as given unless ``clip_to_frame``; defects counted in ``report``."""
    path = Path(path)
    data = read_json_object(
        path, "GroundingYouTube", "top level must be {video_id: {second: {box, step}}}", AnnotationError
    )
    report = DatasetReport("gyt", str(path))
    skip = Skipper(report, lenient)
    records: list[VideoRecord] = []
    released_boxes: list[Box] = []  # as in the file, for the defect report
    for vid, entries in data.items():
        loaded = _video(path, vid, entries, frame_size, clip_to_frame, skip)
        if loaded is not None:
            records.append(loaded[0])
            released_boxes += loaded[1]
    report.counts.update(_defects(released_boxes, frame_size, records))
    log_report_once(report)
    return EvalDataset("gyt", records, report)


def _video(
    path: Path, vid: str, entries: object, frame_size: tuple[int, int], clip: bool, skip: Skipper
) -> tuple[VideoRecord, list[Box]] | None:
    if not isinstance(entries, dict):
        skip.fail(f"{path}: video {vid!r}: expected {{second: {{box, step}}}}, got {type(entries).__name__}")
        return None
    raw_labels: dict[int, str] = {}
    boxes: dict[int, Box] = {}
    released: dict[int, Box] = {}
    for key, entry in entries.items():
        where = f"{path}: video {vid!r}, second {key!r}"
        try:
            t = int(key)
            if t < 0 or str(t) != str(key).strip():
                raise ValueError
        except ValueError:
            skip.fail(f"{where}: key must be a non-negative integer second")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), str) or "box" not in entry:
            skip.fail(f"{where}: expected {{'box': [x1, y1, x2, y2], 'step': str}}, got {entry!r}")
            continue
        if not normalise_query(entry["step"]):
            skip.fail(f"{where}: key 'step' is empty (a step name is the query it is scored with)")
            continue
        try:
            box = parse_box(entry["box"], where)
        except AnnotationError as exc:
            skip.fail(str(exc))
            continue
        raw_labels[t] = entry["step"]
        released[t] = box
        boxes[t] = clip_box(box, frame_size) if clip else box
    if not raw_labels:
        skip.fail(f"{path}: video {vid!r}: no valid boxed seconds")
        return None
    segments = runs_to_segments(raw_labels)
    record = VideoRecord(
        video_id=vid,
        frame_size=frame_size,
        num_frames=max(raw_labels) + 1,
        segments=segments,
        labels={t: normalise_query(s) for t, s in raw_labels.items()},
        boxes=boxes,
        queries=query_vocabulary(segments),
        source=str(path),
    )
    return record, list(released.values())


def _defects(boxes: list[Box], frame_size: tuple[int, int], records: list[VideoRecord]) -> dict[str, float]:
    w, h = frame_size
    n = len(boxes)
    x2_clipped = sum(b[2] == GYT_CLIPPED_X for b in boxes)
    return {
        "videos": len(records),
        "boxed_seconds": n,
        "runs": sum(len(r.segments) for r in records),
        "x2_eq_480": x2_clipped,
        "x2_eq_480_fraction": round(x2_clipped / n, 4) if n else 0.0,
        "y2_over_480": sum(b[3] > 480 for b in boxes),
        "max_y2": max((b[3] for b in boxes), default=0.0),
        "outside_frame": sum(min(b) < 0 or b[2] > w - 1 or b[3] > h - 1 for b in boxes),
        "zero_area": sum(box_area(b) == 0 for b in boxes),
        "inverted": sum(b[2] < b[0] or b[3] < b[1] for b in boxes),  # kept as given: zero or sub-pixel area
    }
