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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from stg_lightning.data.video import DECODE_ERRORS
from stg_lightning.errors import StgUserError
from stg_lightning.eval.frames import FrameSource, chunks, find_video, iter_source_frames
from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.readout import TIME_EPS, InferenceConfig, clip_record, clip_windows
from stg_lightning.eval.records import EvalDataset, VideoRecord
from stg_lightning.evaluating import evaluating
from stg_lightning.model import GroundingModel, Queries
from stg_lightning.model.patch_pooling import softmax_pool
from stg_lightning.progress import track

logger = logging.getLogger(__name__)


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


# ----------------------------------------------------------------------------------------- model passes
def frame_batch(model: GroundingModel, frames: list[np.ndarray]) -> Tensor:
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


def _step_outputs(
    model: GroundingModel, pixels: Tensor, q: Queries, cfg: InferenceConfig
) -> tuple[Tensor, Tensor | None]:
    """Clips [B, U, 3, S, S] → per token time step: similarity [B·U', Q] and heat [B·U', Q, h·w] (or None)."""
    raw = cfg.raw_features
    tokens, _ = model.encode_video(pixels, torch.ones(pixels.shape[:2], dtype=torch.bool))
    patches = tokens.patches.flatten(0, 1)
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
    return sim, heat


def _stream(
    model: GroundingModel,
    source: str | Path,
    queries: list[str],
    cfg: InferenceConfig,
    start: int = 0,
    end: int | None = None,
    read_frames: FrameSource = iter_source_frames,
) -> _Stream:
    """One pass over seconds [start, end) of a video: frames → chunks → per-second sums → means.

    Image backbones score every frame read; backbones with a temporal stride (S3D) score one window of
    ``window_frames`` frames per second (:func:`second_windows`), averaged over its token steps.
    """
    h, w = model.grid
    dtype = getattr(torch, cfg.heat_dtype)
    q = model.encode_queries(queries, cfg.raw_features)
    sims, heats, counts = [], [], []  # per second, grown as seconds arrive (O(T·Q·N) small numbers)
    frames = read_frames(source, cfg.fps, start, end, cfg.chunk_size)
    if model.temporal_stride == 1:
        batches = (
            ([t for t, _ in chunk], frame_batch(model, [f for _, f in chunk]))
            for chunk in chunks(frames, cfg.chunk_size)
        )
    else:
        batches = _window_batches(model, frames, cfg, start)
    for times, pixels in batches:
        sim, heat = _step_outputs(model, pixels, q, cfg)
        steps = sim.shape[0] // len(times)  # token steps per item (1 per frame; U'/window for a window)
        sim = sim.reshape(len(times), steps, -1).mean(1)
        heat = None if heat is None else heat.reshape(len(times), steps, *heat.shape[1:]).mean(1)
        for i, t in enumerate(times):
            second = math.floor(t + TIME_EPS) - start
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


def second_windows(
    frames: Iterator[tuple[float, np.ndarray]], fps: int, window: int, start: int
) -> Iterator[tuple[float, list[np.ndarray]]]:
    """(time of second s, its window) for every second read: the ``window`` frames from index
    s·fps + ⌊(fps − window)/2⌋ on (frames read at ``fps``; indices outside the video repeat its first
    or last frame). Only the frames a later window still needs are kept."""
    offset = (fps - window) // 2
    kept: dict[int, np.ndarray] = {}
    last = -1
    second = 0

    def window_of(s: int) -> list[np.ndarray]:
        first = s * fps + offset
        return [kept[min(max(k, 0), last)] for k in range(first, first + window)]

    for k, (_, frame) in enumerate(frames):
        kept[k], last = frame, k
        while second * fps + offset + window - 1 <= last:
            yield float(start + second), window_of(second)
            for old in [i for i in kept if 0 < i < (second + 1) * fps + offset]:
                del kept[old]  # frame 0 stays: it pads the windows of the first seconds
            second += 1
    while last >= 0 and second * fps <= last:  # the last seconds: windows padded with the last frame
        yield float(start + second), window_of(second)
        second += 1


def _window_batches(
    model: GroundingModel, frames: Iterator[tuple[float, np.ndarray]], cfg: InferenceConfig, start: int
) -> Iterator[tuple[list[float], Tensor]]:
    """(times, clips [B, window, 3, S, S]): chunks of per-second windows for a backbone with a temporal stride."""
    stride = model.temporal_stride
    if cfg.window_frames % stride or cfg.fps != int(cfg.fps):
        raise StgUserError(
            f"inference.window_frames ({cfg.window_frames}) must be a multiple of the backbone's temporal "
            f"stride {stride}, and inference.fps ({cfg.fps}) an integer, for windowed inference"
        )
    per_chunk = max(1, cfg.chunk_size // cfg.window_frames)
    for group in chunks(second_windows(frames, int(cfg.fps), cfg.window_frames, start), per_chunk):
        pixels = torch.cat([frame_batch(model, window) for _, window in group])
        yield [t for t, _ in group], pixels


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
        if (
            cfg.grounding == "all"
        ):  # every (second, query): another model's labels can be placed (stg combine)
            pairs = [(t, c) for t in range(num_frames) for c in range(len(queries))]
        else:  # the GT query at every GT-boxed second (what the trimmed metrics read)
            pairs = [
                (t, index.get(record.labels.get(t, ""), -1)) for t in sorted(record.boxes) if t < num_frames
            ]
        for t, c in pairs:
            # Where the untrimmed label already is the query, scoring reads the `frames` entry.
            if c >= 0 and labels[t] != c:
                grounding.append(
                    FramePrediction(t, queries[c], float(scores[t, c]), heat=_grid(stream, t, c))
                )
    step_scores = None
    if cfg.step_scores:
        columns = [index[s.query] for s in record.segments]
        step_scores = scores[:, columns].double().numpy()
    return VideoPredictions(frames, grounding, num_frames=num_frames, step_scores=step_scores)


def video_queries(record: VideoRecord) -> list[str]:
    """The query list of a video: its vocabulary, plus any segment query the vocabulary lacks."""
    return list(dict.fromkeys([*record.queries, *(s.query for s in record.segments)]))


def predict_video(
    model: GroundingModel,
    source: str | Path,
    record: VideoRecord,
    cfg: InferenceConfig | None = None,
    read_frames: FrameSource = iter_source_frames,
) -> VideoPredictions:
    """Untrimmed predictions of one video (a video file or a folder of ``<second>.jpg``) over its queries;
    `read_frames` decodes it (a `FrameCache` shares the decoding between readouts)."""
    cfg = cfg or InferenceConfig()
    queries = video_queries(record)
    with evaluating(model):
        return _predictions(
            _stream(model, source, queries, cfg, read_frames=read_frames), record, queries, cfg
        )


def predict_clips(
    model: GroundingModel,
    source: str | Path,
    record: VideoRecord,
    cfg: InferenceConfig | None = None,
    read_frames: FrameSource = iter_source_frames,
) -> Predictions:
    """Table-7 predictions: one entry per padded GT segment (``clip_windows``), keyed by clip id, clip time."""
    cfg = cfg or InferenceConfig()
    out: Predictions = {}
    with evaluating(model):
        for window in clip_windows(record):
            clip = clip_record(record, window)
            stream = _stream(model, source, clip.queries, cfg, window.start, window.end, read_frames)
            out[window.clip_id] = _predictions(stream, clip, clip.queries, cfg)
    return out


class PartialPredictionsError(StgUserError):
    """A video could not be decoded; ``predictions`` holds every video predicted before it."""

    def __init__(self, message: str, predictions: Predictions) -> None:
        super().__init__(message)
        self.predictions = predictions


def predict_dataset(
    model: GroundingModel,
    dataset: EvalDataset,
    videos_dir: str | Path,
    cfg: InferenceConfig | None = None,
    progress: bool = True,
    lenient: bool = False,
    read_frames: FrameSource = iter_source_frames,
) -> Predictions:
    """Predictions for every record (``cfg.mode``), the videos decoded by `read_frames`.

    A missing or undecodable video fails (an undecodable one with :class:`PartialPredictionsError`, which
    keeps the predictions made so far), or is skipped, counted and logged when ``lenient``.
    """
    cfg = cfg or InferenceConfig()
    out: Predictions = {}
    missing, undecodable = [], []
    for record in track(dataset.records, f"stg eval {dataset.name}", "video", disable=not progress):
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
        try:
            if cfg.mode == "clip":
                out.update(predict_clips(model, source, record, cfg, read_frames))
            else:
                out[record.video_id] = predict_video(model, source, record, cfg, read_frames)
        except DECODE_ERRORS as err:
            if not lenient:
                raise PartialPredictionsError(
                    f"{source}: cannot decode ({err}); --lenient skips undecodable videos and scores them as "
                    f"background ({len(out)} video(s) predicted before it)",
                    out,
                ) from err
            undecodable.append(record.video_id)
    for what, ids in (("missing", missing), ("undecodable", undecodable)):
        if ids:
            logger.warning(
                "%d of %d videos %s under %s (scored as background), e.g. %s",
                len(ids), len(dataset.records), what, videos_dir, ids[0],
            )  # fmt: skip
    return out
