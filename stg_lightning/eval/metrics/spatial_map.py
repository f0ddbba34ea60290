"""Spatial mAP at IoU > 0.3 (V-HICO style, trimmed)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from stg_lightning.eval.metrics.ap import cat_state, class_mean_ap
from stg_lightning.eval.metrics.spatial import MaskConfig, as_float, box_rect, frame_mask, rect_area
from stg_lightning.eval.records import box_area


class SpatialMAP(Metric):
    """Spatial mean average precision at IoU > ``iou_threshold`` (default 0.3).

    Each prediction is one frame's mask for a query class — the predicted box, else the heat grid
    upsampled to the frame and thresholded at ``tau`` (or ``tau``·max), else the whole frame — with a
    score. It is a true positive if the pixel IoU of the mask with that frame's GT box (clipped to the
    frame) exceeds the threshold, else a false positive. Per class, detections are ranked by score and
    the VOC all-point interpolated AP is taken with every non-zero-area GT box of the class as a positive
    (a NaN score marks a GT box without prediction); the result is the mean over classes with positives.
    Zero-area GT boxes are excluded.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, iou_threshold: float = 0.3, mask: MaskConfig | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.iou_threshold = iou_threshold
        self.mask = mask or MaskConfig()
        for name in ("det_class", "det_score", "det_tp", "gt_class"):
            self.add_state(name, [], dist_reduce_fx="cat")

    def update(
        self,
        classes: Tensor,
        scores: Tensor,
        gt_boxes: Tensor,
        frame_size: tuple[int, int],
        heat: Tensor | None = None,
        boxes: Tensor | None = None,
    ) -> None:
        """``classes`` [n] global class ids, ``scores`` [n] (NaN = no prediction), ``gt_boxes`` [n, 4].

        The mask of row i comes from ``boxes`` [n, 4] or ``heat`` [n, h, w] (NaN rows = absent).
        """
        gt = as_float(gt_boxes, 4).tolist()
        heat, boxes = as_float(heat), as_float(boxes, 4)
        cls, sc = torch.as_tensor(classes).long().cpu().tolist(), as_float(scores).tolist()
        det_class, det_score, det_tp, gt_class = [], [], [], []
        for i, box in enumerate(gt):
            if box_area(box) == 0:
                continue
            gt_class.append(cls[i])
            if sc[i] != sc[i]:  # NaN: this GT box has no prediction
                continue
            m = frame_mask(i, frame_size, heat, boxes, self.mask)
            rect = box_rect(box, frame_size)
            inter = m.intersect(rect)
            union = m.area + rect_area(rect) - inter
            det_class.append(cls[i])
            det_score.append(sc[i])
            det_tp.append(union > 0 and inter / union > self.iou_threshold)
        self.det_class.append(torch.tensor(det_class, dtype=torch.float64))
        self.det_score.append(torch.tensor(det_score, dtype=torch.float64))
        self.det_tp.append(torch.tensor(det_tp, dtype=torch.float64))
        self.gt_class.append(torch.tensor(gt_class, dtype=torch.float64))

    def compute(self) -> Tensor:
        dc, ds, dt, gc = (cat_state(s) for s in (self.det_class, self.det_score, self.det_tp, self.gt_class))
        return torch.tensor(class_mean_ap(dc, ds, dt > 0, gc), dtype=torch.float64)
