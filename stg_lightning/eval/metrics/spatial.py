"""Per-frame spatial geometry shared by the metrics: heat upsampling, pointing, masks vs. boxes.

Spatial predictions come as row-aligned tensors, a NaN row meaning "absent": ``heat`` [n, h, w]
(a coarse grid, upsampled bilinearly with ``align_corners=False`` to the frame, one frame at a time),
``points`` [n, 2] as (x, y) pixels, ``boxes`` [n, 4] as inclusive (x1, y1, x2, y2) pixels.
Point of a row: the given point, else the argmax of the upsampled heat (first maximum in row-major
order), else the predicted box's centre, else none. Mask of a row: the predicted box, else heat ≥ τ
(or ≥ τ·max with ``relative``), else the whole frame. Pixel counts clip boxes to the frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Rect = tuple[int, int, int, int]  # inclusive pixel columns/rows (c1, r1, c2, r2), empty if c2 < c1


@dataclass(frozen=True)
class MaskConfig:
    """3-D mask threshold: heat ≥ ``tau`` (absolute) or ≥ ``tau``·max(heat) when ``relative``."""

    tau: float = 0.01
    relative: bool = False


def _present(row: Tensor | None) -> bool:
    return row is not None and bool(torch.isfinite(row).all())


def upsample_heat(heat: Tensor, frame_size: tuple[int, int]) -> Tensor:
    """[h, w] grid → [H, W] frame map, bilinear, ``align_corners=False``."""
    w, h = frame_size
    return F.interpolate(heat[None, None].float(), size=(h, w), mode="bilinear", align_corners=False)[0, 0]


def heat_point(heat: Tensor, frame_size: tuple[int, int]) -> tuple[float, float]:
    """(x, y) of the first maximum (row-major) of the upsampled heat."""
    up = upsample_heat(heat, frame_size)
    idx = int(torch.argmax(up))
    return float(idx % up.shape[1]), float(idx // up.shape[1])


def resolve_point(
    i: int, frame_size: tuple[int, int], heat: Tensor | None, points: Tensor | None, boxes: Tensor | None
) -> tuple[float, float] | None:
    """Point of row ``i`` (see module docstring); None = no point."""
    if points is not None and _present(points[i]):
        return float(points[i, 0]), float(points[i, 1])
    if heat is not None and _present(heat[i]):
        return heat_point(heat[i], frame_size)
    if boxes is not None and _present(boxes[i]):
        b = boxes[i].tolist()
        return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    return None


def point_in_box(point: tuple[float, float] | None, box: Sequence[float]) -> bool:
    """Pointing hit: the point lies in the inclusive box (as given)."""
    return point is not None and box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def box_rect(box: Sequence[float], frame_size: tuple[int, int]) -> Rect:
    """Pixels of an inclusive box clipped to the frame."""
    w, h = frame_size
    return (
        max(math.ceil(box[0]), 0),
        max(math.ceil(box[1]), 0),
        min(math.floor(box[2]), w - 1),
        min(math.floor(box[3]), h - 1),
    )


def rect_area(r: Rect) -> int:
    return max(0, r[2] - r[0] + 1) * max(0, r[3] - r[1] + 1)


def rect_intersection(a: Rect, b: Rect) -> Rect:
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


class FrameMask:
    """One frame's predicted mask: a rectangle (closed-form counts) or a thresholded heat map.

    A heat mask answers a rectangle count by summing its slice: O(box pixels) ≤ O(H·W) per frame.
    """

    def __init__(self, rect: Rect | None = None, mask: Tensor | None = None) -> None:
        self.rect = rect
        self.mask = mask  # [H, W] bool
        self._area = int(mask.sum()) if mask is not None else rect_area(rect)

    @property
    def area(self) -> int:
        return self._area

    def intersect(self, r: Rect) -> int:
        """Mask pixels inside rectangle ``r``."""
        if self.mask is None:
            return rect_area(rect_intersection(self.rect, r))
        if r[2] < r[0] or r[3] < r[1]:
            return 0
        return int(self.mask[r[1] : r[3] + 1, r[0] : r[2] + 1].sum())


def frame_mask(
    i: int, frame_size: tuple[int, int], heat: Tensor | None, boxes: Tensor | None, cfg: MaskConfig
) -> FrameMask:
    """Mask of row ``i`` (see module docstring)."""
    w, h = frame_size
    if boxes is not None and _present(boxes[i]):
        return FrameMask(rect=box_rect(boxes[i].tolist(), frame_size))
    if heat is not None and _present(heat[i]):
        up = upsample_heat(heat[i], frame_size)
        thr = cfg.tau * float(up.max()) if cfg.relative else cfg.tau
        return FrameMask(mask=up >= thr)
    return FrameMask(rect=(0, 0, w - 1, h - 1))


def as_float(x: Tensor | Sequence | None, width: int | None = None) -> Tensor | None:
    """Optional input → float tensor on CPU (metrics do their pixel work on CPU, frame by frame)."""
    if x is None:
        return None
    t = torch.as_tensor(x, dtype=torch.float32).detach().cpu()
    if width is not None and (t.ndim != 2 or t.shape[1] != width):
        raise ValueError(f"expected shape [n, {width}], got {tuple(t.shape)}")
    return t
