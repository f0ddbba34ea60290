"""Metrics on tiny hand-computed cases; Viterbi against exhaustive search."""

import itertools
import math

import numpy as np
import pytest
import torch

from stg_lightning.eval.metrics import (
    IoUPointing,
    MaskConfig,
    PointingGame,
    SpatialMAP,
    TemporalAlignment,
    VideoMAP,
)
from stg_lightning.eval.metrics.ap import average_precision
from stg_lightning.eval.metrics.object_choice import ObjectChoice
from stg_lightning.eval.metrics.spatial import heat_mask_counts, heat_points, mask_counts
from stg_lightning.eval.viterbi import similarity_from_labels, viterbi_align

NAN = math.nan


def test_heat_point_is_first_max_of_bilinear_upsampling():
    # 2×2 → 4×4 (align_corners=False): the value-1 cell's weight is [0, .25, .75, 1] across columns
    # and [1, .75, .25, 0] down rows, so the maximum is at row 0, column 3.
    assert heat_points(np.array([[[0.0, 1.0], [0.0, 0.0]]]), (4, 4)).tolist() == [[3.0, 0.0]]


@pytest.mark.parametrize(
    ("grid", "frame", "expected"),
    [
        (np.ones((2, 2)), (4, 4), (0, 0)),  # plateau: the first pixel in row-major order
        (np.full((10, 10), 0.37), (640, 480), (0, 0)),
        (np.ones((1, 1)), (640, 480), (0, 0)),
        # two equal maxima in one row: the left one's first pixel (its plateau starts at the frame edge)
        (np.array([[1.0, 0.0, 1.0]]), (9, 3), (0, 0)),
        # equal maxima in row 1 of a 3×3 grid: rows 2..3 of a 9×9 frame hold the centre row's plateau
        (np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 2.0], [0.0, 0.0, 0.0]]), (9, 9), (4, 4)),
    ],
)
def test_heat_point_ties_take_the_first_pixel_of_the_plateau(grid, frame, expected):
    assert tuple(heat_points(grid[None], frame)[0]) == expected


def test_heat_point_is_scale_free():
    rng = np.random.default_rng(0)
    grids = rng.random((20, 5, 9))
    np.testing.assert_array_equal(heat_points(grids, (64, 48)), heat_points(grids * 1e-6, (64, 48)))


def test_heat_mask_absolute_and_relative_threshold():
    heat = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    everything = np.array([[0, 0, 3, 3]])
    # Upsampled value = row weight × column weight, weights [1, .75, .25, 0]: 3×3 pixels are > 0.
    assert heat_mask_counts(heat, (4, 4), everything, MaskConfig(tau=0.01))[0].tolist() == [9]
    # ≥ 0.5 · max: 1, .75, .75, .5625 → 4 pixels.
    assert heat_mask_counts(heat, (4, 4), everything, MaskConfig(tau=0.5, relative=True))[0].tolist() == [4]
    assert heat_mask_counts(heat, (4, 4), np.array([[1, 1, 3, 3]]), MaskConfig(tau=0.01))[1].tolist() == [4]
    # no heat: the whole frame
    area, inside = mask_counts((4, 3), None, None, np.array([[1, 1, 2, 1]]), MaskConfig())
    assert (area.tolist(), inside.tolist()) == ([12], [2])


def test_heat_mask_normalises_and_keeps_values_equal_to_tau():
    # A uniform 10×10 grid is 0.01 everywhere after normalisation: every pixel is ≥ τ = 0.01, at any scale.
    for scale in (1.0, 3e-7, 5e4):
        area, _ = heat_mask_counts(
            np.full((1, 10, 10), scale), (640, 480), np.array([[0, 0, 0, 0]]), MaskConfig()
        )
        assert area.tolist() == [640 * 480]
    assert heat_mask_counts(np.zeros((1, 3, 3)), (30, 30), np.array([[0, 0, 9, 9]]), MaskConfig())[
        1
    ].tolist() == [100]  # all-zero grid: uniform 1/9 ≥ τ


def test_pointing_game_hand_computed():
    heat = torch.full((6, 2, 2), NAN)
    heat[0] = torch.tensor([[0.0, 1.0], [0.0, 0.0]])  # argmax (3, 0)
    heat[5] = torch.ones(2, 2)  # argmax (0, 0)
    points = torch.tensor([[NAN, NAN], [10, 10], [1, 1], [NAN, NAN], [0, 0], [NAN, NAN]])
    gt = torch.tensor(
        [[2, 0, 3, 1], [0, 0, 5, 5], [0, 0, 1, 1], [0, 0, 3, 3], [5, 0, 4, 3], [0, 0, 0, 0]],
        dtype=torch.float,
    )
    metric = PointingGame()
    metric.update(gt, (4, 4), heat=heat, points=points)
    # hit, miss, hit (inclusive edge), miss (no point), excluded (zero area), hit (1-pixel box)
    assert metric.compute().item() == pytest.approx(3 / 5)
    assert metric.excluded.item() == 1


def test_average_precision_hand_computed():
    # precisions 1, 1/2, 2/3 at recalls 1/2, 1/2, 1 → 1/2 · 1 + 1/2 · 2/3
    ap = average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2)
    assert ap == pytest.approx(1 / 2 + 1 / 3)
    # Ties rank false positives first whatever the input order.
    assert average_precision(np.array([0.5, 0.5]), np.array([True, False]), 1) == pytest.approx(0.5)
    assert average_precision(np.array([0.5, 0.5]), np.array([False, True]), 1) == pytest.approx(0.5)


def test_spatial_map_hand_computed():
    metric = SpatialMAP()
    # Class 0: IoU 25/50 (TP, .9), 4/25 (FP, .8), 1 (TP, .3) → AP = 1/3 · 1 + 1/3 · 2/3 = 5/9.
    metric.update(
        torch.tensor([0, 0, 0]),
        torch.tensor([0.9, 0.8, 0.3]),
        torch.tensor([[0, 0, 4, 9], [0, 0, 4, 4], [5, 5, 9, 9]], dtype=torch.float),
        (10, 10),
        boxes=torch.tensor([[0, 0, 4, 4], [0, 0, 1, 1], [5, 5, 9, 9]], dtype=torch.float),
    )
    # Class 1: uniform heat → whole frame vs half frame, IoU .5 (TP); a GT box without prediction
    # (NaN score) still counts as a positive → AP 1/2; a zero-area GT box is excluded.
    heat = torch.ones(3, 2, 2)
    metric.update(
        torch.tensor([1, 1, 1]),
        torch.tensor([0.5, NAN, 0.9]),
        torch.tensor([[0, 0, 9, 4], [0, 0, 2, 2], [3, 3, 2, 2]], dtype=torch.float),
        (10, 10),
        heat=heat,
    )
    out = metric.compute()
    assert out["spatial_map"].item() == pytest.approx((5 / 9 + 1 / 2) / 2)
    # The authors' numbers over the 5 scored seconds: IoUs .5, .16, 1, .5 and 0 (no prediction).
    assert out["spatial_iou"].item() == pytest.approx((0.5 + 0.16 + 1 + 0.5) / 5)
    assert out["spatial_acc@0.3"].item() == pytest.approx(3 / 5)


def test_iou_pointing_hand_computed():
    metric = IoUPointing()
    box = [0, 0, 4, 4]
    gt_boxes = torch.tensor([box, box, box, [NAN] * 4, box, [NAN] * 4], dtype=torch.float)
    points = torch.tensor([[1, 1], [8, 8], [NAN, NAN], [NAN, NAN], [1, 1], [1, 1]], dtype=torch.float)
    # Class 0: P={0,1,4}, G={0,1,2}, hits {0} → 1/4. Class 1: P={3,5}, G={3,4}, t=3 has no box → 1/3.
    metric.update(
        torch.tensor([0, 0, -1, 1, 0, 1]),
        torch.tensor([0, 0, 0, 1, 1, -1]),
        gt_boxes,
        (10, 10),
        points=points,
    )
    metric.update(
        torch.tensor([-1, -1]), torch.tensor([-1, -1]), torch.full((2, 4), NAN), (10, 10)
    )  # skipped
    metric.update(torch.tensor([2, 2]), torch.tensor([2, 2]), torch.full((2, 4), NAN), (10, 10))  # 1.0
    assert metric.compute().item() == pytest.approx(((1 / 4 + 1 / 3) / 2 + 1.0) / 2)


def test_video_map_hand_computed():
    metric = VideoMAP()
    small, full, half = [0, 0, 4, 4], [0, 0, 9, 9], [0, 0, 9, 4]
    # Video 1: GT tube t0–1 (50 voxels); predicted t0–2 (75), IoU 50/75, score mean(.9, .9, .6) = .8.
    metric.update(
        torch.tensor([0, 0, 0, -1]),
        torch.tensor([0.9, 0.9, 0.6, 0.0]),
        torch.tensor([0, 0, -1, -1]),
        torch.tensor([small, small, [NAN] * 4, [NAN] * 4], dtype=torch.float),
        (10, 10),
        boxes=torch.tensor([small, small, small, [NAN] * 4], dtype=torch.float),
    )
    # Video 2: GT tube t0–3 (400 voxels); tubes at t0 (IoU .25, score .7) and t3 (IoU .125, score .2).
    metric.update(
        torch.tensor([0, -1, -1, 0]),
        torch.tensor([0.7, 0.0, 0.0, 0.2]),
        torch.tensor([0, 0, 0, 0]),
        torch.tensor([full] * 4, dtype=torch.float),
        (10, 10),
        boxes=torch.tensor([full, [NAN] * 4, [NAN] * 4, half], dtype=torch.float),
    )
    # Video 3: a GT tube without voxels is an ignore region; the prediction inside it is dropped.
    metric.update(
        torch.tensor([1, -1]),
        torch.tensor([0.9, 0.0]),
        torch.tensor([1, 1]),
        torch.full((2, 4), NAN),
        (10, 10),
    )
    out = metric.compute()
    # Ranking .8 TP, .7 (TP if thr ≤ .25), .2 FP; 2 positives → AP 1 at 0.1/0.2, 1/2 at 0.3–0.5.
    expected = {0.1: 1.0, 0.2: 1.0, 0.3: 0.5, 0.4: 0.5, 0.5: 0.5}
    for thr, value in expected.items():
        assert out[f"video_map@{thr:g}"].item() == pytest.approx(value)
    assert out["video_map"].item() == pytest.approx(0.7)
    assert torch.cat(metric.det_class).tolist() == [0, 0, 0]


def test_temporal_alignment_hand_computed():
    metric = TemporalAlignment()
    # Step 0: G={1,2}, D={0,1,2}; step 1: G={3,4,5}, D={4,5,6}.
    metric.update(torch.tensor([-1, 0, 0, 1, 1, 1, -1]), alignment=torch.tensor([0, 0, 0, -1, 1, 1, 1]))
    out = metric.compute()
    assert out["iou"].item() == pytest.approx((2 / 3 + 2 / 4) / 2)
    assert out["iod"].item() == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert out["mof"].item() == pytest.approx(4 / 7)


def test_viterbi_hand_computed_and_helpers():
    sim = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.1, 0.1]])
    assert viterbi_align(sim, background_score=0.5).tolist() == [0, 1, -1]
    assert similarity_from_labels(["a", None, "b"], ["a", "b"]).tolist() == [[1, 0], [0, 0], [0, 1]]
    with pytest.raises(ValueError, match="3 steps to 2 frames"):
        viterbi_align(torch.zeros(2, 3))


def _exhaustive(sim: np.ndarray, bg: float) -> tuple[float, list[int]]:
    """Best score over every valid state sequence (states bg_0, s_0, bg_1, …, s_{S-1}, bg_S)."""
    num_frames, num_steps = sim.shape
    n_states = 2 * num_steps + 1
    best = (-math.inf, [])
    for seq in itertools.product(range(n_states), repeat=num_frames):
        if seq[0] > 1 or seq[-1] < n_states - 2:
            continue
        steps = np.diff(seq)
        if any(d < 0 or d > 2 or (d == 2 and q % 2 == 0) for q, d in zip(seq, steps)):
            continue
        score = sum(sim[t, (q - 1) // 2] if q % 2 else bg for t, q in enumerate(seq))
        if score > best[0]:
            best = (score, [(q - 1) // 2 if q % 2 else -1 for q in seq])
    return best


def test_viterbi_matches_exhaustive_search():
    rng = np.random.default_rng(0)
    for _ in range(20):
        num_frames, num_steps = int(rng.integers(2, 7)), int(rng.integers(1, 3))
        if num_steps > num_frames:
            continue
        sim, bg = rng.random((num_frames, num_steps)), float(rng.random())
        score, path = _exhaustive(sim, bg)
        assert viterbi_align(torch.from_numpy(sim), bg).tolist() == path
        assert score == pytest.approx(sum(sim[t, s] if s >= 0 else bg for t, s in enumerate(path)))


def test_average_precision_does_not_depend_on_the_order_of_tied_scores():
    # One positive, two detections tied at 0.5 (one TP): at that score TP = 1, FP = 1 → AP = 1/2 either way.
    assert average_precision(np.array([0.5, 0.5]), np.array([True, False]), 1) == 0.5
    assert average_precision(np.array([0.5, 0.5]), np.array([False, True]), 1) == 0.5
    # Scores equal up to round-off are one score value.
    assert average_precision(np.array([0.6, 0.6 + 1e-15]), np.array([False, True]), 1) == 0.5


def test_pointing_zero_area_boxes_can_count_as_misses():
    gt = torch.tensor([[0, 0, 3, 3], [2, 2, 1, 1]], dtype=torch.float)  # the second has zero area
    points = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    excluded, missed = PointingGame(), PointingGame(zero_area_boxes="miss")
    excluded.update(gt, (4, 4), points=points)
    missed.update(gt, (4, 4), points=points)
    assert (excluded.compute().item(), missed.compute().item()) == (1.0, 0.5)


def test_viterbi_ties_enter_each_state_as_early_as_the_optimum_allows():
    # Second 1 scores 0.5 in step 0, step 1 and background alike: three optimal paths; the rule takes step 1.
    sim = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    assert viterbi_align(sim, background_score=0.5).tolist() == [0, 1, 1]
    # One step scoring like the background everywhere: the step takes every second.
    assert viterbi_align(np.full((4, 1), 0.5), background_score=0.5).tolist() == [0, 0, 0, 0]


def test_temporal_thresholds_and_per_class_numbers_hand_computed():
    # Steps a, b, a (class a repeated). Per step: IoU 2/3, 1/2, 1 and IoD 2/3, 1, 1.
    metric = TemporalAlignment(thresholds=(0.5, 0.7))
    metric.update([0, 0, 1, 1, 2, 2], alignment=[0, 0, 0, 1, 2, 2], step_classes=[0, 1, 0])
    out = {k: v.item() for k, v in metric.compute().items()}
    assert out["iou"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert (out["iou@0.5"], out["iou@0.7"], out["iou@avg"]) == pytest.approx((1.0, 1 / 3, 2 / 3))
    # Per class over frames: a = seconds {0, 1, 4, 5} vs aligned {0, 1, 2, 4, 5}; b = {2, 3} vs {3}.
    assert out["iou_class"] == pytest.approx((4 / 5 + 1 / 2) / 2)
    assert out["iod_class"] == pytest.approx((4 / 5 + 1) / 2)


def test_object_choice_hand_computed():
    # Three scored seconds, two objects on screen at the first two, three at the last:
    # point on the named box, on the other object's box, and off every box.
    gt = [[0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 4, 4]]
    objects = [[[0, 0, 4, 4], [10, 0, 14, 4]]] * 2 + [[[0, 0, 4, 4], [10, 0, 14, 4], [0, 6, 4, 9]]]
    metric = ObjectChoice()
    metric.update(gt, objects, (20, 10), points=[[2, 2], [12, 1], [7, 7]])
    out = metric.compute()
    assert out["point_on_named"] == out["point_on_other"] == out["point_off_objects"] == pytest.approx(1 / 3)
    assert out["named_share"] == pytest.approx(1 / 2)
    assert out["named_share_chance"] == pytest.approx((1 / 2 + 1 / 2 + 1 / 3) / 3)
    # A heat peak resolves like the pointing game's: the argmax cell of a 2×1 grid over the 20×10 frame.
    metric.reset()
    metric.update(gt[:1], [[[0, 0, 4, 4], [10, 0, 19, 9]]], (20, 10), heat=np.array([[[0.1, 0.9]]]))
    assert metric.compute()["point_on_other"] == 1.0
    with pytest.raises(ValueError, match="rows"):
        ObjectChoice().update(gt, objects[:2], (20, 10), points=[[2, 2]] * 3)
