"""Text-blind baselines printed beside the model (DESIGN §5; SYNTHETIC_PROBE.md lesson 3).

Each spatial baseline is a :class:`~stg_lightning.eval.predictions.Predictions` object scored by the same
code as the model. It answers the trimmed pointing game only: one ``grounding`` entry per boxed GT second
(label = the GT step, a ``point``; no heat, no box, no temporal labels), so it fills the ``pointing``
column and nothing else (the report prints "—" elsewhere).

- chance by area: the expected accuracy of a uniformly random pixel, computed analytically as the mean
  over scored GT boxes of (box pixels inside the frame) / (frame pixels), and sampled with
  :func:`random_point_predictions` over ``seeds`` as a check. A uniform heat grid is no chance baseline:
  its argmax is the first pixel.
- random object (synthetic splits only): the centre of the box of one on-screen object drawn at random at
  that second; boxes come from re-rendering the scene from the benchmark's ``meta.json``.
- motion energy: the argmax (first maximum, row-major) of the box-filtered absolute difference between the
  frames at t and t − 1 s (t = 0 uses the frames at 0 and 1 s).

MiningYouTube's text-blind row is :func:`~stg_lightning.eval.scoring.text_blind_baseline` (uniform split).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stg_lightning.errors import StgUserError
from stg_lightning.eval.datasets import META_LEVELS
from stg_lightning.eval.inference import find_video, iter_source_frames
from stg_lightning.eval.metrics.spatial import box_rect, rect_area
from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.records import EvalDataset, VideoRecord, box_area
from stg_lightning.eval.scoring import DATASET_METRICS, ScoringConfig, score_predictions, text_blind_baseline
from stg_lightning.synth.config import SynthConfig, merge_config
from stg_lightning.synth.scene import Box, Scene
from stg_lightning.synth.script import VideoPlan, build_vocabulary
from stg_lightning.synth.writer import SPLITS, plan_and_scene, video_id

Point = tuple[float, float]
# Row names of the report's metrics table.
CHANCE_BY_AREA, RANDOM_OBJECT, MOTION_ENERGY, UNIFORM_SPLIT = (
    "chance by area",
    "random object",
    "motion energy",
    "text-blind (uniform split)",
)


@dataclass
class BaselineConfig:
    """Baseline hyperparameters."""

    seeds: tuple[int, ...] = (0, 1, 2)  # draws of the random baselines; their scores are averaged
    smooth_fraction: float = 0.05  # motion energy: box-filter side / frame short side (odd, ≥ 1 px)


def pointing_seconds(record: VideoRecord) -> list[tuple[int, str]]:
    """The (second, GT query) pairs the pointing game scores: boxed seconds inside a GT step."""
    return [(t, record.labels[t]) for t in sorted(record.boxes) if t in record.labels]


def pointing_predictions(
    dataset: EvalDataset, point_of: Callable[[VideoRecord, int], Point | None]
) -> Predictions:
    """One ``grounding`` entry (GT query, ``point_of(record, t)``) per scored second of every video."""
    out: Predictions = {}
    for rec in dataset.records:
        entries = [FramePrediction(t, q, 1.0, point=point_of(rec, t)) for t, q in pointing_seconds(rec)]
        out[rec.video_id] = VideoPredictions(grounding=entries)
    return out


# ----------------------------------------------------------------------------------------- chance by area
def chance_by_area(dataset: EvalDataset) -> float:
    """Expected pointing accuracy of a uniformly random pixel (NaN when no box is scored)."""
    fractions = []
    for rec in dataset.records:
        w, h = rec.frame_size
        for t, _ in pointing_seconds(rec):
            box = rec.boxes[t]
            if box_area(box) > 0:  # zero-area boxes are excluded from pointing
                fractions.append(rect_area(box_rect(box, rec.frame_size)) / (w * h))
    return float(np.mean(fractions)) if fractions else math.nan


def random_point_predictions(dataset: EvalDataset, seed: int) -> Predictions:
    """A uniformly random integer pixel per scored second (its expected score is :func:`chance_by_area`)."""
    rng = np.random.default_rng(seed)

    def point(rec: VideoRecord, t: int) -> Point:
        w, h = rec.frame_size
        return float(rng.integers(w)), float(rng.integers(h))

    return pointing_predictions(dataset, point)


# ------------------------------------------------------------------------------------------ random object
def find_synth_meta(annotations: str | Path) -> Path | None:
    """The synthetic benchmark's ``meta.json`` above ``annotations`` (as ``eval.datasets`` finds it)."""
    for folder in list(Path(annotations).resolve().parents)[:META_LEVELS]:
        if (folder / "meta.json").is_file():
            return folder / "meta.json"
    return None


class SyntheticScenes:
    """Re-renders videos of a synthetic benchmark from its ``meta.json`` (deterministic in seed, split, index)."""

    def __init__(self, meta_path: str | Path) -> None:
        self.meta_path = Path(meta_path)
        try:
            config = json.loads(self.meta_path.read_text(encoding="utf-8"))["config"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise StgUserError(f"{self.meta_path}: not a synthetic benchmark meta.json ({exc!r})") from exc
        self.config = merge_config(SynthConfig(), config, str(self.meta_path))
        self.vocab = build_vocabulary(self.config)

    def plan_and_scene(self, vid: str) -> tuple[VideoPlan, Scene]:
        """Plan and scene of the video with id ``<split>_<index>``."""
        split, _, index = vid.rpartition("_")
        if split not in SPLITS or not index.isdigit() or video_id(split, int(index)) != vid:
            raise StgUserError(
                f"video {vid!r} is not a synthetic id '<split>_<index>' ({self.meta_path}); "
                "the random-object baseline needs the synthetic benchmark"
            )
        return plan_and_scene(self.config, self.vocab, split, int(index))


def object_boxes(plan: VideoPlan, scene: Scene, t: int) -> list[Box]:
    """Box of every on-screen object at second ``t``, in object order.

    A moving object's box is measured on the rendered frame (object + hand, like the GT box); an idle
    object's is its rest square (placement ± radius, shifted by the camera), which has the same centre.
    """
    _, moving = scene.render(float(t), plan.activities(float(t)), plan.wandering(float(t)))
    ox, oy = scene.camera(float(t))
    boxes = []
    for i, place in enumerate(scene.placements):
        box = moving.get(i)
        if box is None:
            cx, cy, r = place.cx + ox, place.cy + oy, place.radius
            box = (math.floor(cx - r), math.floor(cy - r), math.ceil(cx + r) - 1, math.ceil(cy + r) - 1)
        boxes.append(box)
    return boxes


def scene_object_boxes(
    dataset: EvalDataset, meta: str | Path | None = None
) -> dict[str, dict[int, list[Box]]]:
    """Every on-screen object's box at each scored second, re-rendered (synthetic splits only).

    ``meta`` defaults to the ``meta.json`` above the annotations. Raises :class:`StgUserError` if a GT box
    is not among the re-rendered boxes (the meta.json does not belong to these annotations).
    """
    meta_path = Path(meta) if meta is not None else find_synth_meta(dataset.report.source)
    if meta_path is None:
        raise StgUserError(
            f"{dataset.report.source}: no synthetic meta.json found above the annotations; the random-object "
            "baseline needs the synthetic benchmark (pass meta=<root>/meta.json)"
        )
    scenes = SyntheticScenes(meta_path)
    out: dict[str, dict[int, list[Box]]] = {}
    for rec in dataset.records:
        plan, scene = scenes.plan_and_scene(rec.video_id)
        out[rec.video_id] = {}
        for t, _ in pointing_seconds(rec):
            boxes = object_boxes(plan, scene, t)
            if tuple(map(float, rec.boxes[t])) not in {tuple(map(float, b)) for b in boxes}:
                raise StgUserError(
                    f"{meta_path}: re-rendering video {rec.video_id!r} at second {t} does not reproduce its "
                    f"GT box {rec.boxes[t]}; use the meta.json written with these annotations"
                )
            out[rec.video_id][t] = boxes
    return out


def random_object_predictions(
    dataset: EvalDataset, boxes: dict[str, dict[int, list[Box]]], seed: int
) -> Predictions:
    """The centre of a random on-screen object's box (from :func:`scene_object_boxes`) per scored second."""
    rng = np.random.default_rng(seed)

    def point(rec: VideoRecord, t: int) -> Point:
        candidates = boxes[rec.video_id][t]
        x1, y1, x2, y2 = candidates[int(rng.integers(len(candidates)))]
        return (x1 + x2) / 2, (y1 + y2) / 2

    return pointing_predictions(dataset, point)


# ------------------------------------------------------------------------------------------ motion energy
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
    dataset: EvalDataset, videos_dir: str | Path, config: BaselineConfig | None = None
) -> Predictions:
    """Motion-energy points from the videos (``<id>.mp4`` or ``<id>/<second>.jpg`` under ``videos_dir``).

    Points are mapped from the decoded resolution to the record's frame size; a scored second past the end
    of the decoded video gets no point (a miss).
    """
    cfg = config or BaselineConfig()
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
        found, (w, h) = _motion_points(source, seconds, cfg.smooth_fraction)
        sx, sy = rec.frame_size[0] / w, rec.frame_size[1] / h  # pixel centres map between resolutions
        points[rec.video_id] = {
            t: ((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5) for t, (x, y) in found.items()
        }
    return pointing_predictions(dataset, lambda rec, t: points[rec.video_id].get(t))


# ---------------------------------------------------------------------------------------------- the rows
def mean_pointing(
    dataset: EvalDataset, predictions: Iterable[Predictions], scoring: ScoringConfig | None = None
) -> dict[str, float]:
    """Mean and standard deviation of the pointing accuracy over several predictions (e.g. seeds)."""
    values = [score_predictions(dataset, p, scoring, metrics=("pointing",))["pointing"] for p in predictions]
    return {"pointing": float(np.mean(values)), "pointing_std": float(np.std(values))}


def text_blind_rows(
    dataset: EvalDataset,
    videos_dir: str | Path | None = None,
    meta: str | Path | None = None,
    config: BaselineConfig | None = None,
    scoring: ScoringConfig | None = None,
) -> dict[str, dict[str, float]]:
    """Every text-blind row that applies to ``dataset``: ``{row name: {metric: value, "seconds": s}}``.

    Spatial datasets: chance by area (``pointing`` analytic, ``pointing_sampled`` over the seeds), random
    object (when a synthetic ``meta.json`` is given or found), motion energy (when ``videos_dir`` is
    given). Temporal datasets (MYT): the uniform split. ``seconds`` is each row's wall time.
    """
    cfg = config or BaselineConfig()
    rows: dict[str, dict[str, float]] = {}

    def timed(name: str, compute: Callable[[], dict[str, float]]) -> None:
        start = time.perf_counter()
        row = compute()
        rows[name] = row | {"seconds": time.perf_counter() - start}

    metrics = DATASET_METRICS.get(dataset.name, ())
    if "temporal" in metrics:
        timed(UNIFORM_SPLIT, lambda: text_blind_baseline(dataset, scoring))
    if "pointing" not in metrics:
        return rows

    def chance() -> dict[str, float]:
        sampled = mean_pointing(dataset, (random_point_predictions(dataset, s) for s in cfg.seeds), scoring)
        return {"pointing": chance_by_area(dataset), "pointing_sampled": sampled["pointing"]}

    timed(CHANCE_BY_AREA, chance)
    meta_path = Path(meta) if meta is not None else find_synth_meta(dataset.report.source)
    if meta_path is not None:

        def random_object() -> dict[str, float]:
            boxes = scene_object_boxes(dataset, meta_path)
            draws = (random_object_predictions(dataset, boxes, s) for s in cfg.seeds)
            return mean_pointing(dataset, draws, scoring)

        timed(RANDOM_OBJECT, random_object)
    if videos_dir is not None:
        timed(
            MOTION_ENERGY,
            lambda: mean_pointing(dataset, [motion_energy_predictions(dataset, videos_dir, cfg)], scoring),
        )
    return rows
