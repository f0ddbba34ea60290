"""What inference reads out and what it is scored against, without the model (no torch import).

:class:`InferenceConfig` (docs/evaluation.md §1) and the Table-7 clip protocol (§2): each GT segment
padded before and after by its own length becomes a clip with its own ground truth, so ``stg eval
--predictions`` can score clip-mode files without loading a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from stg_lightning.eval.records import EvalDataset, Segment, VideoRecord

NORMALISATIONS = ("none", "minmax", "query_minmax")
# Slack for float round-off when mapping segment times to whole seconds.
TIME_EPS = 1e-6


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
    grounding: the `grounding` entries written: "gt_boxes" (the GT query at every GT-boxed second, what the
        trimmed metrics read) or "all" (every query at every second, so `stg combine` can take this
        model's *where* for the query another model predicted at any second).
    window_frames: backbones with a temporal stride (S3D: one token per 8 frames) score each second from
        a window of this many frames read at fps, centred on the second (a multiple of the stride).
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
    grounding: Literal["gt_boxes", "all"] = "gt_boxes"
    window_frames: int = 16

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
            (self.window_frames >= 1, "window_frames must be >= 1"),
            (self.grounding in ("gt_boxes", "all"), "grounding must be 'gt_boxes' or 'all'"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"InferenceConfig.{message}, got {self}")


def zero_shot_readout(cfg: InferenceConfig) -> InferenceConfig:
    """`cfg` read from the raw backbone (the CLIP zero-shot baseline, whose heads are untrained): CLS/EOT
    cosines for *when*, patch–query cosines for *where*."""
    return replace(cfg, raw_features=True, spatial="patch_similarity")


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
        start = max(0, math.ceil(seg.start - pad - TIME_EPS))
        end = min(record.num_frames, math.ceil(seg.end + pad - TIME_EPS))
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
