"""Score a predictions file against loaded records: the engine behind ``stg eval --predictions``.

Predicted labels are compared with GT queries after :func:`normalise_query`. The evaluated length of
a video (:func:`evaluated_length`) is its record's, or the file's ``num_frames`` when that is longer (the
seconds past the last annotation are background): a predictions file never cuts the ground truth.
Entries past it are ignored, and every departure is counted in the result (:data:`BOOKKEEPING`):
videos without predictions (all background), files whose ``num_frames`` differs from the record,
trimmed seconds the file does not answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from stg_lightning.eval.baselines.random_object import ObjectBoxes
from stg_lightning.eval.metrics.iou_pointing import IoUPointing
from stg_lightning.eval.metrics.object_choice import ObjectChoice
from stg_lightning.eval.metrics.pointing import PointingGame
from stg_lightning.eval.metrics.spatial import HeatRows, MaskConfig
from stg_lightning.eval.metrics.spatial_map import SpatialMAP
from stg_lightning.eval.metrics.temporal import TemporalAlignment
from stg_lightning.eval.metrics.video_map import DEFAULT_THRESHOLDS, VideoMAP
from stg_lightning.eval.predictions import FramePrediction, Predictions, PredictionsError, VideoPredictions
from stg_lightning.eval.records import EvalDataset, VideoRecord, normalise_query
from stg_lightning.eval.viterbi import similarity_from_labels

DATASET_METRICS = {
    "gyt": ("pointing", "spatial_map", "iou_pointing", "video_map"),
    "yc_inter": ("pointing", "spatial_map"),
    "myt": ("temporal",),
}
TRIMMED_METRICS = {"pointing", "spatial_map", "object_choice"}  # scored on the trimmed (GT-boxed) seconds
# Result keys that count inputs rather than score them (not logged as metrics, printed as a summary).
BOOKKEEPING = (
    "videos",
    "unknown_videos",
    "videos_without_predictions",
    "length_mismatch_videos",
    "ignored_predictions",
    "trimmed_seconds",
    "trimmed_unanswered",
)
TRIMMED_FALLBACKS = ("same_label", "any_label")


@dataclass
class ScoringConfig:
    """Metric hyperparameters and conventions (docs/evaluation.md §5) and strictness."""

    tau: float = 0.01  # 3-D mask: heat ≥ tau
    relative_tau: bool = False  # … or heat ≥ tau · max(heat)
    spatial_iou: float = 0.3  # spatial mAP IoU threshold
    video_thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    background_score: float = 0.5  # Viterbi score of a background frame (MYT)
    temporal_thresholds: tuple[float, ...] = (0.1, 0.3, 0.5)  # MYT: fraction of steps with IoU ≥ θ
    # Also score the 3-D masks at these τ, under keys "<metric>|tau=<τ>" (Table 12).
    tau_sweep: tuple[float, ...] = ()
    # IoU+Pointing averages over the video's GT classes, or "union": GT and predicted classes.
    iou_pointing_classes: str = "gt"
    # Pointing: zero-area GT boxes are not scored, or "miss": scored as misses (the authors' evaluation).
    zero_area_boxes: str = "exclude"
    # A trimmed query without grounding entry reads the frames entry of that label ("same_label"), or the
    # frames entry at that second whatever its label ("any_label": files with one heat map per second).
    trimmed_fallback: str = "same_label"
    lenient: bool = False  # predictions for unknown videos: skip and count instead of failing

    def __post_init__(self) -> None:
        if self.trimmed_fallback not in TRIMMED_FALLBACKS:
            raise ValueError(
                f"trimmed_fallback must be one of {TRIMMED_FALLBACKS}, got {self.trimmed_fallback!r}"
            )


@dataclass
class _Spatial:
    heat: HeatRows | None
    points: np.ndarray
    boxes: np.ndarray


def score_predictions(
    dataset: EvalDataset,
    predictions: Predictions,
    config: ScoringConfig | None = None,
    metrics: tuple[str, ...] | None = None,
    object_boxes: ObjectBoxes | None = None,
) -> dict[str, float]:
    """All metrics of ``dataset`` (or the named ``metrics``) for ``predictions`` → ``{name: value}``.

    ``"object_choice"`` (synthetic splits) needs ``object_boxes``, every on-screen object's box per scored
    second (`load_object_boxes`)."""
    cfg = config or ScoringConfig()
    names = metrics or DATASET_METRICS.get(dataset.name)
    if names is None:
        raise ValueError(f"no default metrics for dataset {dataset.name!r}; pass metrics=...")
    if "object_choice" in names and object_boxes is None:
        raise ValueError("metric 'object_choice' needs object_boxes (eval/baselines/random_object.py)")
    records = dataset.by_id()
    unknown = sorted(set(predictions) - set(records))
    if unknown and not cfg.lenient:
        raise PredictionsError(
            f"predictions for {len(unknown)} video(s) not in {dataset.name} ({dataset.report.source}), "
            f"e.g. {unknown[0]!r} (pass lenient=True / --lenient to skip them)"
        )
    counts = dict.fromkeys(BOOKKEEPING, 0)
    counts["videos"], counts["unknown_videos"] = len(records), len(unknown)
    for rec in dataset.records:
        video = predictions.get(rec.video_id)
        counts["videos_without_predictions"] += video is None
        counts["length_mismatch_videos"] += (
            video is not None and video.num_frames is not None and video.num_frames != rec.num_frames
        )
        n = evaluated_length(rec, video)
        counts["ignored_predictions"] += 0 if video is None else sum(p.t >= n for p in video.frames)
    result: dict[str, float] = {}
    spatial = {name for name in names if name != "temporal"}
    if spatial:
        mask = MaskConfig(cfg.tau, cfg.relative_tau)
        classes = _class_ids(dataset.records, predictions)
        metric = {
            "pointing": PointingGame(cfg.zero_area_boxes),
            "spatial_map": SpatialMAP(cfg.spatial_iou, mask),
            "iou_pointing": IoUPointing(cfg.iou_pointing_classes),
            "video_map": VideoMAP(cfg.video_thresholds, mask),
            "object_choice": ObjectChoice(),
        }
        for rec in dataset.records:
            objects = None if object_boxes is None else object_boxes[rec.video_id]
            _update_spatial(
                rec, predictions.get(rec.video_id), classes, metric, spatial, cfg, counts, objects
            )
        for name in sorted(spatial):
            value = metric[name].compute()
            result.update(
                {k: float(v) for k, v in value.items()} if isinstance(value, dict) else {name: float(value)}
            )
        masked = sorted({"spatial_map", "video_map"} & spatial)
        for tau in cfg.tau_sweep if masked else ():
            swept = replace(cfg, tau=tau, tau_sweep=())
            values = score_predictions(dataset, predictions, swept, metrics=tuple(masked))
            # the results that depend on the 3-D mask (not the counts, not the pointing game)
            mask_results = {k: v for k, v in values.items() if k.startswith(("spatial_", "video_map"))}
            result.update({f"{k}|tau={tau:g}": v for k, v in mask_results.items()})
    if "temporal" in names:
        temporal = TemporalAlignment(cfg.background_score, cfg.temporal_thresholds)
        for rec in dataset.records:
            gt = step_targets(rec, evaluated_length(rec, predictions.get(rec.video_id)))
            similarity = _step_scores(rec, predictions.get(rec.video_id), len(gt))
            temporal.update(gt, similarity=similarity, step_classes=step_classes(rec))
        result.update({f"temporal_{k}": float(v) for k, v in temporal.compute().items()})
    if not TRIMMED_METRICS & spatial:
        del counts["trimmed_seconds"], counts["trimmed_unanswered"]
    result.update({k: float(v) for k, v in counts.items()})
    return result


def evaluated_length(record: VideoRecord, video: VideoPredictions | None) -> int:
    """Seconds scored: the annotation's length, or the file's ``num_frames`` when longer (never shorter)."""
    given = video.num_frames if video is not None and video.num_frames is not None else 0
    return max(record.num_frames, given)


def step_targets(record: VideoRecord, num_frames: int) -> np.ndarray:
    """Per-frame index into ``record.segments`` (-1 = background); overlaps: the later segment wins."""
    gt = np.full(num_frames, -1, dtype=np.int64)
    for i, seg in enumerate(record.segments):
        frames = [t for t in seg.frames() if t < num_frames]
        gt[frames] = i
    return gt


def step_classes(record: VideoRecord) -> list[int]:
    """Class of each ordered step: steps with the same query share one (MYT per-class metrics)."""
    names = sorted({seg.query for seg in record.segments})
    return [names.index(seg.query) for seg in record.segments]


def _class_ids(records: list[VideoRecord], predictions: Predictions) -> dict[str, int]:
    names = {q for r in records for q in r.labels.values()}
    names |= {normalise_query(p.label) for v in predictions.values() for p in v.frames if p.label is not None}
    return {name: i for i, name in enumerate(sorted(names))}


def _stack(entries: list[FramePrediction | None]) -> _Spatial:
    """Row-aligned spatial answers (NaN rows = absent; heat as one optional grid per row, any shapes)."""
    n = len(entries)
    points, boxes = np.full((n, 2), np.nan), np.full((n, 4), np.nan)
    for i, e in enumerate(entries):
        if e is not None and e.point is not None:
            points[i] = e.point
        if e is not None and e.box is not None:
            boxes[i] = e.box
    heat = HeatRows.of([None if e is None else e.heat for e in entries])
    return _Spatial(heat, points, boxes)


def _trimmed_entry(
    t: int, query: str, frame: FramePrediction | None, grounding: dict, fallback: str
) -> FramePrediction | None:
    """The answer to the trimmed query (t, query): grounding entry, else the frames entry (rule: ``fallback``)."""
    if (t, query) in grounding:
        return grounding[(t, query)]
    if frame is None:
        return None
    if fallback == "any_label" or (frame.label is not None and normalise_query(frame.label) == query):
        return frame
    return None


def _update_spatial(
    rec: VideoRecord,
    video: VideoPredictions | None,
    classes: dict[str, int],
    metric: dict,
    names: set[str],
    cfg: ScoringConfig,
    counts: dict[str, int],
    objects: dict[int, list] | None = None,
) -> None:
    """Feed one video to the spatial metrics and count its trimmed seconds and unanswered queries
    (`objects`: its on-screen object boxes per scored second, for object choice)."""
    video = video or VideoPredictions()
    n = evaluated_length(rec, video)
    untrimmed: list[FramePrediction | None] = [None] * n
    for p in video.frames:
        if p.t < n:
            untrimmed[p.t] = p

    if TRIMMED_METRICS & names:
        grounding = {(p.t, normalise_query(p.label)): p for p in video.grounding if p.label is not None}
        seconds = sorted(t for t in rec.boxes if t in rec.labels and t < n)
        entries = [
            _trimmed_entry(t, rec.labels[t], untrimmed[t], grounding, cfg.trimmed_fallback) for t in seconds
        ]
        counts["trimmed_seconds"] += len(seconds)
        counts["trimmed_unanswered"] += sum(e is None for e in entries)
        s = _stack(entries)
        gt_boxes = np.array([rec.boxes[t] for t in seconds], dtype=np.float64).reshape(-1, 4)
        if "pointing" in names:
            metric["pointing"].update(gt_boxes, rec.frame_size, heat=s.heat, points=s.points, boxes=s.boxes)
        if "object_choice" in names:
            metric["object_choice"].update(
                gt_boxes,
                [objects[t] for t in seconds],
                rec.frame_size,
                heat=s.heat,
                points=s.points,
                boxes=s.boxes,
            )
        if "spatial_map" in names:
            cls = np.array([classes[rec.labels[t]] for t in seconds], dtype=np.int64)
            scores = np.array([np.nan if e is None else e.score for e in entries])
            metric["spatial_map"].update(cls, scores, gt_boxes, rec.frame_size, heat=s.heat, boxes=s.boxes)

    if {"iou_pointing", "video_map"} & names:
        s = _stack(untrimmed)
        pred = np.array(
            [-1 if e is None or e.label is None else classes[normalise_query(e.label)] for e in untrimmed],
            dtype=np.int64,
        )
        scores = np.array([0.0 if e is None else e.score for e in untrimmed])
        gt = np.array([classes[rec.labels[t]] if t in rec.labels else -1 for t in range(n)], dtype=np.int64)
        gt_boxes = np.full((n, 4), np.nan)
        for t, box in rec.boxes.items():
            if t < n:
                gt_boxes[t] = box
        if "iou_pointing" in names:
            metric["iou_pointing"].update(
                pred, gt, gt_boxes, rec.frame_size, heat=s.heat, points=s.points, boxes=s.boxes
            )
        if "video_map" in names:
            metric["video_map"].update(pred, scores, gt, gt_boxes, rec.frame_size, heat=s.heat, boxes=s.boxes)


def _step_scores(rec: VideoRecord, video: VideoPredictions | None, n: int) -> np.ndarray:
    """The video's [n, S] similarity to its ordered steps: given, or one-hot from per-frame labels.

    A given matrix with fewer than ``n`` rows is padded with 0 (no evidence for any step: those seconds
    fall to background unless a step needs them); rows past ``n`` are dropped.
    """
    steps = [s.query for s in rec.segments]
    if video is not None and video.step_scores is not None:
        if video.step_scores.ndim != 2 or video.step_scores.shape[1] != len(steps):
            raise PredictionsError(
                f"predictions for video {rec.video_id!r}: step_scores must be [frames, {len(steps)}] "
                f"(frames × ordered steps), got {list(video.step_scores.shape)}"
            )
        sim = np.zeros((n, len(steps)))
        rows = min(n, len(video.step_scores))
        sim[:rows] = video.step_scores[:rows]
        return sim
    labels: list[str | None] = [None] * n
    for p in video.frames if video is not None else []:
        if p.t < n and p.label is not None:
            labels[p.t] = normalise_query(p.label)
    return similarity_from_labels(labels, steps)
