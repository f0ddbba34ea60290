"""VOC all-point interpolated average precision, shared by the mAP metrics."""

from __future__ import annotations

import numpy as np

SCORE_TIE_EPS = 1e-12  # detection scores closer than this are one score value


def average_precision(scores: np.ndarray, tp: np.ndarray, num_positives: int) -> float:
    """AP of scored detections, taken at the distinct score values (the order of tied scores never matters).

    Scores sorted in descending order form one value while consecutive ones differ by ≤ :data:`SCORE_TIE_EPS`
    (means of equal scores computed in another order differ by round-off only). At each value, recall and
    precision count every detection down to it; precision is made monotone from the right and summed over
    the recall steps (VOC ≥ 2010).
    """
    if num_positives <= 0:
        raise ValueError("average_precision needs at least one positive")
    if len(scores) == 0:
        return 0.0
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    hits = np.asarray(tp, dtype=np.float64)[order]
    last_of_score = np.flatnonzero(np.append(np.diff(scores[order]) < -SCORE_TIE_EPS, True))
    tp_cum, fp_cum = np.cumsum(hits)[last_of_score], np.cumsum(1.0 - hits)[last_of_score]
    recall = np.concatenate([[0.0], tp_cum / num_positives, [1.0]])
    precision = np.concatenate([[0.0], tp_cum / np.maximum(tp_cum + fp_cum, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def class_mean_ap(
    det_class: np.ndarray, det_score: np.ndarray, det_tp: np.ndarray, gt_class: np.ndarray
) -> float:
    """Mean over the classes that have positives (``gt_class``: one entry per positive) of their AP."""
    aps = [
        average_precision(det_score[det_class == c], det_tp[det_class == c], int((gt_class == c).sum()))
        for c in np.unique(gt_class)
    ]
    return float(np.mean(aps)) if aps else 0.0
