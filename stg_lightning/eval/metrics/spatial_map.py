"""Spatial mAP at IoU > 0.3 (V-HICO style, trimmed), with the mask IoU and accuracy beside it."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from stg_lightning.eval.metrics.accumulate import Accumulating
from stg_lightning.eval.metrics.ap import class_mean_ap
from stg_lightning.eval.metrics.spatial import (
    HeatRows,
    MaskConfig,
    as_array,
    as_labels,
    box_areas,
    box_rects,
    mask_counts,
    rects_area,
)


class SpatialMAP(Accumulating):
    """Spatial mean average precision at IoU > ``iou_threshold`` (default 0.3).

    Each prediction is one frame's mask for a query class — the predicted box, else the heat mask
    (see :mod:`.spatial`), else the whole frame — with a score. It is a true positive if the pixel IoU
    of the mask with that frame's GT box (clipped to the frame) exceeds the threshold, else a false
    positive. Per class, AP is taken at the distinct scores (see :mod:`.ap`) with every non-zero-area GT
    box of the class as a positive (a NaN score marks a GT box without prediction); ``spatial_map`` is
    the mean over classes with positives. Beside it, the authors' numbers over the same seconds:
    ``spatial_iou``, the mean mask IoU (0 without a prediction), and ``spatial_acc@θ``, the fraction of
    seconds with IoU > θ. Zero-area GT boxes are excluded.
    """

    states: ClassVar[dict[str, str]] = {
        "det_class": "cat",
        "det_score": "cat",
        "det_iou": "cat",
        "gt_class": "cat",
    }

    def __init__(self, iou_threshold: float = 0.3, mask: MaskConfig | None = None) -> None:
        self.iou_threshold = iou_threshold
        self.mask = mask or MaskConfig()
        super().__init__()

    def stats(
        self,
        classes: Any,
        scores: Any,
        gt_boxes: Any,
        frame_size: tuple[int, int],
        heat: Any = None,
        boxes: Any = None,
    ) -> dict[str, np.ndarray]:
        """``classes`` [n] global class ids, ``scores`` [n] (NaN = no prediction), ``gt_boxes`` [n, 4].

        The mask of row i comes from ``boxes`` [n, 4] or ``heat`` [n, h, w] (NaN rows = absent).
        """
        gt = as_array(gt_boxes, 4)
        keep = box_areas(gt) > 0
        cls, sc = as_labels(classes)[keep], as_array(scores)[keep]
        heat, boxes = HeatRows.of(heat), as_array(boxes, 4)
        rects = box_rects(gt[keep], frame_size)
        det = np.isfinite(sc)
        idx = np.flatnonzero(keep)[det]
        area, inside = mask_counts(
            frame_size,
            None if heat is None else heat.take(idx),
            None if boxes is None else boxes[idx],
            rects[det],
            self.mask,
        )
        union = area + rects_area(rects[det]) - inside
        iou = np.where(union > 0, inside / np.maximum(union, 1), 0.0)
        return {"det_class": cls[det], "det_score": sc[det], "det_iou": iou, "gt_class": cls}

    def result(self, states: dict[str, Any]) -> dict[str, float]:
        dc, ds, iou, gc = (states[k] for k in ("det_class", "det_score", "det_iou", "gt_class"))
        positives = max(len(gc), 1)  # the mean IoU and accuracy count a second without prediction as 0
        tp = iou > self.iou_threshold
        return {
            "spatial_map": class_mean_ap(dc, ds, tp, gc),
            "spatial_iou": float(iou.sum()) / positives,
            f"spatial_acc@{self.iou_threshold:g}": float(tp.sum()) / positives,
        }
