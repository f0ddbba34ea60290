"""IoU + Pointing game (untrimmed spatio-temporal grounding, GYT)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from stg_lightning.eval.metrics.accumulate import Accumulating
from stg_lightning.eval.metrics.spatial import (
    HeatRows,
    as_array,
    as_labels,
    box_areas,
    points_in_boxes,
    resolve_points,
)

CLASS_SETS = ("gt", "union")


class IoUPointing(Accumulating):
    """IoU + Pointing game.

    Per video and class c: P_c = frames predicted c, G_c = GT frames of c. A frame of P_c ∩ G_c counts
    as a hit only if its point (given point, else heat argmax, else predicted box centre) lies in the
    GT box, when that second has a non-zero-area box; other seconds count on the temporal match alone.
    IoU_c = |hits| / |P_c ∪ G_c|; the video score is the mean over its classes — the classes of its GT
    (``classes="gt"``, default) or of its GT and its predictions (``"union"``: a predicted class absent
    from the GT adds a 0) — and the metric the mean over videos that have a class.
    """

    states: ClassVar[dict[str, str]] = {"score_sum": "sum", "videos": "sum"}

    def __init__(self, classes: str = "gt") -> None:
        if classes not in CLASS_SETS:
            raise ValueError(f"iou_pointing classes must be one of {CLASS_SETS}, got {classes!r}")
        self.classes = classes
        super().__init__()

    def stats(
        self,
        pred_labels: Any,
        gt_labels: Any,
        gt_boxes: Any,
        frame_size: tuple[int, int],
        heat: Any = None,
        points: Any = None,
        boxes: Any = None,
    ) -> dict[str, float] | None:
        """One video: labels [T] (class id, -1 = background); ``gt_boxes`` [T, 4] (NaN = no box).

        Spatial rows [T, ...]: ``heat`` [T, h, w], ``points`` [T, 2], ``boxes`` [T, 4] (NaN rows = none).
        """
        pred, gt = as_labels(pred_labels), as_labels(gt_labels)
        if pred.shape != gt.shape:
            raise ValueError(f"pred_labels {tuple(pred.shape)} and gt_labels {tuple(gt.shape)} must match")
        gtb = as_array(gt_boxes, 4)
        classes = set(gt[gt >= 0].tolist())
        if self.classes == "union":
            classes |= set(pred[pred >= 0].tolist())
        if not classes:
            return None
        matched = (pred == gt) & (gt >= 0)
        ok = np.ones(len(gt), dtype=bool)
        boxed = matched & (box_areas(gtb) > 0)
        if boxed.any():
            sub = np.flatnonzero(boxed)
            heat_rows, point_rows, box_rows = HeatRows.of(heat), as_array(points, 2), as_array(boxes, 4)
            point = resolve_points(
                len(sub),
                frame_size,
                None if heat_rows is None else heat_rows.take(sub),
                None if point_rows is None else point_rows[sub],
                None if box_rows is None else box_rows[sub],
            )
            ok[sub] = points_in_boxes(point, gtb[sub])
        hit_per_class = np.bincount(gt[matched & ok], minlength=max(classes) + 1)
        ious = [hit_per_class[c] / int(((pred == c) | (gt == c)).sum()) for c in sorted(classes)]
        return {"score_sum": sum(ious) / len(ious), "videos": 1}

    def result(self, states: dict[str, Any]) -> float:
        return states["score_sum"] / max(states["videos"], 1.0)
