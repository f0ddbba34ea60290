"""Pointing game accuracy (trimmed spatial grounding)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from stg_lightning.eval.metrics.accumulate import Accumulating
from stg_lightning.eval.metrics.spatial import HeatRows, as_array, box_areas, points_in_boxes, resolve_points

ZERO_AREA_BOXES = ("exclude", "miss")


class PointingGame(Accumulating):
    """Pointing game accuracy.

    Each evaluated frame of a GT segment is queried with its GT step; its point is the given point,
    else the heat argmax (see :mod:`.spatial`), else the predicted box's centre. It is a hit if the
    point lies inside the inclusive GT box, a miss otherwise (also when there is no point).
    Zero-area GT boxes are excluded (``zero_area_boxes="exclude"``, counted in ``excluded``) or scored
    as misses (``"miss"``, the authors' released evaluation). Accuracy = hits / scored frames.
    """

    states: ClassVar[dict[str, str]] = {"hits": "sum", "total": "sum", "excluded": "sum"}

    def __init__(self, zero_area_boxes: str = "exclude") -> None:
        if zero_area_boxes not in ZERO_AREA_BOXES:
            raise ValueError(f"zero_area_boxes must be one of {ZERO_AREA_BOXES}, got {zero_area_boxes!r}")
        self.zero_area_boxes = zero_area_boxes
        super().__init__()

    def stats(
        self,
        gt_boxes: Any,
        frame_size: tuple[int, int],
        heat: Any = None,
        points: Any = None,
        boxes: Any = None,
    ) -> dict[str, float]:
        """``gt_boxes`` [n, 4]; spatial rows ``heat`` [n, h, w] / ``points`` [n, 2] / ``boxes`` [n, 4].

        A NaN row means "absent"; rows are resolved per frame (see :mod:`.spatial`).
        """
        gt = as_array(gt_boxes, 4)
        point = resolve_points(
            len(gt), frame_size, HeatRows.of(heat), as_array(points, 2), as_array(boxes, 4)
        )
        scored = box_areas(gt) > 0
        hits = points_in_boxes(point, gt) & scored
        if self.zero_area_boxes == "miss":
            scored = np.ones(len(gt), dtype=bool)
        return {"hits": hits.sum(), "total": scored.sum(), "excluded": len(gt) - scored.sum()}

    def result(self, states: dict[str, Any]) -> float:
        return states["hits"] / max(states["total"], 1.0)
