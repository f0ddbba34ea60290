"""Per-frame spatial geometry shared by the metrics: points and 3-D masks of heat grids, boxes, points.

Spatial predictions come as row-aligned arrays, a NaN row meaning "absent": ``heat`` coarse grids
(:class:`HeatRows`: an [n, h, w] array, or n optional grids of any shapes), ``points`` [n, 2] as (x, y)
pixels, ``boxes`` [n, 4] as inclusive (x1, y1, x2, y2) pixels.

A heat grid is normalised to sum 1 (an all-zero grid is uniform) and read as its bilinear upsampling
to the frame with ``align_corners=False``: output pixel ``k`` of an axis of n_out pixels samples source
``(k + 0.5)·n_in/n_out − 0.5`` clamped to ``[0, n_in − 1]``. Values are compared with the tie tolerance
:data:`TIE_EPS`: the point is the first pixel in row-major order with value ≥ max − ``TIE_EPS``; the mask
holds the pixels with value ≥ τ − ``TIE_EPS`` (or ≥ τ·max − ``TIE_EPS``). Round-off (≈1e-16) is far below
the tolerance, so plateaus and values equal to τ give the same answer in any exact-enough arithmetic.

The full-resolution map is never built. Along a row the upsampled map is piecewise linear in the
column (one piece per pair of neighbouring grid columns, constant pieces at the clamped edges), so a
row's maximum lies at a piece's end and the number of pixels ≥ a threshold in a piece is a closed-form
count: O(H · w) work per frame instead of O(H · W), in numba kernels.

Point of a row: the given point, else the heat argmax, else the predicted box's centre, else none.
Mask of a row: the predicted box, else the heat mask, else the whole frame. Pixel counts clip boxes to
the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numba import njit

TIE_EPS = 1e-12  # values of a sum-1 heat map closer than this are equal


@dataclass(frozen=True)
class MaskConfig:
    """3-D mask threshold: heat ≥ ``tau`` (absolute) or ≥ ``tau``·max(heat) when ``relative``."""

    tau: float = 0.01
    relative: bool = False


def normalise_heat(heat: np.ndarray) -> np.ndarray:
    """[n, h, w] non-negative grids → float64 grids summing to 1 (an all-zero grid → uniform)."""
    g = np.asarray(heat, dtype=np.float64)
    total = g.sum(axis=(1, 2), keepdims=True)
    uniform = np.full_like(g, 1.0 / (g.shape[1] * g.shape[2]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, g / np.where(total > 0, total, 1.0), uniform)


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices i0, i1 and weight of i1 for each of ``n_out`` output pixels."""
    src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = np.where(i1 > i0, src - i0, 0.0)
    return i0, i1, frac


def _blocks(i0: np.ndarray, i1: np.ndarray, frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last output pixel of each run with the same sources (clamped pixels: their own runs)."""
    key = np.stack([i0, i1, frac > 0])
    cut = np.concatenate([[True], (key[:, 1:] != key[:, :-1]).any(0)])
    start = np.flatnonzero(cut)
    return start, np.concatenate([start[1:] - 1, [len(i0) - 1]])


@lru_cache(maxsize=64)
def _upsampling(grid: tuple[int, int], frame_size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Rows (y0, y1, fy, block ends) and column pieces (x0, x1, first/last column, a, slope) of the map.

    Inside a cell (row block × column piece) the map is bilinear in (row, column): its extremes lie at
    the cell's corners, and along a row it is linear: at column ``start + k`` it is ``α + β·k``.
    """
    (h, w), (width, height) = grid, frame_size
    y0, y1, fy = _axis(h, height)
    x0, x1, fx = _axis(w, width)
    row_start, row_end = _blocks(y0, y1, fy)
    start, end = _blocks(x0, x1, fx)
    slope = (fx[end] - fx[start]) / np.maximum(end - start, 1)
    row_ends = np.unique(np.concatenate([row_start, row_end]))
    return y0, y1, fy, row_ends, x0[start], x1[start], start, end, fx[start], slope


@njit(cache=True, inline="always")
def _piece(g, i, p, y0, y1, fy, x0, x1, a, slope):
    """(α, β) of piece p on output row i: value at column start[p] + k is α + β·k."""
    left = (1.0 - fy[i]) * g[y0[i], x0[p]] + fy[i] * g[y1[i], x0[p]]
    right = (1.0 - fy[i]) * g[y0[i], x1[p]] + fy[i] * g[y1[i], x1[p]]
    return left + a[p] * (right - left), slope[p] * (right - left)


@njit(cache=True)
def _row_max(g, i, y0, y1, fy, x0, x1, start, end, a, slope):
    best = -np.inf
    for p in range(len(start)):
        alpha, beta = _piece(g, i, p, y0, y1, fy, x0, x1, a, slope)
        best = max(best, alpha, alpha + beta * (end[p] - start[p]))
    return best


@njit(cache=True)
def _peak(g, y0, y1, fy, row_ends, x0, x1, start, end, a, slope):
    """Maximum of the map: a row's maximum is at a piece end, a column's at a row block end."""
    best = -np.inf
    for i in row_ends:
        best = max(best, _row_max(g, i, y0, y1, fy, x0, x1, start, end, a, slope))
    return best


@njit(cache=True)
def _points_kernel(grids, out, y0, y1, fy, row_ends, x0, x1, start, end, a, slope, eps):
    for f in range(len(grids)):
        g = grids[f]
        thr = _peak(g, y0, y1, fy, row_ends, x0, x1, start, end, a, slope) - eps
        for i in range(len(y0)):
            if _row_max(g, i, y0, y1, fy, x0, x1, start, end, a, slope) >= thr:
                break
        found = False
        for p in range(len(start)):
            alpha, beta = _piece(g, i, p, y0, y1, fy, x0, x1, a, slope)
            for k in range(end[p] - start[p] + 1):
                if alpha + beta * k >= thr:
                    out[f, 0], out[f, 1], found = start[p] + k, i, True
                    break
            if found:
                break


@njit(cache=True)
def _masks_kernel(
    grids, rects, tau, relative, area, inside, y0, y1, fy, row_ends, x0, x1, start, end, a, slope, eps
):
    for f in range(len(grids)):
        g = grids[f]
        thr = tau * _peak(g, y0, y1, fy, row_ends, x0, x1, start, end, a, slope) if relative else tau
        thr -= eps
        c1, r1, c2, r2 = rects[f, 0], rects[f, 1], rects[f, 2], rects[f, 3]
        total, hit = 0, 0
        for i in range(len(y0)):
            in_rows = r1 <= i <= r2
            for p in range(len(start)):
                alpha, beta = _piece(g, i, p, y0, y1, fy, x0, x1, a, slope)
                length = end[p] - start[p]
                # k ∈ [first, last] ⊆ [0, length] are the columns of the piece with α + β·k ≥ thr.
                if beta == 0.0:
                    first, last = (0, length) if alpha >= thr else (1, 0)
                elif beta > 0.0:
                    first, last = max(0, int(min(np.ceil((thr - alpha) / beta), length + 1.0))), length
                else:
                    first, last = 0, min(length, int(max(np.floor((thr - alpha) / beta), -1.0)))
                if last < first:
                    continue
                total += last - first + 1
                if in_rows:
                    hit += max(0, min(start[p] + last, c2) - max(start[p] + first, c1) + 1)
        area[f], inside[f] = total, hit


def heat_points(heat: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """[n, h, w] grids → [n, 2] (x, y) of the first pixel ≥ max − ``TIE_EPS`` of each upsampled map."""
    g = normalise_heat(heat)
    out = np.zeros((len(g), 2))
    if len(g):
        _points_kernel(g, out, *_upsampling(g.shape[1:], frame_size), TIE_EPS)
    return out


def heat_mask_counts(
    heat: np.ndarray, frame_size: tuple[int, int], rects: np.ndarray, cfg: MaskConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of each frame's heat mask, in all and inside ``rects`` [n, 4] (c1, r1, c2, r2) → int64 [n]."""
    g = normalise_heat(heat)
    rects = np.ascontiguousarray(np.asarray(rects, dtype=np.int64).reshape(len(g), 4))
    area, inside = np.zeros(len(g), dtype=np.int64), np.zeros(len(g), dtype=np.int64)
    if len(g):
        geometry = _upsampling(g.shape[1:], frame_size)
        _masks_kernel(g, rects, float(cfg.tau), bool(cfg.relative), area, inside, *geometry, TIE_EPS)
    return area, inside


def _present(x: np.ndarray | None) -> np.ndarray | None:
    """Rows of an optional [n, ...] array that hold a value (no NaN)."""
    if x is None:
        return None
    return np.isfinite(x).all(axis=tuple(range(1, x.ndim)))


class HeatRows:
    """The heat grids of n rows, of any shapes: groups of rows that share an [h, w] shape (absent rows in none)."""

    def __init__(self, n: int, groups: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.n, self.groups = n, groups  # (row indices, grids [k, h, w])

    @classmethod
    def of(cls, heat: Any) -> HeatRows | None:
        """From an [n, h, w] array (NaN rows = absent) or a sequence of n optional grids (None = absent)."""
        if heat is None or isinstance(heat, HeatRows):
            return heat
        if isinstance(heat, list | tuple):
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for i, g in enumerate(heat):
                if g is not None:
                    by_shape.setdefault(np.shape(g), []).append(i)
            groups = [
                (np.array(rows), np.stack([np.asarray(heat[i], dtype=np.float64) for i in rows]))
                for rows in by_shape.values()
            ]
            return cls(len(heat), groups)
        grids = as_array(heat)
        rows = np.flatnonzero(_present(grids))
        return cls(len(grids), [(rows, grids[rows])] if len(rows) else [])

    def take(self, idx: np.ndarray) -> HeatRows:
        """The rows ``idx`` (an index array) as their own HeatRows."""
        position = np.full(self.n, -1)
        position[idx] = np.arange(len(idx))
        groups = [
            (position[rows[position[rows] >= 0]], grids[position[rows] >= 0]) for rows, grids in self.groups
        ]
        return HeatRows(len(idx), [(r, g) for r, g in groups if len(r)])


def resolve_points(
    n: int,
    frame_size: tuple[int, int],
    heat: HeatRows | np.ndarray | None,
    points: np.ndarray | None,
    boxes: np.ndarray | None,
) -> np.ndarray:
    """[n, 2] point of each of ``n`` rows (see module docstring); NaN = no point."""
    heat = HeatRows.of(heat)
    out = np.full((n, 2), np.nan)
    if boxes is not None and (ok := _present(boxes)).any():
        out[ok] = np.stack([(boxes[ok, 0] + boxes[ok, 2]) / 2, (boxes[ok, 1] + boxes[ok, 3]) / 2], axis=1)
    for rows, grids in heat.groups if heat is not None else []:
        out[rows] = heat_points(grids, frame_size)
    if points is not None and (ok := _present(points)).any():
        out[ok] = points[ok]
    return out


def points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """[n] pointing hits: the point exists and lies in the inclusive box (as given)."""
    with np.errstate(invalid="ignore"):
        return (
            (boxes[:, 0] <= points[:, 0])
            & (points[:, 0] <= boxes[:, 2])
            & (boxes[:, 1] <= points[:, 1])
            & (points[:, 1] <= boxes[:, 3])
        )


def box_rects(boxes: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """[n, 4] inclusive boxes → int64 pixel rects clipped to the frame (NaN rows → empty rects)."""
    w, h = frame_size
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    empty = ~np.isfinite(b).all(axis=1)
    b = np.where(empty[:, None], 0.0, b)
    rects = np.stack(
        [
            np.maximum(np.ceil(b[:, 0]), 0),
            np.maximum(np.ceil(b[:, 1]), 0),
            np.minimum(np.floor(b[:, 2]), w - 1),
            np.minimum(np.floor(b[:, 3]), h - 1),
        ],
        axis=1,
    ).astype(np.int64)
    rects[empty] = (0, 0, -1, -1)
    return rects


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """[n] pixel areas of inclusive boxes as given (``records.box_area`` per row); 0 when x2 < x1 or y2 < y1
    (NaN rows: 0)."""
    w = np.nan_to_num(boxes[:, 2] - boxes[:, 0] + 1)
    h = np.nan_to_num(boxes[:, 3] - boxes[:, 1] + 1)
    return np.maximum(w, 0) * np.maximum(h, 0)


def rects_area(rects: np.ndarray) -> np.ndarray:
    return np.maximum(rects[:, 2] - rects[:, 0] + 1, 0) * np.maximum(rects[:, 3] - rects[:, 1] + 1, 0)


def rects_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.concatenate([np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])], axis=1)


def mask_counts(
    frame_size: tuple[int, int],
    heat: HeatRows | np.ndarray | None,
    boxes: np.ndarray | None,
    rects: np.ndarray,
    cfg: MaskConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of each row's mask (see module docstring), in all and inside ``rects`` [n, 4] → int64 [n]."""
    w, h = frame_size
    n = len(rects)
    heat = HeatRows.of(heat)
    whole = np.tile(np.array([[0, 0, w - 1, h - 1]], dtype=np.int64), (n, 1))
    area = np.full(n, w * h, dtype=np.int64)
    inside = rects_area(rects_intersection(whole, rects))
    for rows, grids in heat.groups if heat is not None else []:
        area[rows], inside[rows] = heat_mask_counts(grids, frame_size, rects[rows], cfg)
    if (ok := _box_rows(boxes, n)).any():
        pred = box_rects(boxes[ok], frame_size)
        area[ok], inside[ok] = rects_area(pred), rects_area(rects_intersection(pred, rects[ok]))
    return area, inside


def _box_rows(boxes: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool) if boxes is None else _present(boxes)


def _numpy(x: Any) -> np.ndarray:
    """A torch tensor (duck-typed: this module never imports torch) or array-like → numpy."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def as_array(x: Any, width: int | None = None) -> np.ndarray | None:
    """Optional input (tensor, array, sequence) → float64 numpy array (metrics work on CPU)."""
    if x is None:
        return None
    a = _numpy(x).astype(np.float64)
    if width is not None and (a.ndim != 2 or a.shape[1] != width):
        raise ValueError(f"expected shape [n, {width}], got {tuple(a.shape)}")
    return a


def as_labels(x: Any) -> np.ndarray:
    """Class ids (tensor, array, sequence) → int64 numpy array."""
    return _numpy(x).astype(np.int64)
