"""Random object (synthetic splits only): the centre of the box of one on-screen object drawn at random.

The boxes are read from the ``objects.json`` that ``stg synth`` writes for each evaluation split
(``eval/<split>/objects.json`` beside the split's annotations; see :mod:`stg_lightning.synth`)::

    {"<video_id>": {"<second>": [[x1, y1, x2, y2], ...]}}

every on-screen object at every second, in object order, inclusive frame pixels: a moving object's box is
measured on the drawn frame like its GT box, an idle object's is its rest square (same centre). So
evaluating needs no re-rendering of the scenes; a benchmark written before the file existed needs
``stg synth`` to be run again.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.pointing import Point, pointing_predictions, pointing_seconds
from stg_lightning.eval.datasets import META_LEVELS
from stg_lightning.eval.predictions import Predictions
from stg_lightning.eval.records import EvalDataset, VideoRecord
from stg_lightning.jsonfile import read_json_object

OBJECTS_FILE = "objects.json"  # = stg_lightning.synth.writer.OBJECTS_FILE
ObjectBox = tuple[int, int, int, int]
ObjectBoxes = dict[str, dict[int, list[ObjectBox]]]  # video id → scored second → every object's box


def find_synth_meta(annotations: str | Path) -> Path | None:
    """The synthetic benchmark's ``meta.json`` above ``annotations`` (as ``eval.datasets`` finds it)."""
    for folder in list(Path(annotations).resolve().parents)[:META_LEVELS]:
        if (folder / "meta.json").is_file():
            return folder / "meta.json"
    return None


def objects_file(annotations: str | Path) -> Path:
    """The split's ``objects.json``: the nearest one in or above the annotations (at most ``META_LEVELS``
    folders up); where it should be (the annotations' folder) when there is none."""
    path = Path(annotations).resolve()
    folders = [path] if path.is_dir() else []
    folders += list(path.parents)[:META_LEVELS]
    for folder in folders:
        if (folder / OBJECTS_FILE).is_file():
            return folder / OBJECTS_FILE
    return folders[0] / OBJECTS_FILE


def _box(value: object, where: str) -> ObjectBox:
    if not (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise StgUserError(f"{where}: expected a box [x1, y1, x2, y2], got {value!r}")
    return tuple(value)


def load_object_boxes(dataset: EvalDataset, path: str | Path | None = None) -> ObjectBoxes:
    """Every on-screen object's box at each second the pointing game scores, from ``objects.json``.

    ``path`` defaults to :func:`objects_file` of the annotations. Raises :class:`StgUserError` when the file
    is missing, lacks a scored video or second, or does not hold a GT box (it belongs to other annotations).
    """
    path = Path(path) if path is not None else objects_file(dataset.report.source)
    rerun = "rerun `stg synth` for this benchmark (it writes eval/<split>/objects.json)"
    if not path.is_file():
        raise StgUserError(
            f"{path}: not found; the random-object baseline reads the on-screen object boxes from it: {rerun}"
        )
    data = read_json_object(path, "object boxes", "expected {video_id: {second: [boxes]}}", StgUserError)
    out: ObjectBoxes = {}
    for rec in dataset.records:
        video = data.get(rec.video_id)
        if not isinstance(video, dict):
            raise StgUserError(f"{path}: no boxes of video {rec.video_id!r}; {rerun}")
        out[rec.video_id] = {}
        for t, _ in pointing_seconds(rec):
            where = f"{path}: video {rec.video_id!r}, second {t}"
            boxes = video.get(str(t))
            if not isinstance(boxes, list) or not boxes:
                raise StgUserError(f"{where}: no object boxes; {rerun}")
            boxes = [_box(b, where) for b in boxes]
            if tuple(map(float, rec.boxes[t])) not in {tuple(map(float, b)) for b in boxes}:
                raise StgUserError(
                    f"{where}: the GT box {rec.boxes[t]} is not among the object boxes; use the "
                    f"{OBJECTS_FILE} written with these annotations ({rerun})"
                )
            out[rec.video_id][t] = boxes
    return out


def random_object_predictions(dataset: EvalDataset, boxes: ObjectBoxes, seed: int) -> Predictions:
    """The centre of a random on-screen object's box (from :func:`load_object_boxes`) per scored second."""
    rng = np.random.default_rng(seed)

    def point(rec: VideoRecord, t: int) -> Point:
        candidates = boxes[rec.video_id][t]
        x1, y1, x2, y2 = candidates[int(rng.integers(len(candidates)))]
        return (x1 + x2) / 2, (y1 + y2) / 2

    return pointing_predictions(dataset, point)
