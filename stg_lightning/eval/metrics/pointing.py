"""Pointing game accuracy (trimmed spatial grounding)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from stg_lightning.eval.metrics.spatial import as_float, point_in_box, resolve_point
from stg_lightning.eval.records import box_area


class PointingGame(Metric):
    """Pointing game accuracy.

    Each evaluated frame of a GT segment is queried with its GT step; its point is the given point,
    else the first (row-major) argmax of the heat grid upsampled bilinearly (``align_corners=False``)
    to the frame, else the predicted box's centre. It is a hit if the point lies inside the inclusive
    GT box, a miss otherwise (also when there is no point). Zero-area GT boxes are excluded (counted in
    ``excluded``). Accuracy = hits / (hits + misses), summed over all frames of all ranks.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("hits", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("excluded", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self,
        gt_boxes: Tensor,
        frame_size: tuple[int, int],
        heat: Tensor | None = None,
        points: Tensor | None = None,
        boxes: Tensor | None = None,
    ) -> None:
        """``gt_boxes`` [n, 4]; spatial rows ``heat`` [n, h, w] / ``points`` [n, 2] / ``boxes`` [n, 4].

        A NaN row means "absent"; rows are resolved per frame (see :mod:`.spatial`).
        """
        gt = as_float(gt_boxes, 4)
        heat, points, boxes = as_float(heat), as_float(points, 2), as_float(boxes, 4)
        hits = total = 0
        for i, box in enumerate(gt.tolist()):
            if box_area(box) == 0:
                continue
            total += 1
            hits += point_in_box(resolve_point(i, frame_size, heat, points, boxes), box)
        self.hits += hits
        self.total += total
        self.excluded += len(gt) - total

    def compute(self) -> Tensor:
        return self.hits.float() / self.total.clamp(min=1)
