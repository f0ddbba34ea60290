"""IoU + Pointing game (untrimmed spatio-temporal grounding, GYT)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from stg_lightning.eval.metrics.spatial import as_float, point_in_box, resolve_point
from stg_lightning.eval.records import box_area


class IoUPointing(Metric):
    """IoU + Pointing game.

    Per video and class c (every class predicted or annotated in the video): P_c = frames predicted c,
    G_c = GT frames of c. A frame of P_c ∩ G_c counts as a hit only if its pointing (given point, else
    argmax of the upsampled heat, else predicted box centre) lies in the GT box, when that second has
    a box; seconds without a box (or with a zero-area one) count on the temporal match alone.
    IoU_c = |hits| / |P_c ∪ G_c|; the video score is the mean over its classes and the metric the mean
    over videos (videos with no class at all are skipped).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("score_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("videos", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self,
        pred_labels: Tensor,
        gt_labels: Tensor,
        gt_boxes: Tensor,
        frame_size: tuple[int, int],
        heat: Tensor | None = None,
        points: Tensor | None = None,
        boxes: Tensor | None = None,
    ) -> None:
        """One video: labels [T] (class id, -1 = background); ``gt_boxes`` [T, 4] (NaN = no box).

        Spatial rows [T, ...]: ``heat`` [T, h, w], ``points`` [T, 2], ``boxes`` [T, 4] (NaN rows = none).
        """
        pred = torch.as_tensor(pred_labels).long().cpu()
        gt = torch.as_tensor(gt_labels).long().cpu()
        if pred.shape != gt.shape:
            raise ValueError(f"pred_labels {tuple(pred.shape)} and gt_labels {tuple(gt.shape)} must match")
        gtb = as_float(gt_boxes, 4)
        heat, points, boxes = as_float(heat), as_float(points, 2), as_float(boxes, 4)
        classes = sorted(set(pred[pred >= 0].tolist()) | set(gt[gt >= 0].tolist()))
        if not classes:
            return
        ious = []
        for c in classes:
            in_p, in_g = pred == c, gt == c
            hits = 0
            for t in torch.nonzero(in_p & in_g).flatten().tolist():
                box = gtb[t].tolist()
                has_box = bool(torch.isfinite(gtb[t]).all()) and box_area(box) > 0
                hits += not has_box or point_in_box(resolve_point(t, frame_size, heat, points, boxes), box)
            ious.append(hits / int((in_p | in_g).sum()))
        self.score_sum += sum(ious) / len(ious)
        self.videos += 1

    def compute(self) -> Tensor:
        return (self.score_sum / self.videos.clamp(min=1)).float()
