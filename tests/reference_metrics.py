"""Brute-force reference of the GroundingYouTube / YouCook2 / MiningYouTube metrics, for the tests only.

Written from the protocol text alone, independently of ``stg_lightning.eval.metrics`` and
``stg_lightning.eval.scoring`` (neither is imported): plain loops over videos, seconds, classes and
tubes, one full-resolution float64 map per heat grid, the temporal alignment by exhaustive enumeration.
Slow on purpose; use small inputs.

Readings where the protocol text leaves room: a video-mAP detection below θ is an FP and leaves its
best GT tube unmatched; ``iou_pointing_classes="union"`` adds the labels of the frames entries at t < n;
``trimmed_unanswered`` counts every trimmed second without an entry (zero-area GT boxes included); an
IoU with an empty union is 0; a metric with nothing to average is 0; MYT IoU / IoD average over all S
steps of a video, steps without a GT second included (they score 0).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.records import Box, VideoRecord, box_area, normalise_query

EPS = 1e-12
DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)
BACKGROUND = -1


def _norm(label: str | None) -> str | None:
    return None if label is None else normalise_query(label)


# ---------------------------------------------------------------------------------------------- maps


@lru_cache(maxsize=64)
def _source_index(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source rows (or columns) for ``align_corners=False``: (lower index, upper index, weight)."""
    lo, hi, weight = [], [], []
    for i in range(out_size):
        src = (i + 0.5) * (in_size / out_size) - 0.5
        src = min(max(src, 0.0), in_size - 1.0)
        i0 = math.floor(src)
        lo.append(i0)
        hi.append(min(i0 + 1, in_size - 1))
        weight.append(src - i0)
    return np.array(lo), np.array(hi), np.array(weight, dtype=np.float64)


def normalised_grid(heat: np.ndarray) -> np.ndarray:
    """The grid in float64 scaled to sum 1 (an all-zero grid → uniform)."""
    g = np.asarray(heat, dtype=np.float64)
    total = float(g.sum())
    if total == 0.0:
        return np.full(g.shape, 1.0 / g.size)
    return g / total


def upsample(heat: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Normalised grid → [H, W] float64 map, bilinear with ``align_corners=False`` (own formula)."""
    g = normalised_grid(heat)
    h, w = g.shape
    width, height = frame_size
    y0, y1, wy = _source_index(height, h)
    x0, x1, wx = _source_index(width, w)
    # value = (1 - wy)·[(1 - wx)·g00 + wx·g01] + wy·[(1 - wx)·g10 + wx·g11]; the bracket only depends on
    # the source row and the output column, so it is formed once per source row.
    cols = (1.0 - wx) * g[:, x0] + wx * g[:, x1]  # [h, W]
    return (1.0 - wy)[:, None] * cols[y0] + wy[:, None] * cols[y1]


def heat_point(full: np.ndarray) -> tuple[float, float]:
    """(column, row) of the first pixel (row-major) within EPS of the map's maximum."""
    flat = full.ravel()
    index = int(np.argmax(flat >= flat.max() - EPS))
    row, col = divmod(index, full.shape[1])
    return float(col), float(row)


def box_pixels(box: Sequence[float], frame_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Pixel rectangle ``[ceil(x1), floor(x2)] × [ceil(y1), floor(y2)]`` clipped to the frame, or None."""
    width, height = frame_size
    x_lo, x_hi = max(math.ceil(box[0]), 0), min(math.floor(box[2]), width - 1)
    y_lo, y_hi = max(math.ceil(box[1]), 0), min(math.floor(box[3]), height - 1)
    if x_lo > x_hi or y_lo > y_hi:
        return None
    return x_lo, y_lo, x_hi, y_hi


def box_mask(box: Sequence[float], frame_size: tuple[int, int]) -> np.ndarray:
    """Boolean [H, W] mask of a box's clipped pixel rectangle."""
    width, height = frame_size
    mask = np.zeros((height, width), dtype=bool)
    rect = box_pixels(box, frame_size)
    if rect is not None:
        mask[rect[1] : rect[3] + 1, rect[0] : rect[2] + 1] = True
    return mask


def pixel_count(box: Sequence[float], frame_size: tuple[int, int]) -> int:
    """Number of pixels of a box clipped to the frame."""
    rect = box_pixels(box, frame_size)
    return 0 if rect is None else (rect[2] - rect[0] + 1) * (rect[3] - rect[1] + 1)


def inside(point: tuple[float, float] | None, box: Box) -> bool:
    """Pointing hit: the point lies in the GT box as given (not clipped)."""
    if point is None:
        return False
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


class _Answers:
    """Point and mask of prediction entries, each full-resolution map computed once."""

    def __init__(self, tau: float, relative_tau: bool) -> None:
        self.tau = tau
        self.relative_tau = relative_tau
        self._maps: dict[int, np.ndarray] = {}
        self._keep: list[FramePrediction] = []  # keeps ids valid

    def _map(self, entry: FramePrediction, frame_size: tuple[int, int]) -> np.ndarray:
        key = id(entry)
        if key not in self._maps:
            self._maps[key] = upsample(entry.heat, frame_size)
            self._keep.append(entry)
        return self._maps[key]

    def point(self, entry: FramePrediction | None, frame_size: tuple[int, int]) -> tuple[float, float] | None:
        """Given point, else heat argmax, else box centre, else None."""
        if entry is None:
            return None
        if entry.point is not None:
            return float(entry.point[0]), float(entry.point[1])
        if entry.heat is not None:
            return heat_point(self._map(entry, frame_size))
        if entry.box is not None:
            x1, y1, x2, y2 = entry.box
            return (x1 + x2) / 2, (y1 + y2) / 2
        return None

    def mask(self, entry: FramePrediction, frame_size: tuple[int, int]) -> np.ndarray:
        """Box pixels, else heat ≥ tau (or tau · max), else the whole frame."""
        if entry.box is not None:
            return box_mask(entry.box, frame_size)
        if entry.heat is not None:
            full = self._map(entry, frame_size)
            threshold = self.tau * full.max() if self.relative_tau else self.tau
            return full >= threshold - EPS
        width, height = frame_size
        return np.ones((height, width), dtype=bool)


# ------------------------------------------------------------------------------------------------ AP


def average_precision(detections: list[tuple[float, bool]], num_positives: int) -> float:
    """VOC all-point AP at distinct score values (tie order never matters)."""
    if num_positives == 0 or not detections:
        return 0.0
    recalls, precisions = [], []
    values = sorted({score for score, _ in detections}, reverse=True)
    # Consecutive values within 1e-12 are one score (the protocol's tie tolerance): keep each group's lowest.
    lowest = [v for i, v in enumerate(values) if i + 1 == len(values) or values[i + 1] < v - 1e-12]
    for s in lowest:
        tp = sum(1 for score, ok in detections if score >= s and ok)
        fp = sum(1 for score, ok in detections if score >= s and not ok)
        recalls.append(tp / num_positives)
        precisions.append(tp / (tp + fp))
    for k in range(len(precisions) - 2, -1, -1):
        precisions[k] = max(precisions[k], precisions[k + 1])
    ap, previous = 0.0, 0.0
    for r, p in zip(recalls, precisions):
        ap += (r - previous) * p
        previous = r
    return ap


def mean_ap(detections: dict[str, list[tuple[float, bool]]], positives: dict[str, int]) -> float:
    """Mean AP over the classes that have at least one positive (0 when none has)."""
    aps = [average_precision(detections.get(c, []), k) for c, k in sorted(positives.items()) if k > 0]
    return sum(aps) / len(aps) if aps else 0.0


# -------------------------------------------------------------------------------------------- GYT/YC


def _runs(labels: list[str | None]) -> list[tuple[str, int, int]]:
    """Maximal runs ``(class, first, last)`` of one non-background label."""
    runs: list[tuple[str, int, int]] = []
    t = 0
    while t < len(labels):
        if labels[t] is None:
            t += 1
            continue
        start = t
        while t + 1 < len(labels) and labels[t + 1] == labels[start]:
            t += 1
        runs.append((labels[start], start, t))
        t += 1
    return runs


def evaluated_length(rec: VideoRecord, video: VideoPredictions | None) -> int:
    """n: the annotation's length, or the file's num_frames when longer (never shorter)."""
    given = video.num_frames if video is not None and video.num_frames is not None else 0
    return max(rec.num_frames, given)


def _entries(rec: VideoRecord, video: VideoPredictions | None):
    """Frames entries by second and grounding entries by (second, query), both for t < n only."""
    frames: dict[int, FramePrediction] = {}
    grounding: dict[tuple[int, str], FramePrediction] = {}
    n = evaluated_length(rec, video)
    if video is not None:
        for e in video.frames:
            if e.t < n:
                frames[e.t] = e
        for e in video.grounding:
            if e.t < n and e.label is not None:
                grounding.setdefault((e.t, normalise_query(e.label)), e)
    return frames, grounding


def reference_scores(
    records: list[VideoRecord],
    predictions: Predictions,
    *,
    tau: float = 0.01,
    relative_tau: bool = False,
    spatial_iou: float = 0.3,
    video_thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
    iou_pointing_classes: str = "gt",
    zero_area_boxes: str = "exclude",
    trimmed_fallback: str = "same_label",
) -> dict[str, float]:
    """Pointing, spatial mAP, IoU pointing and video mAP of ``predictions`` on ``records``, by brute force."""
    assert iou_pointing_classes in ("gt", "union")
    assert zero_area_boxes in ("exclude", "miss")
    assert trimmed_fallback in ("same_label", "any_label")
    answers = _Answers(tau, relative_tau)
    hits = scored = unanswered = 0
    spatial_dets: dict[str, list[tuple[float, bool]]] = {}
    spatial_pos: dict[str, int] = {}
    video_ious: list[float] = []
    tube_dets = {theta: {} for theta in video_thresholds}
    tube_pos: dict[str, int] = {}

    for rec in records:
        n, size = evaluated_length(rec, predictions.get(rec.video_id)), rec.frame_size
        frames, grounding = _entries(rec, predictions.get(rec.video_id))
        gt = [_norm(rec.labels.get(t)) for t in range(n)]
        pred = [_norm(frames[t].label) if t in frames else None for t in range(n)]

        # Trimmed: pointing and spatial mAP.
        for t in range(n):
            if t not in rec.boxes or gt[t] is None:
                continue
            q, box = gt[t], rec.boxes[t]
            entry = grounding.get((t, q))
            if (
                entry is None
                and t in frames
                and (_norm(frames[t].label) == q or trimmed_fallback == "any_label")
            ):
                entry = frames[t]
            if entry is None:
                unanswered += 1
            zero = box_area(box) == 0
            if not zero or zero_area_boxes == "miss":
                scored += 1
                if not zero and inside(answers.point(entry, size), box):
                    hits += 1
            if zero:
                continue
            spatial_pos[q] = spatial_pos.get(q, 0) + 1
            if entry is not None:
                mask = answers.mask(entry, size)
                gt_mask = box_mask(box, size)
                inter = int((mask & gt_mask).sum())
                union = int((mask | gt_mask).sum())
                iou = inter / union if union else 0.0
                spatial_dets.setdefault(q, []).append((float(entry.score), iou > spatial_iou))

        # Untrimmed: IoU pointing.
        classes = {c for c in gt if c is not None}
        if iou_pointing_classes == "union":
            classes |= {c for c in pred if c is not None}
        if classes:
            per_class = []
            for c in sorted(classes):
                p_c = {t for t in range(n) if pred[t] == c}
                g_c = {t for t in range(n) if gt[t] == c}
                hits_c = 0
                for t in sorted(p_c & g_c):
                    no_box = t not in rec.boxes or box_area(rec.boxes[t]) == 0
                    if no_box or inside(answers.point(frames[t], size), rec.boxes[t]):
                        hits_c += 1
                per_class.append(hits_c / len(p_c | g_c))
            video_ious.append(sum(per_class) / len(per_class))

        # Untrimmed: video mAP.
        gt_tubes = []  # (class, first, last, voxels)
        for c, first, last in _runs(gt):
            voxels = sum(pixel_count(rec.boxes[t], size) for t in range(first, last + 1) if t in rec.boxes)
            gt_tubes.append((c, first, last, voxels))
        for c, _, _, voxels in gt_tubes:
            if voxels > 0:
                tube_pos[c] = tube_pos.get(c, 0) + 1
        dets = []  # (score, first, class, ious per GT tube index)
        for c, first, last in _runs(pred):
            if any(
                g[0] == c and g[3] == 0 and g[1] <= first and last <= g[2] for g in gt_tubes
            ):  # inside an ignored GT tube
                continue
            span = range(first, last + 1)
            score = math.fsum(float(frames[t].score) for t in span) / len(span)
            masks = {t: answers.mask(frames[t], size) for t in span}
            det_voxels = sum(int(m.sum()) for m in masks.values())
            ious = {}
            for j, (gc, gfirst, glast, gvoxels) in enumerate(gt_tubes):
                if gc != c or gvoxels == 0:
                    continue
                inter = 0
                for t in span:
                    if gfirst <= t <= glast and t in rec.boxes:
                        inter += int((masks[t] & box_mask(rec.boxes[t], size)).sum())
                ious[j] = inter / (det_voxels + gvoxels - inter)
            dets.append((score, first, c, ious))
        dets.sort(key=lambda d: (-d[0], d[1]))
        for theta in video_thresholds:
            matched: set[int] = set()
            for score, _, c, ious in dets:
                best = None
                for j in sorted(ious):  # GT tubes in time order: the first of equal IoUs wins
                    if j not in matched and (best is None or ious[j] > ious[best]):
                        best = j
                ok = best is not None and ious[best] >= theta
                if ok:
                    matched.add(best)
                tube_dets[theta].setdefault(c, []).append((score, ok))

    result = {
        "pointing": hits / scored if scored else 0.0,
        "spatial_map": mean_ap(spatial_dets, spatial_pos),
        "iou_pointing": sum(video_ious) / len(video_ious) if video_ious else 0.0,
        "trimmed_unanswered": float(unanswered),
    }
    per_theta = []
    for theta in video_thresholds:
        value = mean_ap(tube_dets[theta], tube_pos)
        result[f"video_map@{theta:g}"] = value
        per_theta.append(value)
    result["video_map"] = sum(per_theta) / len(per_theta)
    return result


# ----------------------------------------------------------------------------------------------- MYT


def step_truth(rec: VideoRecord, n: int | None = None) -> list[int]:
    """GT step index per second t < n (a later segment wins overlaps), -1 = background."""
    n = rec.num_frames if n is None else n
    truth = [BACKGROUND] * n
    for i, segment in enumerate(rec.segments):
        for t in segment.frames():
            if t < n:
                truth[t] = i
    return truth


def similarity(rec: VideoRecord, video: VideoPredictions | None) -> np.ndarray:
    """[n, S] step similarity: the video's ``step_scores``, else one-hot from the frames labels."""
    n, steps = evaluated_length(rec, video), [s.query for s in rec.segments]
    if video is not None and video.step_scores is not None:
        sim = np.asarray(video.step_scores, dtype=np.float64)
        assert sim.shape[0] >= n and sim.shape[1] == len(steps), sim.shape
        return sim[:n]
    sim = np.zeros((n, len(steps)))
    frames, _ = _entries(rec, video)
    for t, e in frames.items():
        for i, q in enumerate(steps):
            if _norm(e.label) == q:
                sim[t, i] = 1.0
    return sim


def alignment_score(aligned: Sequence[int], sim: np.ndarray, background_score: float = 0.5) -> float:
    """Sum of ``sim[t, step]`` over aligned seconds plus ``background_score`` per background second."""
    return float(sum(background_score if s == BACKGROUND else sim[t, s] for t, s in enumerate(aligned)))


def is_valid_alignment(aligned: Sequence[int], num_steps: int) -> bool:
    """Every step one contiguous non-empty run, steps in order, background anywhere between."""
    steps = [s for s in aligned if s != BACKGROUND]
    runs = [s for k, s in enumerate(steps) if k == 0 or s != steps[k - 1]]
    if runs != list(range(num_steps)):
        return False
    for i in range(num_steps):  # contiguous: no background inside a step's run
        ts = [t for t, s in enumerate(aligned) if s == i]
        if ts[-1] - ts[0] + 1 != len(ts):
            return False
    return True


def optimal_alignments(
    sim: np.ndarray, background_score: float = 0.5, tol: float = 1e-9
) -> tuple[float, list[tuple[int, ...]]]:
    """Exhaustive search over all state paths: (optimal score, distinct optimal per-second labelings)."""
    n, num_steps = sim.shape
    best, labelings = -math.inf, []
    # States 0..2S (even = background bg_k, odd 2i+1 = step i); a path is a non-decreasing sequence.
    for path in itertools.combinations_with_replacement(range(2 * num_steps + 1), n):
        if any(2 * i + 1 not in path for i in range(num_steps)):
            continue
        aligned = tuple(BACKGROUND if s % 2 == 0 else s // 2 for s in path)
        score = alignment_score(aligned, sim, background_score)
        if score > best + tol:
            best, labelings = score, [aligned]
        elif score >= best - tol and aligned not in labelings:
            labelings.append(aligned)
            best = max(best, score)
    return best, labelings


def optimal_alignment_score(sim: np.ndarray, background_score: float = 0.5) -> float:
    """The best achievable alignment score (exhaustive)."""
    return optimal_alignments(sim, background_score)[0]


def temporal_metrics(truths: list[list[int]], alignments: list[Sequence[int]]) -> dict[str, float]:
    """IoU / IoD (mean over the steps that own a GT second, then videos) and MoF (all frames) of alignments."""
    ious, iods, correct, total = [], [], 0, 0
    for truth, aligned in zip(truths, alignments, strict=True):
        steps = sorted({s for s in truth if s != BACKGROUND})  # steps that own a GT second
        video_iou, video_iod = [], []
        for i in steps:
            g = {t for t, s in enumerate(truth) if s == i}
            d = {t for t, s in enumerate(aligned) if s == i}
            video_iou.append(len(g & d) / len(g | d))
            video_iod.append(len(g & d) / len(d) if d else 0.0)
        if steps:
            ious.append(sum(video_iou) / len(video_iou))
            iods.append(sum(video_iod) / len(video_iod))
        correct += sum(1 for a, b in zip(truth, aligned) if a == b)
        total += len(truth)
    return {
        "temporal_iou": sum(ious) / len(ious) if ious else 0.0,
        "temporal_iod": sum(iods) / len(iods) if iods else 0.0,
        "temporal_mof": correct / total if total else 0.0,
    }


def reference_temporal(
    records: list[VideoRecord], predictions: Predictions, background_score: float = 0.5
) -> dict[str, float]:
    """MiningYouTube metrics with each video's path found by exhaustive search (tiny inputs, no ties)."""
    truths, alignments = [], []
    for rec in records:
        sim = similarity(rec, predictions.get(rec.video_id))
        _, labelings = optimal_alignments(sim, background_score)
        if len(labelings) != 1:
            raise ValueError(f"{rec.video_id}: {len(labelings)} optimal alignments (tied input)")
        truths.append(step_truth(rec, len(sim)))
        alignments.append(labelings[0])
    return temporal_metrics(truths, alignments)
