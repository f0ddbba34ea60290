"""Temporal alignment metrics on MiningYouTube: IoU (Jaccard), IoD and MoF."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from stg_lightning.eval.viterbi import viterbi_align


class TemporalAlignment(Metric):
    """Temporal IoU (Jaccard), IoD and MoF of a Viterbi alignment to the ordered steps.

    The video's frames are aligned to its ordered step list interleaved with optional background
    (monotonic, each step one contiguous non-empty run; background frames score ``background_score``)
    by Viterbi over the similarity matrix [frames, steps] — or an alignment is given directly (e.g. the
    uniform-split baseline). For each GT step segment i with frames G_i and aligned frames D_i:
    IoU_i = |G_i ∩ D_i| / |G_i ∪ D_i| and IoD_i = |G_i ∩ D_i| / |D_i| (0 if D_i is empty); both are
    averaged over the video's segments and then over videos. MoF = frames whose aligned step (or
    background) equals the GT, over all frames of all videos.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, background_score: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.background_score = background_score
        for name in ("iou_sum", "iod_sum"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("videos", "correct_frames", "frames"):
            self.add_state(name, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, gt: Tensor, similarity: Tensor | None = None, alignment: Tensor | None = None) -> None:
        """One video: ``gt`` [T] step index (-1 = background); ``similarity`` [T, S] or ``alignment`` [T]."""
        gt = torch.as_tensor(gt).long().cpu()
        if (similarity is None) == (alignment is None):
            raise ValueError("pass exactly one of similarity [T, S] or alignment [T]")
        if alignment is None:
            alignment = viterbi_align(similarity, self.background_score)
        align = torch.as_tensor(alignment).long().cpu()
        if align.shape != gt.shape:
            raise ValueError(
                f"alignment {tuple(align.shape)} and gt {tuple(gt.shape)} must have one entry per frame"
            )
        steps = sorted(set(gt[gt >= 0].tolist()))
        if steps:
            ious, iods = [], []
            for i in steps:
                g, d = gt == i, align == i
                inter = int((g & d).sum())
                ious.append(inter / int((g | d).sum()))
                iods.append(inter / int(d.sum()) if bool(d.any()) else 0.0)
            self.iou_sum += sum(ious) / len(ious)
            self.iod_sum += sum(iods) / len(iods)
            self.videos += 1
        self.correct_frames += int((align == gt).sum())
        self.frames += len(gt)

    def compute(self) -> dict[str, Tensor]:
        n = self.videos.clamp(min=1)
        return {
            "iou": (self.iou_sum / n).float(),
            "iod": (self.iod_sum / n).float(),
            "mof": (self.correct_frames.float() / self.frames.clamp(min=1)).float(),
        }
