"""Inference (docs/evaluation.md §1): a GroundingModel → per-second predictions of untrimmed videos.

One streaming pass per video (or per clip window): frames at ``fps`` are read in chunks of ``chunk_size``,
each chunk goes through the backbone once, and per second we keep only
  * the temporal similarity ``s[t, c] = cos(f(v_t), g(q_c))`` to each query of the video (raw backbone
    CLS/EOT instead of f/g with ``raw_features``, the zero-shot baseline), and
  * one heat grid ``[h, w]`` per query (the backbone's patch grid, rows of a frame sum to 1; never
    upsampled here — the metrics upsample and threshold at τ).
Frames and tokens are dropped after their chunk, so memory is O(chunk) plus O(T · Q · h · w) for the grids.
Heat is computed for every query (not only the predicted one) because labels depend on the whole
video's scores (min-max, median); per query and frame it costs one local-head pass on N patches, which is
small next to the backbone.

Frames are resized to the backbone's ``image_size`` square as a whole (no crop, aspect not kept), so the
heat grid covers the full frame and maps back to it by plain scaling.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from stg_lightning.errors import StgUserError
from stg_lightning.eval.frames import chunks, find_video, iter_source_frames
from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.records import EvalDataset, Segment, VideoRecord
from stg_lightning.evaluating import evaluating
from stg_lightning.model import GroundingModel
from stg_lightning.model.patch_pooling import softmax_pool

logger = logging.getLogger(__name__)

NORMALISATIONS = ("none", "minmax", "query_minmax")
# Slack for float round-off when mapping frame times to whole seconds.
_EPS = 1e-6


@dataclass
class InferenceConfig:
    """How predictions are made (docs/evaluation.md §1; the defaults are the paper's readout).

    temporal: the frame–query score s[t, c]: "global" = cos(f(frame token), g(query)) (paper), or
        "patch_pool" = the frame's patch cosines cos(f(patch), g(query)) pooled by a softmax over patches
        at patch_pool_temperature (the score `stg pretrain`'s patch term trains; reads *where* to say *when*).
    theta: a second gets the best query's label if its score ≥ theta, else background (paper 0.5).
    normalise: "none" (raw cosine), "minmax" (the video's whole [T, Q] score matrix mapped to [0, 1]) or
        "query_minmax" (each query's scores over the video mapped to [0, 1]: removes per-query offsets,
        e.g. one step's text scoring higher than another's on every frame).
    median_window: odd temporal median filter on each query's scores (1 = off).
    chunk_size: frames per backbone forward (bounds memory).
    spatial: "rollout" (local-head attention rollout) or "patch_similarity" (cosine of patch tokens under
        f with the query under g; with raw_features the CLIP zero-shot heatmap).
    fps: frames read per second; several frames of one second are averaged (frame folders: 1 only).
    raw_features: score with raw backbone CLS/EOT tokens instead of the global head (zero-shot).
    mode: "untrimmed" (whole videos) or "clip" (paper Table 7: each GT segment padded by its length).
    heatmaps: compute heat grids at all (off for temporal-only datasets such as MiningYouTube).
    step_scores: write each video's [T, S] similarity to its ordered steps (MiningYouTube's Viterbi).
    heat_dtype: storage of the heat grids.
    """

    temporal: Literal["global", "patch_pool"] = "global"
    patch_pool_temperature: float = 0.05
    theta: float = 0.5
    normalise: Literal["none", "minmax", "query_minmax"] = "none"
    median_window: int = 1
    chunk_size: int = 32
    spatial: Literal["rollout", "patch_similarity"] = "rollout"
    fps: float = 1.0
    raw_features: bool = False
    mode: Literal["untrimmed", "clip"] = "untrimmed"
    heatmaps: bool = True
    step_scores: bool = True
    heat_dtype: Literal["float32", "float16"] = "float32"

    def __post_init__(self) -> None:
        checks = [
            (
                self.normalise in NORMALISATIONS,
                f"normalise must be one of {', '.join(NORMALISATIONS)}",
            ),
            (self.median_window >= 1 and self.median_window % 2 == 1, "median_window must be odd and >= 1"),
            (self.chunk_size >= 1, "chunk_size must be >= 1"),
            (self.temporal in ("global", "patch_pool"), "temporal must be 'global' or 'patch_pool'"),
            (self.patch_pool_temperature >= 0, "patch_pool_temperature must be >= 0"),
            (
                self.spatial in ("rollout", "patch_similarity"),
                "spatial must be 'rollout' or 'patch_similarity'",
            ),
            (self.fps >= 1, "fps must be >= 1 (predictions are per second)"),
            (self.mode in ("untrimmed", "clip"), "mode must be 'untrimmed' or 'clip'"),
            (self.heat_dtype in ("float32", "float16"), "heat_dtype must be 'float32' or 'float16'"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"InferenceConfig.{message}, got {self}")


# ----------------------------------------------------------------------------------------- temporal labels
def postprocess_scores(sim: Tensor, cfg: InferenceConfig) -> Tensor:
    """[T, Q] similarities → normalised (per video) and median-smoothed (per query, edges replicated)."""
    out = sim.float()
    if cfg.normalise != "none" and out.numel():
        per_query = cfg.normalise == "query_minmax"
        lo = out.amin(0, keepdim=True) if per_query else out.min()
        span = (out.amax(0, keepdim=True) if per_query else out.max()) - lo
        out = torch.where(span > 0, (out - lo) / span.clamp(min=torch.finfo(out.dtype).tiny), 0.0)
    if cfg.median_window > 1 and out.shape[0] > 1:
        half = cfg.median_window // 2
        padded = F.pad(out.T[:, None], (half, half), mode="replicate")[:, 0]  # [Q, T + 2·half]
        out = padded.unfold(-1, cfg.median_window, 1).median(-1).values.T
    return out


def temporal_labels(scores: Tensor, theta: float) -> tuple[Tensor, Tensor]:
    """Post-processed [T, Q] scores → label [T] (query index, -1 = background) and its score [T]."""
    if scores.shape[1] == 0:
        return torch.full((scores.shape[0],), -1, dtype=torch.long), torch.zeros(scores.shape[0])
    best, label = scores.max(dim=1)
    return torch.where(best >= theta, label, torch.full_like(label, -1)), best


# ----------------------------------------------------------------------------------------- clip windows
@dataclass(frozen=True)
class ClipWindow:
    """One Table-7 clip: GT segment ``index`` of ``video_id`` padded by its own length, seconds [start, end)."""

    clip_id: str
    video_id: str
    index: int
    start: int
    end: int


def clip_windows(record: VideoRecord) -> list[ClipWindow]:
    """Each GT segment padded before and after by its own length, clipped to the video."""
    windows = []
    for i, seg in enumerate(record.segments):
        pad = seg.end - seg.start
        start = max(0, math.ceil(seg.start - pad - _EPS))
        end = min(record.num_frames, math.ceil(seg.end + pad - _EPS))
        if end > start:
            windows.append(ClipWindow(f"{record.video_id}#{i}", record.video_id, i, start, end))
    return windows


def clip_record(record: VideoRecord, window: ClipWindow) -> VideoRecord:
    """The clip's ground truth in clip time (t − start): only its own step is labelled."""
    seg = record.segments[window.index]
    frames = [t for t in seg.frames() if window.start <= t < window.end]
    return VideoRecord(
        video_id=window.clip_id,
        frame_size=record.frame_size,
        num_frames=window.end - window.start,
        segments=[Segment(seg.label, seg.query, seg.start - window.start, seg.end - window.start)],
        labels={t - window.start: seg.query for t in frames},
        boxes={t - window.start: record.boxes[t] for t in frames if t in record.boxes},
        queries=[seg.query],
        source=record.source,
    )


def scored_dataset(dataset: EvalDataset, mode: str) -> EvalDataset:
    """What predictions of ``mode`` are scored against: the dataset itself, or its Table-7 clips."""
    if mode == "untrimmed":
        return dataset
    clips = [clip_record(rec, w) for rec in dataset.records for w in clip_windows(rec)]
    return EvalDataset(dataset.name, clips, dataset.report)


# ----------------------------------------------------------------------------------------- model passes
def _frame_batch(model: GroundingModel, frames: list[np.ndarray]) -> Tensor:
    """HxWx3 uint8 frames → [1, C, 3, S, S] normalised, the whole frame resized to the S×S input."""
    size = model.image_size
    x = torch.from_numpy(np.stack(frames)).to(next(model.parameters()).device).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return model.normalize(x.clamp(0, 255) / 255.0)[None]


def _similarity_heat(cosines: Tensor) -> Tensor:
    """Patch–query cosines [C, Q, N] → heat (each row sums to 1; a flat map becomes uniform)."""
    heat = cosines - cosines.amin(-1, keepdim=True)  # keeps the ranking
    total = heat.sum(-1, keepdim=True)
    return torch.where(total > 0, heat / total.clamp(min=1e-12), torch.full_like(heat, 1 / heat.shape[-1]))


@dataclass
class _Stream:
    """Per-second results of one pass: similarity [T, Q] and heat grids [T, Q, h, w] (or None)."""

    sim: Tensor
    heat: Tensor | None


def _stream(
    model: GroundingModel,
    source: str | Path,
    queries: list[str],
    cfg: InferenceConfig,
    start: int = 0,
    end: int | None = None,
) -> _Stream:
    """One pass over seconds [start, end) of a video: frames → chunks → per-second sums → means."""
    if model.temporal_stride != 1:
        raise StgUserError(
            f"inference reads single frames per second; backbone {type(model.backbone_cfg).__name__} has "
            f"temporal stride {model.temporal_stride} (use an image backbone, e.g. open_clip)"
        )
    h, w = model.grid
    dtype = getattr(torch, cfg.heat_dtype)
    raw = cfg.raw_features
    q = model.encode_queries(queries, raw)
    sims, heats, counts = [], [], []  # per second, grown as seconds arrive (O(T·Q·N) small numbers)
    for chunk in chunks(iter_source_frames(source, cfg.fps, start, end, cfg.chunk_size), cfg.chunk_size):
        pixels = _frame_batch(model, [f for _, f in chunk])
        tokens, _ = model.encode_video(pixels, torch.ones(pixels.shape[:2], dtype=torch.bool))
        patches = tokens.patches[0]
        similarity_heat = cfg.heatmaps and cfg.spatial == "patch_similarity"
        cosines = None
        if cfg.temporal == "patch_pool" or similarity_heat:
            cosines = model.patch_query_scores(patches, q, raw)
        if cfg.temporal == "patch_pool":
            sim = softmax_pool(cosines, cfg.patch_pool_temperature).cpu()
        else:
            sim = model.frame_query_scores(tokens, q, raw).cpu()
        heat = None
        if cfg.heatmaps:
            heat = (_similarity_heat(cosines) if similarity_heat else model.heat(patches, q)).cpu()
        for i, (t, _) in enumerate(chunk):
            second = math.floor(t + _EPS) - start
            if second == len(sims):
                sims.append(torch.zeros(len(queries)))
                heats.append(torch.zeros(len(queries), h * w) if heat is not None else None)
                counts.append(0)
            sims[second] += sim[i]
            if heat is not None:
                heats[second] += heat[i]
            counts[second] += 1
    n = torch.tensor(counts, dtype=torch.float32)
    sim = torch.stack(sims) / n[:, None] if sims else torch.zeros(0, len(queries))
    if not cfg.heatmaps or not heats:
        return _Stream(sim, None)
    heat = (torch.stack(heats) / n[:, None, None]).reshape(len(sims), len(queries), h, w).to(dtype)
    return _Stream(sim, heat)


# ----------------------------------------------------------------------------------------- predictions
def _grid(stream: _Stream, t: int, query: int) -> np.ndarray | None:
    return None if stream.heat is None else stream.heat[t, query].numpy()


def _predictions(
    stream: _Stream, record: VideoRecord, queries: list[str], cfg: InferenceConfig
) -> VideoPredictions:
    """Labels, heat for labelled seconds, grounding entries at GT box seconds and step scores."""
    scores = postprocess_scores(stream.sim, cfg)
    labels, best = temporal_labels(scores, cfg.theta)
    num_frames = scores.shape[0]
    frames = [
        FramePrediction(
            t,
            None if c < 0 else queries[c],
            float(best[t]),
            heat=None if c < 0 else _grid(stream, t, c),
        )
        for t, c in enumerate(labels.tolist())
    ]
    index = {query: i for i, query in enumerate(queries)}
    grounding = []
    if cfg.heatmaps:
        for t in sorted(record.boxes):
            query = record.labels.get(t, "")
            c = index.get(query, -1)
            # Where the untrimmed label already is the GT query, scoring reads the `frames` entry.
            if t < num_frames and c >= 0 and labels[t] != c:
                grounding.append(FramePrediction(t, query, float(scores[t, c]), heat=_grid(stream, t, c)))
    step_scores = None
    if cfg.step_scores:
        columns = [index[s.query] for s in record.segments]
        step_scores = scores[:, columns].double().numpy()
    return VideoPredictions(frames, grounding, num_frames=num_frames, step_scores=step_scores)


def video_queries(record: VideoRecord) -> list[str]:
    """The query list of a video: its vocabulary, plus any segment query the vocabulary lacks."""
    return list(dict.fromkeys([*record.queries, *(s.query for s in record.segments)]))


def predict_video(
    model: GroundingModel, source: str | Path, record: VideoRecord, cfg: InferenceConfig | None = None
) -> VideoPredictions:
    """Untrimmed predictions of one video (a video file or a folder of ``<second>.jpg``) over its queries."""
    cfg = cfg or InferenceConfig()
    queries = video_queries(record)
    with evaluating(model):
        return _predictions(_stream(model, source, queries, cfg), record, queries, cfg)


def predict_clips(
    model: GroundingModel, source: str | Path, record: VideoRecord, cfg: InferenceConfig | None = None
) -> Predictions:
    """Table-7 predictions: one entry per padded GT segment (``clip_windows``), keyed by clip id, clip time."""
    cfg = cfg or InferenceConfig()
    out: Predictions = {}
    with evaluating(model):
        for window in clip_windows(record):
            clip = clip_record(record, window)
            stream = _stream(model, source, clip.queries, cfg, window.start, window.end)
            out[window.clip_id] = _predictions(stream, clip, clip.queries, cfg)
    return out


def predict_dataset(
    model: GroundingModel,
    dataset: EvalDataset,
    videos_dir: str | Path,
    cfg: InferenceConfig | None = None,
    progress: bool = True,
    lenient: bool = False,
) -> Predictions:
    """Predictions for every record (``cfg.mode``); a missing video fails, or is skipped when ``lenient``."""
    cfg = cfg or InferenceConfig()
    out: Predictions = {}
    missing = []
    for record in tqdm(dataset.records, desc=f"stg eval {dataset.name}", unit="video", disable=not progress):
        source = find_video(videos_dir, record.video_id)
        if source is None:
            if not lenient:
                raise StgUserError(
                    f"--videos {videos_dir}: no video or frame folder for {record.video_id!r} "
                    f"(expected {record.video_id}.mp4 or {record.video_id}/<second>.jpg; "
                    f"--lenient scores missing videos as background)"
                )
            missing.append(record.video_id)
            continue
        if cfg.mode == "clip":
            out.update(predict_clips(model, source, record, cfg))
        else:
            out[record.video_id] = predict_video(model, source, record, cfg)
    if missing:
        logger.warning(
            "%d of %d videos missing under %s, e.g. %s",
            len(missing),
            len(dataset.records),
            videos_dir,
            missing[0],
        )
    return out
