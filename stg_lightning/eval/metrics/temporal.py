"""Temporal alignment metrics on MiningYouTube: IoU (Jaccard), IoD and MoF."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from stg_lightning.eval.metrics.accumulate import Accumulating
from stg_lightning.eval.metrics.spatial import as_labels
from stg_lightning.eval.viterbi import viterbi_align


class TemporalAlignment(Accumulating):
    """Temporal IoU (Jaccard), IoD and MoF of a Viterbi alignment to the ordered steps.

    The video's frames are aligned to its ordered step list interleaved with optional background
    (monotonic, each step one contiguous non-empty run; background frames score ``background_score``)
    by Viterbi over the similarity matrix [frames, steps] — or an alignment is given directly (e.g. the
    uniform-split baseline). For each GT step segment i with frames G_i and aligned frames D_i:
    IoU_i = |G_i ∩ D_i| / |G_i ∪ D_i| and IoD_i = |G_i ∩ D_i| / |D_i| (0 if D_i is empty); both are
    averaged over the video's segments and then over videos. MoF = frames whose aligned step (or
    background) equals the GT, over all frames of all videos.
    """

    states: ClassVar[dict[str, str]] = {
        "iou_sum": "sum",
        "iod_sum": "sum",
        "videos": "sum",
        "correct_frames": "sum",
        "frames": "sum",
    }

    def __init__(self, background_score: float = 0.5) -> None:
        self.background_score = background_score
        super().__init__()

    def stats(self, gt: Any, similarity: Any = None, alignment: Any = None) -> dict[str, float]:
        """One video: ``gt`` [T] step index (-1 = background); ``similarity`` [T, S] or ``alignment`` [T]."""
        gt = as_labels(gt)
        if (similarity is None) == (alignment is None):
            raise ValueError("pass exactly one of similarity [T, S] or alignment [T]")
        if alignment is None:
            alignment = viterbi_align(similarity, self.background_score)
        align = as_labels(alignment)
        if align.shape != gt.shape:
            raise ValueError(
                f"alignment {tuple(align.shape)} and gt {tuple(gt.shape)} must have one entry per frame"
            )
        out = {
            "iou_sum": 0.0,
            "iod_sum": 0.0,
            "videos": 0,
            "correct_frames": (align == gt).sum(),
            "frames": len(gt),
        }
        steps = np.unique(gt[gt >= 0])
        if len(steps):
            g, d = gt[None] == steps[:, None], align[None] == steps[:, None]  # [S, T]
            inter = (g & d).sum(1)
            out["iou_sum"] = float(np.mean(inter / (g | d).sum(1)))
            out["iod_sum"] = float(np.mean(np.where(d.any(1), inter / np.maximum(d.sum(1), 1), 0.0)))
            out["videos"] = 1
        return out

    def result(self, states: dict[str, Any]) -> dict[str, float]:
        n = max(states["videos"], 1.0)
        return {
            "iou": states["iou_sum"] / n,
            "iod": states["iod_sum"] / n,
            "mof": states["correct_frames"] / max(states["frames"], 1.0),
        }
