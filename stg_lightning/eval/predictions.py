"""Predictions file: what inference writes and ``stg eval --predictions FILE`` scores.

JSON schema (``.json``)::

    {"format": "stg-predictions", "version": 1,
     "settings": {...},             # optional, before "videos": how the file was made (eval/settings.py)
     "videos": {"<video_id>": {
        "num_frames": 300,          # optional: evaluated length at 1 fps (the decoded video)
        "frames": [                 # untrimmed: one entry per second; a missing second = background
          {"t": 76, "label": "crack eggs", "score": 0.8,      # label null = background
           "heat": [[...], ...],    # optional [h, w] grid (upsampled bilinearly to the frame)
           "point": [x, y],         # optional, frame pixels
           "box": [x1, y1, x2, y2]} # optional, inclusive frame pixels (the 3-D mask when given)
        ],
        "grounding": [ ... ],       # optional, same entries: the spatial answer for query `label` at
                                    # second t (trimmed pointing / spatial mAP); absent → the `frames`
                                    # entry at t is used when it predicts that query
        "step_scores": [[...]]      # optional [T, S] similarity to the video's ordered steps (MYT)
     }}}

NPZ schema (``.npz``, no pickled objects): ``format``, ``version``; ``videos`` str[V]; ``num_frames``
int[V] (-1 = unknown); ``labels`` str[L]; for each part in ``frames``/``grounding``: ``{part}.video``
int[n] (index into ``videos``), ``{part}.t`` int[n], ``{part}.label`` int[n] (index into ``labels``,
-1 = background), ``{part}.score`` float[n], ``{part}.point`` float[n, 2], ``{part}.box`` float[n, 4],
``{part}.heat`` float[n, h, w] (one grid shape per file; NaN rows = absent, arrays may be omitted);
``step_scores.<video_id>`` float[T, S]; ``settings`` (optional) a str scalar holding the settings as JSON.

``settings`` (an object of plain values: the inference and scoring settings the file was made with, see
:mod:`stg_lightning.eval.settings`) is read by :func:`read_predictions_settings` without reading the
videos: in a JSON file it must come before ``videos``, as :func:`write_predictions` writes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from stg_lightning.jsonfile import read_json_object

FORMAT = "stg-predictions"
VERSION = 1
_PARTS = ("frames", "grounding")
SETTINGS = "settings"
# How much of a JSON file's head `read_predictions_settings` reads (the settings come before the videos).
_HEAD_BYTES = 1 << 20


class PredictionsError(ValueError):
    """A malformed predictions file; the message names the file, the video and the key."""


@dataclass
class FramePrediction:
    """One second: predicted label (None = background), score and optional spatial answers."""

    t: int
    label: str | None
    score: float = 1.0
    heat: np.ndarray | None = None  # [h, w]
    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None


@dataclass
class VideoPredictions:
    frames: list[FramePrediction] = field(default_factory=list)
    grounding: list[FramePrediction] = field(default_factory=list)
    num_frames: int | None = None
    step_scores: np.ndarray | None = None  # [T, S] over the record's ordered steps


Predictions = dict[str, VideoPredictions]


def read_predictions(path: str | Path) -> Predictions:
    """Read and validate a ``.json`` or ``.npz`` predictions file."""
    path = Path(path)
    if path.suffix == ".json":
        preds = _read_json(path)
    elif path.suffix == ".npz":
        preds = _read_npz(path)
    else:
        raise PredictionsError(f"{path}: unknown predictions format (use .json or .npz)")
    validate_predictions(preds, str(path))
    return preds


def write_predictions(
    predictions: Predictions, path: str | Path, settings: Mapping[str, Any] | None = None
) -> None:
    """Validate and write predictions as ``.json`` or ``.npz`` (by suffix), with ``settings`` (plain values:
    how they were made) in the file's head when given."""
    path = Path(path)
    validate_predictions(predictions, str(path))
    head = {} if settings is None else {SETTINGS: dict(settings)}
    if path.suffix == ".json":
        data = _to_json(predictions, head)
        path.write_bytes(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY))
    elif path.suffix == ".npz":
        extra = {SETTINGS: np.array(json.dumps(head[SETTINGS]))} if head else {}
        np.savez_compressed(path, **_to_npz(predictions), **extra)
    else:
        raise PredictionsError(f"{path}: unknown predictions format (use .json or .npz)")


def read_predictions_settings(path: str | Path) -> dict[str, Any] | None:
    """The ``settings`` object a predictions file carries, or None (none stored, or no readable file: reading
    the predictions reports that). Only the file's head is read: in JSON the settings precede ``videos``."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                value = json.loads(str(z[SETTINGS])) if SETTINGS in z.files else None
        elif path.suffix == ".json":
            with path.open("rb") as file:
                value = _head_value(file.read(_HEAD_BYTES).decode("utf-8", errors="replace"), SETTINGS)
        else:
            return None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _head_value(text: str, key: str) -> Any:
    """The value of top-level `key` of a JSON object if it comes before "videos" in `text` (a file's head),
    else None; the object's other values before it are decoded and skipped."""
    decoder = json.JSONDecoder()

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    i = skip(0)
    if text[i : i + 1] != "{":
        return None
    i = skip(i + 1)
    while text[i : i + 1] == '"':
        name, i = decoder.raw_decode(text, i)
        i = skip(i)
        if text[i : i + 1] != ":" or name == "videos":
            return None
        value, i = decoder.raw_decode(text, skip(i + 1))
        if name == key:
            return value
        i = skip(i)
        if text[i : i + 1] != ",":
            return None
        i = skip(i + 1)
    return None


def validate_predictions(predictions: Predictions, source: str = "<predictions>") -> None:
    """Raise :class:`PredictionsError` naming file, video, part/index and key on the first problem."""
    for vid, video in predictions.items():
        if video.num_frames is not None and (not isinstance(video.num_frames, int) or video.num_frames < 0):
            raise PredictionsError(f"{source}: video {vid!r}: num_frames must be a non-negative int")
        for part in _PARTS:
            seen: set[tuple[int, str | None]] = set()
            for i, p in enumerate(getattr(video, part)):
                where = f"{source}: video {vid!r}, {part}[{i}]"
                _check_entry(p, where)
                key = (p.t, p.label if part == "grounding" else None)
                if key in seen:
                    raise PredictionsError(f"{where}: duplicate entry for second {p.t}")
                seen.add(key)
        if video.step_scores is not None and (
            video.step_scores.ndim != 2 or not np.isfinite(video.step_scores).all()
        ):
            raise PredictionsError(f"{source}: video {vid!r}: step_scores must be a finite [T, S] matrix")


def _check_entry(p: FramePrediction, where: str) -> None:
    if not isinstance(p.t, int) or p.t < 0:
        raise PredictionsError(f"{where}: key 't' must be a non-negative integer second, got {p.t!r}")
    if p.label is not None and not isinstance(p.label, str):
        raise PredictionsError(f"{where}: key 'label' must be a string or null, got {p.label!r}")
    if not isinstance(p.score, int | float) or not math.isfinite(p.score):
        raise PredictionsError(f"{where}: key 'score' must be a finite number, got {p.score!r}")
    if p.heat is not None and (p.heat.ndim != 2 or p.heat.size == 0 or not np.isfinite(p.heat).all()):
        raise PredictionsError(f"{where}: key 'heat' must be a finite [h, w] grid, got shape {p.heat.shape}")
    if p.heat is not None and p.heat.min() < 0:
        raise PredictionsError(
            f"{where}: key 'heat' must be non-negative (it is normalised to sum 1; shift or softmax a "
            f"similarity map first), got minimum {float(p.heat.min()):g}"
        )
    for key, size in (("point", 2), ("box", 4)):
        value = getattr(p, key)
        if value is not None and (len(value) != size or not all(math.isfinite(v) for v in value)):
            raise PredictionsError(f"{where}: key {key!r} must be {size} finite numbers, got {value!r}")


def _entry_from_json(e: object, where: str) -> FramePrediction:
    if not isinstance(e, dict) or "t" not in e:
        raise PredictionsError(f"{where}: expected an object with 't', 'label', 'score', got {e!r}")
    try:
        return FramePrediction(
            t=e["t"],
            label=e.get("label"),
            score=e.get("score", 1.0),
            heat=None if e.get("heat") is None else np.asarray(e["heat"], dtype=np.float32),
            point=None if e.get("point") is None else tuple(float(v) for v in e["point"]),
            box=None if e.get("box") is None else tuple(float(v) for v in e["box"]),
        )
    except (TypeError, ValueError) as exc:
        raise PredictionsError(f"{where}: {exc}") from exc


def _read_json(path: Path) -> Predictions:
    data = read_json_object(
        path,
        "predictions",
        "top level must be an object with 'format', 'version', 'videos'",
        PredictionsError,
    )
    _check_header(path, data.get("format"), data.get("version"))
    if not isinstance(data.get("videos"), dict):
        raise PredictionsError(f"{path}: key 'videos' must map video ids to predictions")
    out: Predictions = {}
    for vid, v in data["videos"].items():
        if not isinstance(v, dict):
            raise PredictionsError(f"{path}: video {vid!r}: expected an object with 'frames'")
        parts = {}
        for part in _PARTS:
            entries = v.get(part, [])
            if not isinstance(entries, list):
                raise PredictionsError(f"{path}: video {vid!r}: key {part!r} must be a list")
            parts[part] = [
                _entry_from_json(e, f"{path}: video {vid!r}, {part}[{i}]") for i, e in enumerate(entries)
            ]
        scores = v.get("step_scores")
        out[vid] = VideoPredictions(
            **parts,
            num_frames=v.get("num_frames"),
            step_scores=None if scores is None else np.asarray(scores, dtype=np.float64),
        )
    return out


def _check_header(path: Path, fmt: object, version: object) -> None:
    if fmt != FORMAT or version != VERSION:
        raise PredictionsError(
            f"{path}: not a predictions file: expected format {FORMAT!r} version {VERSION}, "
            f"got {fmt!r} version {version!r}"
        )


def _to_json(predictions: Predictions, head: dict[str, Any]) -> dict:
    def entry(p: FramePrediction) -> dict:
        e = {"t": p.t, "label": p.label, "score": float(p.score)}
        if p.heat is not None:
            e["heat"] = np.ascontiguousarray(p.heat)  # float32 grids: the shortest exact decimals
        if p.point is not None:
            e["point"] = list(p.point)
        if p.box is not None:
            e["box"] = list(p.box)
        return e

    videos = {}
    for vid, v in predictions.items():
        out = {part: [entry(p) for p in getattr(v, part)] for part in _PARTS}
        if v.num_frames is not None:
            out["num_frames"] = v.num_frames
        if v.step_scores is not None:
            out["step_scores"] = np.asarray(v.step_scores, dtype=float).tolist()
        videos[vid] = out
    return {"format": FORMAT, "version": VERSION, **head, "videos": videos}


def _to_npz(predictions: Predictions) -> dict[str, np.ndarray]:
    vids = list(predictions)
    labels = sorted(
        {p.label for v in predictions.values() for part in _PARTS for p in getattr(v, part)} - {None}
    )
    label_index = {name: i for i, name in enumerate(labels)}
    arrays = {
        "format": np.array(FORMAT),
        "version": np.array(VERSION),
        "videos": np.array(vids, dtype=str),
        "num_frames": np.array(
            [-1 if predictions[v].num_frames is None else predictions[v].num_frames for v in vids]
        ),
        "labels": np.array(labels, dtype=str),
    }
    for part in _PARTS:
        rows = [(vi, p) for vi, v in enumerate(vids) for p in getattr(predictions[v], part)]
        n = len(rows)
        arrays[f"{part}.video"] = np.array([vi for vi, _ in rows], dtype=np.int64)
        arrays[f"{part}.t"] = np.array([p.t for _, p in rows], dtype=np.int64)
        arrays[f"{part}.label"] = np.array([label_index.get(p.label, -1) for _, p in rows], dtype=np.int64)
        arrays[f"{part}.score"] = np.array([p.score for _, p in rows], dtype=np.float64)
        for key, size in (("point", 2), ("box", 4)):
            arrays[f"{part}.{key}"] = np.array(
                [getattr(p, key) or (math.nan,) * size for _, p in rows], dtype=np.float64
            ).reshape(n, size)
        shapes = {p.heat.shape for _, p in rows if p.heat is not None}
        if len(shapes) > 1:
            raise PredictionsError(f"npz predictions need one heat grid shape per file, got {sorted(shapes)}")
        if shapes:
            heat = np.full((n, *shapes.pop()), np.nan, dtype=np.float32)
            for i, (_, p) in enumerate(rows):
                if p.heat is not None:
                    heat[i] = p.heat
            arrays[f"{part}.heat"] = heat
    for vid in vids:
        if predictions[vid].step_scores is not None:
            arrays[f"step_scores.{vid}"] = np.asarray(predictions[vid].step_scores, dtype=np.float64)
    return arrays


def _read_npz(path: Path) -> Predictions:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise PredictionsError(f"{path}: cannot read predictions NPZ: {exc}") from exc
    _check_header(path, str(data.get("format", "")), int(data["version"]) if "version" in data else None)
    missing = [k for k in ("videos", "num_frames", "labels") if k not in data]
    if missing:
        raise PredictionsError(f"{path}: missing arrays {missing}")
    vids, labels = [str(v) for v in data["videos"]], [str(x) for x in data["labels"]]
    out = {
        vid: VideoPredictions(
            num_frames=None if n < 0 else int(n), step_scores=data.get(f"step_scores.{vid}")
        )
        for vid, n in zip(vids, data["num_frames"].tolist())
    }
    for part in _PARTS:
        key = f"{part}.video"
        if key not in data:
            raise PredictionsError(f"{path}: missing array {key!r}")
        n = len(data[key])
        col = {k: data.get(f"{part}.{k}") for k in ("t", "label", "score", "point", "box", "heat")}
        for k in ("t", "label", "score"):
            if col[k] is None or len(col[k]) != n:
                raise PredictionsError(f"{path}: array '{part}.{k}' must have {n} rows")
        for i in range(n):
            vi, li = int(data[key][i]), int(col["label"][i])
            if not (0 <= vi < len(vids)) or not (-1 <= li < len(labels)):
                raise PredictionsError(f"{path}: {part} row {i}: video/label index out of range")
            point, box = _row(col["point"], i), _row(col["box"], i)
            heat = _row(col["heat"], i)
            getattr(out[vids[vi]], part).append(
                FramePrediction(
                    t=int(col["t"][i]),
                    label=labels[li] if li >= 0 else None,
                    score=float(col["score"][i]),
                    heat=heat,
                    point=None if point is None else tuple(point.tolist()),
                    box=None if box is None else tuple(box.tolist()),
                )
            )
    return out


def _row(array: np.ndarray | None, i: int) -> np.ndarray | None:
    """Row i of an optional array; an all-NaN row means absent."""
    if array is None or np.isnan(array[i]).all():
        return None
    return array[i]
