"""Video mAP over spatio-temporal tubes (untrimmed, GYT)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchmetrics import Metric

from stg_lightning.eval.metrics.ap import cat_state, class_mean_ap
from stg_lightning.eval.metrics.spatial import MaskConfig, as_float, box_rect, frame_mask, rect_area

DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass
class _Tube:
    label: int
    start: int
    end: int  # exclusive
    voxels: int = 0
    score: float = 0.0


def label_runs(labels: list[int]) -> list[_Tube]:
    """Maximal runs of one class (≥ 0) in a per-frame label list."""
    tubes: list[_Tube] = []
    for t, c in enumerate(labels):
        if c < 0:
            continue
        if tubes and tubes[-1].label == c and tubes[-1].end == t:
            tubes[-1].end = t + 1
        else:
            tubes.append(_Tube(c, t, t + 1))
    return tubes


class VideoMAP(Metric):
    """Video mAP at tube-IoU thresholds 0.1–0.5 and their mean.

    Predicted tubes are the maximal runs of one predicted class with their per-frame 3-D masks (the
    predicted box, else heat ≥ τ on the bilinearly upsampled grid, else the whole frame), scored by the
    mean of their per-second scores; GT tubes are the GT runs with their per-second boxes (clipped to
    the frame). Tube IoU is the voxel IoU of mask and box tube. Per class over all videos, detections
    are ranked by score and each is matched greedily to the unmatched GT tube of its video with the
    highest IoU if that reaches the threshold (else a false positive); AP is VOC all-point interpolated
    and averaged over classes with GT tubes. GT tubes with no voxels are ignored (not positives), as is
    any predicted tube of the same class lying entirely inside one.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(
        self, thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS, mask: MaskConfig | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.thresholds = tuple(thresholds)
        self.mask = mask or MaskConfig()
        for name in ("det_class", "det_score", "det_tp", "gt_class"):
            self.add_state(name, [], dist_reduce_fx="cat")

    def update(
        self,
        pred_labels: Tensor,
        scores: Tensor,
        gt_labels: Tensor,
        gt_boxes: Tensor,
        frame_size: tuple[int, int],
        heat: Tensor | None = None,
        boxes: Tensor | None = None,
    ) -> None:
        """One video: labels [T] (-1 = background), ``scores`` [T], ``gt_boxes`` [T, 4] (NaN = no box)."""
        pred = torch.as_tensor(pred_labels).long().cpu().tolist()
        gt = torch.as_tensor(gt_labels).long().cpu().tolist()
        if len(pred) != len(gt):
            raise ValueError(
                f"pred_labels ({len(pred)}) and gt_labels ({len(gt)}) must have one entry per frame"
            )
        sc, gtb = as_float(scores).tolist(), as_float(gt_boxes, 4)
        heat, boxes = as_float(heat), as_float(boxes, 4)

        gt_tubes, gt_rects = label_runs(gt), {}
        gt_of_frame = {}
        for j, g in enumerate(gt_tubes):
            for t in range(g.start, g.end):
                if bool(torch.isfinite(gtb[t]).all()):
                    gt_rects[t] = box_rect(gtb[t].tolist(), frame_size)
                    g.voxels += rect_area(gt_rects[t])
                gt_of_frame[t] = j
        dets = label_runs(pred)
        inter = [dict.fromkeys(range(len(gt_tubes)), 0) for _ in dets]
        for k, d in enumerate(dets):
            d.score = sum(sc[d.start : d.end]) / (d.end - d.start)
            for t in range(d.start, d.end):  # one full-resolution mask alive at a time
                m = frame_mask(t, frame_size, heat, boxes, self.mask)
                d.voxels += m.area
                j = gt_of_frame.get(t)
                if j is not None and gt_tubes[j].label == d.label and t in gt_rects:
                    inter[k][j] += m.intersect(gt_rects[t])
        self._match(dets, gt_tubes, inter)

    def _match(self, dets: list[_Tube], gt_tubes: list[_Tube], inter: list[dict[int, int]]) -> None:
        ignored = [g for g in gt_tubes if g.voxels == 0]
        kept = [
            k
            for k, d in enumerate(dets)
            if not any(g.label == d.label and g.start <= d.start and d.end <= g.end for g in ignored)
        ]
        kept.sort(key=lambda k: -dets[k].score)  # stable: same-score tubes keep time order
        tp = torch.zeros(len(kept), len(self.thresholds), dtype=torch.float64)
        for ti, thr in enumerate(self.thresholds):
            matched: set[int] = set()
            for row, k in enumerate(kept):
                d, best, best_iou = dets[k], None, -1.0
                for j, g in enumerate(gt_tubes):
                    if g.label != d.label or g.voxels == 0 or j in matched:
                        continue
                    iou = inter[k][j] / (d.voxels + g.voxels - inter[k][j])
                    if iou > best_iou:
                        best, best_iou = j, iou
                if best is not None and best_iou >= thr:
                    matched.add(best)
                    tp[row, ti] = 1.0
        self.det_class.append(torch.tensor([dets[k].label for k in kept], dtype=torch.float64))
        self.det_score.append(torch.tensor([dets[k].score for k in kept], dtype=torch.float64))
        self.det_tp.append(tp.flatten())
        self.gt_class.append(torch.tensor([g.label for g in gt_tubes if g.voxels > 0], dtype=torch.float64))

    def compute(self) -> dict[str, Tensor]:
        dc, ds, gc = cat_state(self.det_class), cat_state(self.det_score), cat_state(self.gt_class)
        tp = cat_state(self.det_tp).reshape(len(dc), len(self.thresholds)) > 0
        out = {
            f"video_map@{thr:g}": torch.tensor(class_mean_ap(dc, ds, tp[:, i], gc), dtype=torch.float64)
            for i, thr in enumerate(self.thresholds)
        }
        out["video_map"] = torch.stack(list(out.values())).mean()
        return out
