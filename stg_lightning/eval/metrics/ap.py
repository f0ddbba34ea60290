"""VOC all-point interpolated average precision, shared by the mAP metrics."""

from __future__ import annotations

import numpy as np
import torch


def average_precision(scores: np.ndarray, tp: np.ndarray, num_positives: int) -> float:
    """AP of detections ranked by score (ties: false positives first, so the result is order-free).

    Precision is made monotone from the right and summed over the recall steps (VOC ≥ 2010).
    """
    if num_positives <= 0:
        raise ValueError("average_precision needs at least one positive")
    order = np.lexsort((tp.astype(np.int8), -scores.astype(np.float64)))
    hits = tp[order].astype(np.float64)
    tp_cum, fp_cum = np.cumsum(hits), np.cumsum(1.0 - hits)
    recall = np.concatenate([[0.0], tp_cum / num_positives, [1.0]])
    precision = np.concatenate([[0.0], tp_cum / np.maximum(tp_cum + fp_cum, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def cat_state(state: torch.Tensor | list[torch.Tensor]) -> np.ndarray:
    """A ``cat`` metric state (a list before sync, a tensor after) as one numpy array."""
    if isinstance(state, list):
        return torch.cat(state).cpu().numpy() if state else np.zeros(0)
    return state.cpu().numpy()


def class_mean_ap(
    det_class: np.ndarray, det_score: np.ndarray, det_tp: np.ndarray, gt_class: np.ndarray
) -> float:
    """Mean over the classes that have positives (``gt_class``: one entry per positive) of their AP."""
    aps = [
        average_precision(det_score[det_class == c], det_tp[det_class == c], int((gt_class == c).sum()))
        for c in np.unique(gt_class)
    ]
    return float(np.mean(aps)) if aps else 0.0
