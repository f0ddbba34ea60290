"""Video mAP over spatio-temporal tubes (untrimmed, GYT)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from stg_lightning.eval.metrics.accumulate import Accumulating
from stg_lightning.eval.metrics.ap import class_mean_ap
from stg_lightning.eval.metrics.spatial import (
    HeatRows,
    MaskConfig,
    as_array,
    as_labels,
    box_rects,
    mask_counts,
    rects_area,
)

DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)


def label_runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of one class (≥ 0) in per-frame labels → (label, start, end exclusive) arrays."""
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels):
        return (np.zeros(0, dtype=np.int64),) * 3
    cut = np.flatnonzero(np.diff(labels)) + 1
    start, end = np.concatenate([[0], cut]), np.concatenate([cut, [len(labels)]])
    keep = labels[start] >= 0
    return labels[start][keep], start[keep], end[keep]


def _run_sums(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sum of ``values[start:end]`` for each run."""
    cum = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    return cum[end] - cum[start]


def _run_index(start: np.ndarray, end: np.ndarray, length: int) -> np.ndarray:
    """[length] index of the run holding each frame, -1 outside every run."""
    index = np.full(length, -1)
    for k, (s, e) in enumerate(zip(start.tolist(), end.tolist())):
        index[s:e] = k
    return index


class VideoMAP(Accumulating):
    """Video mAP at tube-IoU thresholds 0.1–0.5 and their mean.

    Predicted tubes are the maximal runs of one predicted class with their per-frame 3-D masks (the
    predicted box, else the heat mask, else the whole frame; see :mod:`.spatial`), scored by the mean
    of their per-second scores (``math.fsum``: the same value in any order); GT tubes are the GT runs with their per-second boxes (clipped to the
    frame). Tube IoU is the voxel IoU of mask and box tube. Per video and threshold, detections in
    descending score (ties: earlier start first) are matched greedily to the unmatched same-class GT tube
    with the highest IoU (ties: the earlier tube), a true positive if that IoU reaches the threshold.
    AP per class over all videos is taken at the distinct scores (see :mod:`.ap`) and averaged over
    classes with GT tubes. GT tubes with no voxels are ignored (not positives), as is any predicted tube
    of the same class lying entirely inside one.
    """

    states: ClassVar[dict[str, str]] = {
        "det_class": "cat",
        "det_score": "cat",
        "det_tp": "cat",
        "gt_class": "cat",
    }

    def __init__(
        self, thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS, mask: MaskConfig | None = None
    ) -> None:
        if not thresholds or min(thresholds) <= 0:
            raise ValueError(f"video mAP thresholds must be > 0, got {thresholds}")
        self.thresholds = tuple(thresholds)
        self.mask = mask or MaskConfig()
        super().__init__()

    def stats(
        self,
        pred_labels: Any,
        scores: Any,
        gt_labels: Any,
        gt_boxes: Any,
        frame_size: tuple[int, int],
        heat: Any = None,
        boxes: Any = None,
    ) -> dict[str, np.ndarray]:
        """One video: labels [T] (-1 = background), ``scores`` [T], ``gt_boxes`` [T, 4] (NaN = no box)."""
        pred, gt = as_labels(pred_labels), as_labels(gt_labels)
        if len(pred) != len(gt):
            raise ValueError(
                f"pred_labels ({len(pred)}) and gt_labels ({len(gt)}) must have one entry per frame"
            )
        sc, gtb = as_array(scores), as_array(gt_boxes, 4)
        heat, boxes = HeatRows.of(heat), as_array(boxes, 4)
        n = len(gt)
        gt_area = rects_area(box_rects(gtb, frame_size))  # seconds without a box: 0
        g_label, g_start, g_end = label_runs(gt)
        gt_of_frame = _run_index(g_start, g_end, n)
        g_voxels = _run_sums(gt_area, g_start, g_end)
        # One mask per predicted second, shared by every tube and threshold.
        frames = np.flatnonzero(pred >= 0)
        same = gt[frames] == pred[frames]
        rects = np.where(same[:, None], box_rects(gtb[frames], frame_size), np.array([0, 0, -1, -1]))
        area, inside = mask_counts(
            frame_size,
            None if heat is None else heat.take(frames),
            None if boxes is None else boxes[frames],
            rects,
            self.mask,
        )
        d_label, d_start, d_end = label_runs(pred)
        area_of, inside_of = np.zeros(n), np.zeros(n)
        area_of[frames], inside_of[frames] = area, inside
        d_score = np.array([math.fsum(sc[s:e]) / (e - s) for s, e in zip(d_start.tolist(), d_end.tolist())])
        d_voxels = _run_sums(area_of, d_start, d_end)
        # Drop detections inside an ignored (voxel-free) GT tube of their class.
        j0 = gt_of_frame[d_start]
        j = np.maximum(j0, 0)
        inside_ignored = np.zeros(len(d_label), dtype=bool)
        if len(g_label):
            inside_ignored = (j0 >= 0) & (g_label[j] == d_label) & (g_voxels[j] == 0) & (d_end <= g_end[j])
        keep = np.flatnonzero(~inside_ignored)
        keep = keep[np.lexsort((d_start[keep], -d_score[keep]))]
        # Overlapping (detection, GT tube) pairs and their intersections: only they can reach IoU ≥ θ > 0.
        det_of_frame = _run_index(d_start, d_end, n)
        t = np.flatnonzero((det_of_frame >= 0) & (gt_of_frame >= 0) & (pred == gt) & (inside_of > 0))
        pairs: dict[int, dict[int, float]] = {}
        for k, j, v in zip(det_of_frame[t].tolist(), gt_of_frame[t].tolist(), inside_of[t].tolist()):
            pairs.setdefault(k, {}).setdefault(j, 0.0)
            pairs[k][j] += v
        tp = np.zeros((len(keep), len(self.thresholds)))
        for ti, thr in enumerate(self.thresholds):
            matched: set[int] = set()
            for row, k in enumerate(keep.tolist()):
                best, best_iou = -1, -1.0
                for j, inter in sorted(pairs.get(k, {}).items()):
                    if j in matched or g_voxels[j] == 0:
                        continue
                    iou = inter / (d_voxels[k] + g_voxels[j] - inter)
                    if iou > best_iou:
                        best, best_iou = j, iou
                if best >= 0 and best_iou >= thr:
                    matched.add(best)
                    tp[row, ti] = 1.0
        return {
            "det_class": d_label[keep],
            "det_score": d_score[keep],
            "det_tp": tp,
            "gt_class": g_label[g_voxels > 0],
        }

    def result(self, states: dict[str, Any]) -> dict[str, float]:
        dc, ds, gc = states["det_class"], states["det_score"], states["gt_class"]
        tp = states["det_tp"].reshape(len(dc), len(self.thresholds)) > 0
        out = {
            f"video_map@{thr:g}": class_mean_ap(dc, ds, tp[:, i], gc) for i, thr in enumerate(self.thresholds)
        }
        out["video_map"] = float(np.mean(list(out.values())))
        return out
