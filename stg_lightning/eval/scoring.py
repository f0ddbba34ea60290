"""Score a predictions file against loaded records: the engine behind ``stg eval --predictions``.

Predicted labels are compared with GT queries after :func:`normalise_query`. The evaluated length of
a video is the predictions' ``num_frames`` when given, else the record's; predictions past it are
ignored (and counted). Videos without predictions score as all background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from stg_lightning.eval.metrics import (
    IoUPointing,
    MaskConfig,
    PointingGame,
    SpatialMAP,
    TemporalAlignment,
    VideoMAP,
)
from stg_lightning.eval.metrics.video_map import DEFAULT_THRESHOLDS
from stg_lightning.eval.predictions import FramePrediction, Predictions, PredictionsError, VideoPredictions
from stg_lightning.eval.records import EvalDataset, VideoRecord, normalise_query
from stg_lightning.eval.viterbi import similarity_from_labels

DATASET_METRICS = {
    "gyt": ("pointing", "spatial_map", "iou_pointing", "video_map"),
    "yc_inter": ("pointing", "spatial_map"),
    "myt": ("temporal",),
}


@dataclass
class ScoringConfig:
    """Metric hyperparameters (docs/evaluation.md §5) and strictness."""

    tau: float = 0.01  # 3-D mask: heat ≥ tau
    relative_tau: bool = False  # … or heat ≥ tau · max(heat)
    spatial_iou: float = 0.3  # spatial mAP IoU threshold
    video_thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    background_score: float = 0.5  # Viterbi score of a background frame (MYT)
    lenient: bool = False  # predictions for unknown videos: skip and count instead of failing


@dataclass
class _Spatial:
    heat: Tensor | None
    points: Tensor
    boxes: Tensor


def score_predictions(
    dataset: EvalDataset,
    predictions: Predictions,
    config: ScoringConfig | None = None,
    metrics: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """All metrics of ``dataset`` (or the named ``metrics``) for ``predictions`` → ``{name: value}``."""
    cfg = config or ScoringConfig()
    names = metrics or DATASET_METRICS.get(dataset.name)
    if names is None:
        raise ValueError(f"no default metrics for dataset {dataset.name!r}; pass metrics=...")
    records = dataset.by_id()
    unknown = sorted(set(predictions) - set(records))
    if unknown and not cfg.lenient:
        raise PredictionsError(
            f"predictions for {len(unknown)} video(s) not in {dataset.name} ({dataset.report.source}), "
            f"e.g. {unknown[0]!r} (pass lenient=True / --lenient to skip them)"
        )
    mask = MaskConfig(cfg.tau, cfg.relative_tau)
    classes = _class_ids(dataset.records, predictions)
    result: dict[str, float] = {"videos": float(len(records)), "unknown_videos": float(len(unknown))}
    ignored = 0
    spatial = {name for name in names if name != "temporal"}
    if spatial:
        metric = {
            "pointing": PointingGame(),
            "spatial_map": SpatialMAP(cfg.spatial_iou, mask),
            "iou_pointing": IoUPointing(),
            "video_map": VideoMAP(cfg.video_thresholds, mask),
        }
        for rec in dataset.records:
            ignored += _update_spatial(rec, predictions.get(rec.video_id), classes, metric, spatial)
        for name in sorted(spatial):
            value = metric[name].compute()
            result.update(
                {k: float(v) for k, v in value.items()} if isinstance(value, dict) else {name: float(value)}
            )
    if "temporal" in names:
        temporal = TemporalAlignment(cfg.background_score)
        for rec in dataset.records:
            gt = step_targets(rec, _num_frames(rec, predictions.get(rec.video_id)))
            temporal.update(gt, similarity=_step_scores(rec, predictions.get(rec.video_id), len(gt)))
        result.update({f"temporal_{k}": float(v) for k, v in temporal.compute().items()})
    result["ignored_predictions"] = float(ignored)
    return result


def step_targets(record: VideoRecord, num_frames: int) -> Tensor:
    """Per-frame index into ``record.segments`` (-1 = background); overlaps: the later segment wins."""
    gt = torch.full((num_frames,), -1, dtype=torch.long)
    for i, seg in enumerate(record.segments):
        frames = [t for t in seg.frames() if t < num_frames]
        gt[frames] = i
    return gt


def _class_ids(records: list[VideoRecord], predictions: Predictions) -> dict[str, int]:
    names = {q for r in records for q in r.labels.values()}
    names |= {normalise_query(p.label) for v in predictions.values() for p in v.frames if p.label is not None}
    return {name: i for i, name in enumerate(sorted(names))}


def _num_frames(record: VideoRecord, video: VideoPredictions | None) -> int:
    if video is not None and video.num_frames is not None:
        return video.num_frames
    return record.num_frames


def _stack(entries: list[FramePrediction | None], where: str) -> _Spatial:
    """Row-aligned spatial tensors (NaN rows = absent) from optional per-row predictions."""
    n = len(entries)
    points = torch.full((n, 2), float("nan"))
    boxes = torch.full((n, 4), float("nan"))
    shapes = {e.heat.shape for e in entries if e is not None and e.heat is not None}
    if len(shapes) > 1:
        raise PredictionsError(f"{where}: heat grids of one video must share a shape, got {sorted(shapes)}")
    heat = torch.full((n, *shapes.pop()), float("nan")) if shapes else None
    for i, e in enumerate(entries):
        if e is None:
            continue
        if e.point is not None:
            points[i] = torch.tensor(e.point)
        if e.box is not None:
            boxes[i] = torch.tensor(e.box)
        if e.heat is not None:
            heat[i] = torch.from_numpy(np.asarray(e.heat, dtype=np.float32))
    return _Spatial(heat, points, boxes)


def _update_spatial(
    rec: VideoRecord, video: VideoPredictions | None, classes: dict[str, int], metric: dict, names: set[str]
) -> int:
    """Feed one video to the spatial metrics; returns the number of predictions past its length."""
    video = video or VideoPredictions()
    n = _num_frames(rec, video)
    where = f"predictions for video {rec.video_id!r}"
    untrimmed: list[FramePrediction | None] = [None] * n
    for p in video.frames:
        if p.t < n:
            untrimmed[p.t] = p
    ignored = len(video.frames) - sum(e is not None for e in untrimmed)

    if {"pointing", "spatial_map"} & names:
        grounding = {(p.t, normalise_query(p.label)): p for p in video.grounding if p.label is not None}
        seconds = sorted(t for t in rec.boxes if t in rec.labels)
        entries = []
        for t in seconds:
            q = rec.labels[t]
            frame = untrimmed[t] if t < n else None
            fallback = (
                frame
                if frame is not None and frame.label is not None and normalise_query(frame.label) == q
                else None
            )
            entries.append(grounding.get((t, q), fallback))
        s = _stack(entries, where)
        gt_boxes = torch.tensor([rec.boxes[t] for t in seconds], dtype=torch.float32).reshape(-1, 4)
        if "pointing" in names:
            metric["pointing"].update(gt_boxes, rec.frame_size, heat=s.heat, points=s.points, boxes=s.boxes)
        if "spatial_map" in names:
            cls = torch.tensor([classes[rec.labels[t]] for t in seconds], dtype=torch.long)
            scores = torch.tensor([float("nan") if e is None else e.score for e in entries])
            metric["spatial_map"].update(cls, scores, gt_boxes, rec.frame_size, heat=s.heat, boxes=s.boxes)

    if {"iou_pointing", "video_map"} & names:
        s = _stack(untrimmed, where)
        pred = torch.tensor(
            [-1 if e is None or e.label is None else classes[normalise_query(e.label)] for e in untrimmed],
            dtype=torch.long,
        )
        scores = torch.tensor([0.0 if e is None else e.score for e in untrimmed])
        gt = torch.tensor(
            [classes[rec.labels[t]] if t in rec.labels else -1 for t in range(n)], dtype=torch.long
        )
        gt_boxes = torch.full((n, 4), float("nan"))
        for t, box in rec.boxes.items():
            if t < n:
                gt_boxes[t] = torch.tensor(box)
        if "iou_pointing" in names:
            metric["iou_pointing"].update(
                pred, gt, gt_boxes, rec.frame_size, heat=s.heat, points=s.points, boxes=s.boxes
            )
        if "video_map" in names:
            metric["video_map"].update(pred, scores, gt, gt_boxes, rec.frame_size, heat=s.heat, boxes=s.boxes)
    return ignored


def _step_scores(rec: VideoRecord, video: VideoPredictions | None, n: int) -> Tensor:
    """The video's [T, S] similarity to its ordered steps: given, or one-hot from per-frame labels."""
    steps = [s.query for s in rec.segments]
    if video is not None and video.step_scores is not None:
        if video.step_scores.shape != (n, len(steps)):
            raise PredictionsError(
                f"predictions for video {rec.video_id!r}: step_scores must be [{n}, {len(steps)}] "
                f"(frames × ordered steps), got {list(video.step_scores.shape)}"
            )
        return torch.from_numpy(video.step_scores)
    labels: list[str | None] = [None] * n
    for p in video.frames if video is not None else []:
        if p.t < n and p.label is not None:
            labels[p.t] = normalise_query(p.label)
    return similarity_from_labels(labels, steps)
