"""YouCook2-Interactions loader: two pickles + YouCook2's annotation JSON → records.

- ``final_dataset_segments.pkl``: a set of ``(video_id, start_s, end_s)`` (YouCook2 integer segments,
  end inclusive → ``Segment.end = end_s + 1``);
- ``final_dataset_annotations.pkl``: ``{video_id: {second (1-based): (x1, y1, x2, y2)}}`` in 640×360;
  key k is the frame at t = k − 1 s (GYT/MYT seconds are 0-based: we align by time);
- ``youcookii_annotations_trainval.json``: ``{"database": {vid: {"duration", "annotations":
  [{"segment": [s, e], "sentence": str}]}}}`` gives each segment its query sentence.

Pickles are read with an allow-list unpickler (plain containers and numpy scalars/arrays only).
Boxes outside the frame are kept and counted; boxes outside every segment are counted and not evaluated.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import pickle
from pathlib import Path

from stg_lightning.eval.records import (
    AnnotationError,
    Box,
    DatasetReport,
    EvalDataset,
    Segment,
    Skipper,
    VideoRecord,
    box_area,
    clip_box,
    log_report_once,
    normalise_query,
    parse_box,
    query_vocabulary,
)

YC_FRAME_SIZE = (640, 360)
_SAFE_GLOBALS = (
    {
        (module, name)
        for module in ("builtins", "__builtin__")  # the latter: protocol ≤ 2 pickles
        for name in ("set", "frozenset", "list", "dict", "tuple", "int", "float", "str")
    }
    | {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("scalar", "_reconstruct")
    }
    | {("numpy", "dtype"), ("numpy", "ndarray")}
)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in an annotation pickle")
        return super().find_class(module, name)


def safe_load_pickle(path: Path) -> object:
    """Unpickle containers of numbers/strings only; anything else is an :class:`AnnotationError`."""
    try:
        return _RestrictedUnpickler(io.BytesIO(path.read_bytes())).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise AnnotationError(f"{path}: cannot load pickle safely: {exc}") from exc


def load_yc_inter(
    segments_pkl: str | Path,
    annotations_pkl: str | Path,
    youcook2_json: str | Path,
    clip_to_frame: bool = False,
    lenient: bool = False,
    frame_size: tuple[int, int] = YC_FRAME_SIZE,
) -> EvalDataset:
    """Load YouCook2-Interactions segments, 1 fps boxes and their YouCook2 sentences."""
    segments_pkl, annotations_pkl, youcook2_json = (
        Path(segments_pkl),
        Path(annotations_pkl),
        Path(youcook2_json),
    )
    report = DatasetReport("yc_inter", str(annotations_pkl))
    skip = Skipper(report, lenient)
    seg_set = safe_load_pickle(segments_pkl)
    boxes_by_video = safe_load_pickle(annotations_pkl)
    if not isinstance(seg_set, set | frozenset | list | tuple):
        raise AnnotationError(f"{segments_pkl}: expected a set of (video_id, start_s, end_s)")
    if not isinstance(boxes_by_video, dict):
        raise AnnotationError(f"{annotations_pkl}: expected {{video_id: {{second: (x1, y1, x2, y2)}}}}")
    youcook = _load_youcook2(youcook2_json)

    segments_by_video: dict[str, list[Segment]] = {}
    for item in sorted(seg_set, key=repr):
        segment = _segment(segments_pkl, item, youcook, youcook2_json, skip)
        if segment is not None:
            segments_by_video.setdefault(item[0], []).append(segment)
    records, counts = [], dict.fromkeys(("boxes", "outside_frame", "zero_area", "outside_segments"), 0)
    for vid, segments in sorted(segments_by_video.items()):
        if vid not in boxes_by_video:
            skip.fail(f"{annotations_pkl}: video {vid!r} (from {segments_pkl.name}) has no boxes")
            continue
        boxes = _boxes(annotations_pkl, vid, boxes_by_video[vid], frame_size, skip, counts)
        segments.sort(key=lambda s: (s.start, s.end))
        labels = {t: s.query for s in segments for t in s.frames()}
        counts["outside_segments"] += sum(t not in labels for t in boxes)
        if clip_to_frame:
            boxes = {t: clip_box(b, frame_size) for t, b in boxes.items()}
        duration = youcook[vid].get("duration")
        last = max([math.ceil(s.end) for s in segments] + [t + 1 for t in boxes])
        records.append(
            VideoRecord(
                video_id=vid,
                frame_size=frame_size,
                num_frames=max(last, math.ceil(duration)) if isinstance(duration, int | float) else last,
                segments=segments,
                labels=labels,
                boxes={t: b for t, b in boxes.items() if t in labels},
                queries=query_vocabulary(segments),
                source=str(annotations_pkl),
            )
        )
    report.counts.update(videos=len(records), segments=sum(len(r.segments) for r in records), **counts)
    log_report_once(report)
    return EvalDataset("yc_inter", records, report)


def _load_youcook2(path: Path) -> dict[str, dict]:
    try:
        database = json.loads(path.read_text(encoding="utf-8"))["database"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise AnnotationError(
            f"{path}: expected YouCook2 JSON {{'database': {{vid: ...}}}}: {exc!r}"
        ) from exc
    return database


def _segment(
    pkl: Path, item: object, youcook: dict[str, dict], json_path: Path, skip: Skipper
) -> Segment | None:
    if not (isinstance(item, tuple) and len(item) == 3):
        skip.fail(f"{pkl}: entry {item!r}: expected (video_id, start_s, end_s)")
        return None
    vid, start, end = item
    where = f"{pkl}: video {vid!r}, segment ({start}, {end})"
    if not all(isinstance(v, numbers.Real) for v in (start, end)):
        skip.fail(f"{where}: start/end must be numbers of seconds")
        return None
    if end < start:
        skip.fail(f"{where}: end is before start")
        return None
    if vid not in youcook:
        skip.fail(f"{where}: unknown video (not in {json_path.name})")
        return None
    for ann in youcook[vid].get("annotations", []):
        seg = ann.get("segment", [])
        if len(seg) == 2 and float(seg[0]) == float(start) and float(seg[1]) == float(end):
            sentence = str(ann.get("sentence", ""))
            return Segment(
                label=sentence, query=normalise_query(sentence), start=float(start), end=float(end) + 1
            )
    skip.fail(f"{where}: no YouCook2 annotation with segment [{start}, {end}] in {json_path.name}")
    return None


def _boxes(
    pkl: Path, vid: str, entries: object, frame_size: tuple[int, int], skip: Skipper, counts: dict[str, int]
) -> dict[int, Box]:
    if not isinstance(entries, dict):
        skip.fail(f"{pkl}: video {vid!r}: expected {{second: (x1, y1, x2, y2)}}")
        return {}
    w, h = frame_size
    boxes: dict[int, Box] = {}
    for key, value in entries.items():
        where = f"{pkl}: video {vid!r}, second {key!r}"
        if not isinstance(key, numbers.Integral) or isinstance(key, bool) or key < 1:
            skip.fail(f"{where}: key must be a 1-based integer second")
            continue
        try:
            box = parse_box(list(value) if hasattr(value, "__len__") else value, where)
        except AnnotationError as exc:
            skip.fail(str(exc))
            continue
        counts["boxes"] += 1
        counts["outside_frame"] += min(box) < 0 or box[2] > w - 1 or box[3] > h - 1
        counts["zero_area"] += box_area(box) == 0
        boxes[int(key) - 1] = box  # 1-based key k is the frame at t = k − 1 s
    return boxes
