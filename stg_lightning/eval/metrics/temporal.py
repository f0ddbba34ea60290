"""Temporal alignment metrics on MiningYouTube: IoU (Jaccard), IoD and MoF, per segment and per class."""

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
    averaged over the video's steps that own a GT second and then over videos; ``iou@θ`` is the fraction
    of those steps (over all videos) with IoU_i ≥ θ, and ``iou@avg`` its mean over the thresholds.
    MoF = frames whose aligned step (or background) equals the GT, over all frames of all videos.

    With ``step_classes`` (the class of each step), the convention of later work (e.g. VideoGEM) too:
    per class c of the video's GT, frames aligned to a step of c vs GT frames of c, ``iou_class`` and
    ``iod_class`` averaged over the video's classes and then over videos (a class repeated in several
    steps counts once).
    """

    states: ClassVar[dict[str, str]] = {
        "iou_sum": "sum",
        "iod_sum": "sum",
        "videos": "sum",
        "correct_frames": "sum",
        "frames": "sum",
        "step_iou": "cat",
        "class_iou_sum": "sum",
        "class_iod_sum": "sum",
        "class_videos": "sum",
    }

    def __init__(
        self, background_score: float = 0.5, thresholds: tuple[float, ...] = (0.1, 0.3, 0.5)
    ) -> None:
        self.background_score = background_score
        self.thresholds = tuple(thresholds)
        super().__init__()

    def stats(
        self, gt: Any, similarity: Any = None, alignment: Any = None, step_classes: Any = None
    ) -> dict[str, Any]:
        """One video: ``gt`` [T] step index (-1 = background); ``similarity`` [T, S] or ``alignment`` [T];
        optional ``step_classes`` [S] (class id of each step) for the per-class numbers."""
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
        out: dict[str, Any] = {
            "videos": 0,
            "correct_frames": (align == gt).sum(),
            "frames": len(gt),
            "step_iou": np.zeros(0),
            "class_videos": 0,
        }
        steps = np.unique(gt[gt >= 0])
        if len(steps):
            iou, iod = _overlaps(gt, align, steps)
            out |= {"iou_sum": iou.mean(), "iod_sum": iod.mean(), "videos": 1, "step_iou": iou}
        if step_classes is not None and len(steps):
            classes = np.append(as_labels(step_classes), -1)  # index -1 (background) → class -1
            gt_c, align_c = classes[gt], classes[align]
            iou, iod = _overlaps(gt_c, align_c, np.unique(gt_c[gt_c >= 0]))
            out |= {"class_iou_sum": iou.mean(), "class_iod_sum": iod.mean(), "class_videos": 1}
        return out

    def result(self, states: dict[str, Any]) -> dict[str, float]:
        n = max(states["videos"], 1.0)
        step_iou = states["step_iou"]
        out = {
            "iou": states["iou_sum"] / n,
            "iod": states["iod_sum"] / n,
            "mof": states["correct_frames"] / max(states["frames"], 1.0),
        }
        at = {f"iou@{t:g}": float((step_iou >= t).mean()) if len(step_iou) else 0.0 for t in self.thresholds}
        out |= at | {"iou@avg": float(np.mean(list(at.values())))}
        if states["class_videos"]:
            m = states["class_videos"]
            out |= {"iou_class": states["class_iou_sum"] / m, "iod_class": states["class_iod_sum"] / m}
        return out


def _overlaps(gt: np.ndarray, align: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per unit u: IoU and IoD (0 when nothing is aligned to u) of frames aligned to u vs GT frames of u."""
    g, d = gt[None] == units[:, None], align[None] == units[:, None]  # [U, T]
    inter = (g & d).sum(1)
    return inter / (g | d).sum(1), np.where(d.any(1), inter / np.maximum(d.sum(1), 1), 0.0)
