"""Object choice: where the pointing game's point lands when a frame shows several objects (synthetic splits).

The pointing game says whether the point hits the named object. It does not say how it misses: on another
object (the heat seeks objects but not the one the query names) or off every object. With every on-screen
object's box per scored second (``objects.json``, `eval/baselines/random_object.py`), each point is on the
named object (inside the GT box), else on another object (inside any other box), else off the objects.

``named_share`` = on named / (on named + on other): how often a point that lands on an object picks the one
the query names. A text-blind object seeker scores the chance level ``named_share_chance``, the mean of
1 / (objects on screen) over the scored seconds (the random-object baseline's expectation); a grounded model
scores 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from stg_lightning.eval.metrics.accumulate import Accumulating
from stg_lightning.eval.metrics.spatial import HeatRows, as_array, points_in_boxes, resolve_points


class ObjectChoice(Accumulating):
    """Share of scored seconds whose point is on the named object, on another object, or off the objects."""

    states: ClassVar[dict[str, str]] = {"named": "sum", "other": "sum", "off": "sum", "chance": "sum"}

    def stats(
        self,
        gt_boxes: Any,
        object_boxes: Sequence[Any],
        frame_size: tuple[int, int],
        heat: Any = None,
        points: Any = None,
        boxes: Any = None,
    ) -> dict[str, float]:
        """``gt_boxes`` [n, 4]; ``object_boxes``: per row, every on-screen object's boxes [m, 4] (the GT box
        among them); spatial rows as in :class:`~.pointing.PointingGame` (resolved the same way)."""
        gt = as_array(gt_boxes, 4)
        if len(object_boxes) != len(gt):
            raise ValueError(f"object_boxes has {len(object_boxes)} rows for {len(gt)} GT boxes")
        point = resolve_points(
            len(gt), frame_size, HeatRows.of(heat), as_array(points, 2), as_array(boxes, 4)
        )
        named = points_in_boxes(point, gt)
        other = np.array(
            [
                not hit and points_in_boxes(np.repeat(p[None], len(objs), 0), as_array(objs, 4)).any()
                for p, hit, objs in zip(point, named, object_boxes)
            ],
            dtype=bool,
        )
        chance = sum(1.0 / len(objs) for objs in object_boxes)
        return {
            "named": named.sum(),
            "other": other.sum(),
            "off": len(gt) - named.sum() - other.sum(),
            "chance": chance,
        }

    def result(self, states: dict[str, Any]) -> dict[str, float]:
        total = max(states["named"] + states["other"] + states["off"], 1.0)
        on_objects = states["named"] + states["other"]
        return {
            "point_on_named": states["named"] / total,
            "point_on_other": states["other"] / total,
            "point_off_objects": states["off"] / total,
            "named_share": states["named"] / on_objects if on_objects else float("nan"),
            "named_share_chance": states["chance"] / total,
        }
