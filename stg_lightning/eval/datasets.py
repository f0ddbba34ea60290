"""Evaluation datasets by name: default annotation paths, synthetic frame sizes, one `load_dataset` call.

A synthetic split (``stg synth``) keeps its frame size in ``meta.json`` at the benchmark root; it is found
automatically by walking up from the annotations (at most ``META_LEVELS`` folders), so
``--annotations runs/synth/eval/gyt/GoundingYouTubeBox.json`` needs no ``--frame-size``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from stg_lightning.errors import StgUserError
from stg_lightning.eval.loaders import load_gyt, load_myt, load_yc_inter, shared_data_root
from stg_lightning.eval.records import AnnotationError, EvalDataset

logger = logging.getLogger(__name__)

DATASETS = ("gyt", "myt", "yc_inter")
META_LEVELS = 3
YC_FILES = (
    "final_dataset_segments.pkl",
    "final_dataset_annotations.pkl",
    "youcookii_annotations_trainval.json",
)


def default_annotations(name: str) -> Path:
    """The released annotations under ``shared_data_root()`` (YC-Inter: a folder with its three files)."""
    root = shared_data_root()
    return {
        "gyt": root / "groundingyoutube" / "GoundingYouTubeBox.json",
        "myt": root / "miningyoutube" / "annotations",
        "yc_inter": root / "youcook2_interactions",
    }[name]


def synthetic_frame_size(annotations: str | Path) -> tuple[int, int] | None:
    """``(w, h)`` from the nearest ``meta.json`` above the annotations, if it has ``frame_size``."""
    for folder in list(Path(annotations).resolve().parents)[:META_LEVELS]:
        meta = folder / "meta.json"
        if meta.is_file():
            size = json.loads(meta.read_text()).get("frame_size")
            return None if size is None else (int(size[0]), int(size[1]))
    return None


def warn_if_boxes_fill_a_corner(dataset: EvalDataset) -> None:
    """Warn when every box lies in the top-left quarter of the assumed frame: a smaller video's annotations
    (e.g. a synthetic split copied away from its meta.json) would be scored at the wrong frame size."""
    boxes = [b for r in dataset.records for b in r.boxes.values()]
    if not boxes or not dataset.records:
        return
    w, h = dataset.records[0].frame_size
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    if right < w / 2 and bottom < h / 2:
        logger.warning(
            "%s: every box lies within %g×%g pixels of the assumed %d×%d frame; if the videos are smaller, "
            "pass --frame_size=[w,h] (synthetic splits: keep meta.json up to %d folders above)",
            dataset.report.source,
            right + 1,
            bottom + 1,
            w,
            h,
            META_LEVELS,
        )


def load_dataset(
    name: str,
    annotations: str | Path | None = None,
    frame_size: tuple[int, int] | None = None,
    lenient: bool = False,
    clip_to_frame: bool = False,
) -> EvalDataset:
    """Load ``name`` (gyt | myt | yc_inter) from ``annotations`` (default: the released files).

    ``frame_size`` (w, h) defaults to the synthetic ``meta.json`` when present, else the dataset's own.
    """
    if name not in DATASETS:
        raise StgUserError(f"--dataset must be one of {', '.join(DATASETS)}, got {name!r}")
    path = Path(annotations) if annotations is not None else default_annotations(name)
    if not path.exists():
        raise StgUserError(f"--annotations {path}: not found (pass the {name} annotation file/folder)")
    size = frame_size or synthetic_frame_size(path)
    sized = {} if size is None else {"frame_size": tuple(size)}
    try:
        if name == "gyt":
            dataset = load_gyt(path, clip_to_frame=clip_to_frame, lenient=lenient, **sized)
            if size is None:
                warn_if_boxes_fill_a_corner(dataset)
            return dataset
        if name == "myt":
            return load_myt(path, lenient=lenient)
        missing = [f for f in YC_FILES if not (path / f).is_file()]
        if missing:
            raise StgUserError(
                f"--annotations {path}: YouCook2-Interactions folder lacks {', '.join(missing)}"
            )
        files = [path / f for f in YC_FILES]
        return load_yc_inter(*files, clip_to_frame=clip_to_frame, lenient=lenient, **sized)
    except AnnotationError as err:
        raise StgUserError(str(err)) from err
