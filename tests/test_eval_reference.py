"""score_predictions against the brute-force reference of tests/reference_metrics.py (spec-derived).

Real GroundingYouTube videos (the first three of the annotation file) and random synthetic records with
small frames, many kinds of predictions (heat, points, boxes, ties, plateaus, unnormalised heat,
missing/extra entries), every scoring option; MiningYouTube against an exhaustive alignment search.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import pytest
import torch
from reference_metrics import (
    DEFAULT_THRESHOLDS,
    alignment_score,
    average_precision,
    is_valid_alignment,
    optimal_alignment_score,
    optimal_alignments,
    reference_scores,
    reference_temporal,
    similarity,
    step_truth,
    temporal_metrics,
    upsample,
)

from stg_lightning.eval.loaders import load_gyt, shared_data_root
from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.records import (
    DatasetReport,
    EvalDataset,
    Segment,
    VideoRecord,
    query_vocabulary,
    runs_to_segments,
)

GYT_FILE = shared_data_root() / "groundingyoutube" / "GoundingYouTubeBox.json"
KEYS = (
    "pointing",
    "spatial_map",
    "iou_pointing",
    *(f"video_map@{t:g}" for t in DEFAULT_THRESHOLDS),
    "video_map",
    "trimmed_unanswered",
)
TEMPORAL_KEYS = ("temporal_iou", "temporal_iod", "temporal_mof")
TOL = 1e-6


# ------------------------------------------------------------------------------------------ helpers


def _project(dataset: EvalDataset, predictions: Predictions, **options) -> dict[str, float]:
    from stg_lightning.eval.scoring import ScoringConfig, score_predictions

    return score_predictions(dataset, predictions, ScoringConfig(**options))


def _mismatches(got: dict[str, float], want: dict[str, float], keys: tuple[str, ...]) -> list[str]:
    bad = []
    for k in keys:
        if k not in got:
            bad.append(f"{k}: missing from the project's result (reference {want[k]!r})")
        elif not abs(float(got[k]) - want[k]) <= TOL:
            bad.append(f"{k}: project {float(got[k])!r}, reference {want[k]!r}")
    return bad


def _check(dataset: EvalDataset, predictions: Predictions, **options) -> dict[str, float]:
    want = reference_scores(dataset.records, predictions, **options)
    got = _project(dataset, predictions, **options)
    bad = _mismatches(got, want, KEYS)
    assert not bad, "\n".join(bad)
    return want


def _raw(query: str) -> str:
    """A raw spelling that normalises back to ``query``."""
    return "  " + query.title().replace(" ", "_") + " "


def _runs(rng: np.random.Generator, n: int, choices: list, max_len: int = 8) -> list:
    out: list = []
    while len(out) < n:
        out += [choices[int(rng.integers(len(choices)))]] * int(rng.integers(1, max_len + 1))
    return out[:n]


def _heat(rng: np.random.Generator, shape=(7, 7)) -> np.ndarray:
    return rng.random(shape).astype(np.float32)


# -------------------------------------------------------------------------------- reference sanity


def test_reference_upsample_matches_torch_interpolate():
    rng = np.random.default_rng(0)
    for shape in [(7, 7), (1, 1), (2, 2), (10, 10), (3, 5), (9, 2)]:
        g = rng.random(shape) * 37.0
        for size in [(640, 480), (64, 48), (5, 3), (20, 10), (7, 7)]:
            ours = upsample(g, size)
            ref = torch.nn.functional.interpolate(
                torch.tensor(g / g.sum())[None, None], size=(size[1], size[0]), mode="bilinear"
            )[0, 0].numpy()
            np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(upsample(np.zeros((3, 4)), (8, 6)), np.full((6, 8), 1 / 12))


def test_reference_average_precision_hand_computed():
    # Recall / precision .5/1, .5/.5, 1/.667 → interpolated 1, .667, .667 → AP = .5 + .5 · 2/3.
    assert average_precision([(0.9, True), (0.8, False), (0.7, True)], 2) == pytest.approx(0.5 + 1 / 3)
    assert average_precision([(0.5, False), (0.5, True)], 1) == pytest.approx(0.5)
    assert average_precision([(0.5, True), (0.5, False)], 1) == pytest.approx(0.5)
    assert average_precision([(0.5, True)], 4) == pytest.approx(0.25)


def _tiny_record() -> VideoRecord:
    return VideoRecord(
        "v1",
        (20, 10),
        4,
        [Segment("a", "a", 1, 3)],
        labels={1: "a", 2: "a"},
        boxes={1: (0, 0, 4, 4), 2: (10, 0, 19, 9)},
        queries=["a"],
    )


def test_reference_scores_hand_computed():
    preds = {
        "v1": VideoPredictions(
            frames=[
                FramePrediction(1, "A", 0.9, point=(2, 2)),
                FramePrediction(2, "a", 0.8, box=(10, 0, 19, 9)),
            ]
        )
    }
    out = reference_scores([_tiny_record()], preds)
    assert out["pointing"] == 1.0  # (2, 2) and the box centre (14.5, 4.5)
    # t=1: whole-frame mask, IoU 25/200 → FP at .9; t=2: IoU 1 → TP at .8 → AP = .5 · .5.
    assert out["spatial_map"] == pytest.approx(0.25)
    assert out["iou_pointing"] == 1.0
    # One tube: |D| = 200 + 100, |G| = 25 + 100, |D∩G| = 125 → IoU 5/12: TP at θ ≤ .4, FP at .5.
    assert [out[f"video_map@{t:g}"] for t in DEFAULT_THRESHOLDS] == [1, 1, 1, 1, 0]
    assert out["video_map"] == pytest.approx(0.8)
    assert out["trimmed_unanswered"] == 0
    grounded = {"v1": VideoPredictions(grounding=[FramePrediction(1, "a", point=(9, 9))])}
    out = reference_scores([_tiny_record()], grounded)
    assert (out["pointing"], out["trimmed_unanswered"], out["video_map"]) == (0.0, 1.0, 0.0)


def _rules_case() -> tuple[EvalDataset, Predictions]:
    """10×6 frames: a at 0–2 and 6–7 (no boxes: a 0-voxel tube), b at 4–5; see the hand-computed test."""
    rec = VideoRecord(
        "r",
        (10, 6),
        8,
        runs_to_segments({0: "a", 1: "a", 2: "a", 4: "b", 5: "b", 6: "a", 7: "a"}),
        labels={0: "a", 1: "a", 2: "a", 4: "b", 5: "b", 6: "a", 7: "a"},
        boxes={0: (0, 0, 4, 5), 1: (5, 0, 9, 5), 2: (3, 3, 2, 5), 4: (0, 0, 9, 5), 5: (20, 0, 30, 5)},
        queries=["a", "b"],
    )
    frames = [
        FramePrediction(0, "a", 0.9, point=(2, 2)),
        FramePrediction(1, "b", 0.4, box=(5, 0, 9, 5)),
        FramePrediction(2, "a", 0.6, heat=np.ones((2, 2))),
        FramePrediction(3, "c", 0.2),
        FramePrediction(4, "B", 0.5, heat=np.ones((2, 2))),
        FramePrediction(5, "b", 0.5, point=(25, 2)),
        FramePrediction(6, "a", 0.3),
        FramePrediction(7, "a", 0.3),
    ]
    grounding = [FramePrediction(0, "A", 0.8, point=(9, 5))]
    preds = {"r": VideoPredictions(frames=frames, grounding=grounding)}
    return EvalDataset("gyt", [rec], DatasetReport("gyt", "hand-built")), preds


RULES_EXPECTED = {
    # pointing: t0 grounding (9, 5) misses, t1 b ≠ a: unanswered (any_label: its box centre hits), t2 zero
    # area (excluded / a miss), t4 (0, 0) hits, t5 (25, 2) hits the unclipped box.
    # spatial_map: a: t0 whole frame vs 30 px → IoU .5 TP (any_label: + t1 box = GT, TP) of 2 positives;
    # b: t4 IoU 1 TP, t5 GT has no pixels → FP, both at .5 → AP .25.
    # iou_pointing: a 4/5 (t0 frames point hits, t2 zero area, t6–7 no box), b 2/3; union adds c: 0.
    # video_map: a[0] IoU 30/90, a[2] FP, a[6–7] dropped (inside the 0-voxel GT tube), b[4–5] IoU
    # 60/120, b[1] FP → 1, 1, 1, .5, .5.
    (): {"pointing": 2 / 4, "spatial_map": 0.375, "iou_pointing": (0.8 + 2 / 3) / 2, "trimmed_unanswered": 1},
    (("trimmed_fallback", "any_label"),): {"pointing": 3 / 4, "spatial_map": 0.625, "trimmed_unanswered": 0},
    (("zero_area_boxes", "miss"),): {"pointing": 2 / 5, "spatial_map": 0.375},
    (("iou_pointing_classes", "union"),): {"iou_pointing": (0.8 + 2 / 3) / 3},
}


@pytest.mark.parametrize("options", list(RULES_EXPECTED), ids=str)
def test_reference_rules_hand_computed(options):
    dataset, preds = _rules_case()
    out = reference_scores(dataset.records, preds, **dict(options))
    assert {k: out[k] for k in RULES_EXPECTED[options]} == pytest.approx(RULES_EXPECTED[options])
    assert [out[f"video_map@{t:g}"] for t in DEFAULT_THRESHOLDS] == pytest.approx([1, 1, 1, 0.5, 0.5])


@pytest.mark.parametrize("options", list(RULES_EXPECTED), ids=str)
def test_hand_computed_case_matches_reference(options):
    _check(*_rules_case(), **dict(options))


def _tube_case() -> tuple[EvalDataset, Predictions]:
    """One GT tube a at 0–3 (whole 10×1 frame, 40 voxels); tube [0] (2 px, IoU .05) outscores [2–3] (IoU .5)."""
    rec = VideoRecord(
        "u",
        (10, 1),
        4,
        runs_to_segments(dict.fromkeys(range(4), "a")),
        labels=dict.fromkeys(range(4), "a"),
        boxes=dict.fromkeys(range(4), (0, 0, 9, 0)),
        queries=["a"],
    )
    frames = [
        FramePrediction(0, "a", 0.9, box=(0, 0, 1, 0)),
        FramePrediction(2, "a", 0.8),
        FramePrediction(3, "a", 0.8),
    ]
    return EvalDataset("gyt", [rec], DatasetReport("gyt", "hand-built")), {"u": VideoPredictions(frames)}


def test_reference_false_positive_leaves_the_gt_tube_unmatched():
    # [0] is an FP at every θ and does not use up the GT tube: [2–3] (IoU .5) is a TP → AP .5 everywhere.
    dataset, preds = _tube_case()
    out = reference_scores(dataset.records, preds)
    assert [out[f"video_map@{t:g}"] for t in DEFAULT_THRESHOLDS] == pytest.approx([0.5] * 5)


def test_false_positive_tube_case_matches_reference():
    _check(*_tube_case())


def test_reference_alignment_search_hand_computed():
    sim = np.array([[0.9, 0.0], [0.1, 0.2], [0.0, 0.8], [0.0, 0.0]])
    best, paths = optimal_alignments(sim, 0.5)
    assert best == pytest.approx(0.9 + 0.5 + 0.8 + 0.5) and paths == [(0, -1, 1, -1)]
    assert is_valid_alignment((0, -1, 1, -1), 2) and not is_valid_alignment((0, 1, 0, -1), 2)
    assert not is_valid_alignment((0, -1, 0, 1), 2) and not is_valid_alignment((-1, 1, 1, 1), 2)
    m = temporal_metrics([[0, 0, 1, -1]], [(0, -1, 1, -1)])
    assert m == pytest.approx({"temporal_iou": 0.75, "temporal_iod": 1.0, "temporal_mof": 0.75})


# ------------------------------------------------------------------------------------ real GYT subset


@lru_cache(maxsize=1)
def _gyt_subset() -> EvalDataset:
    dataset = load_gyt(GYT_FILE)
    return EvalDataset(name="gyt", records=dataset.records[:3], report=dataset.report)


def _peak_heat(rng: np.random.Generator, rec: VideoRecord, t: int) -> np.ndarray:
    heat = rng.random((7, 7)).astype(np.float32) * 0.1
    x1, y1, x2, y2 = rec.boxes[t]
    width, height = rec.frame_size
    cx, cy = min(max((x1 + x2) / 2, 0), width - 1), min(max((y1 + y2) / 2, 0), height - 1)
    heat[min(int(cy * 7 / height), 6), min(int(cx * 7 / width), 6)] = 1.0
    return heat


def _plateau_heat(family: int, t: int) -> np.ndarray:
    """Plateaus and equal maxima; the scorer wants one grid shape per video, so one family per video."""
    if family == 0:
        both_diagonals = np.eye(7)[::-1] + np.eye(7)
        both_diagonals[3, 3] = 1.0
        kinds = [
            np.ones((7, 7)),  # uniform
            np.array([[0, 1, 0, 0, 0, 1, 0]] * 2 + [[0] * 7] * 5, dtype=float),  # mirror-image equal maxima
            np.zeros((7, 7)),  # all zero → uniform
            both_diagonals,  # equal maxima on both diagonals
            np.pad(np.ones((1, 2)), ((3, 3), (2, 3))),  # two equal maxima side by side
            np.pad(np.ones((2, 1)), ((2, 3), (3, 3))),  # … one above the other
        ]
        return kinds[t % len(kinds)].astype(np.float32)
    shape = {1: (1, 1), 2: (2, 2), 3: (10, 10)}[family]  # 10×10: every value exactly tau = 0.01
    return np.full(shape, 3.0 if t % 2 else 1.0, dtype=np.float32)


def _gyt_set(name: str, seed: int = 0, shift: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    records = _gyt_subset().records
    all_queries = sorted({q for r in records for q in r.queries})
    preds: Predictions = {}
    for v, rec in enumerate(records):
        n = rec.num_frames
        frames: list[FramePrediction] = []
        grounding: list[FramePrediction] = []
        num_frames = None
        if name == "random":
            labels = _runs(rng, n, [*rec.queries, None])
            for t in range(n):
                frames.append(FramePrediction(t, labels[t], float(rng.random()), heat=_heat(rng)))
        elif name in ("gt_random_heat", "gt_peaked", "plateau", "unnormalised"):
            for t in range(n):
                label = rec.labels.get(t)
                score = float(rng.random())
                if label is None:
                    frames.append(FramePrediction(t, None, score))
                    continue
                if name == "gt_random_heat":
                    heat = _heat(rng)
                elif name == "gt_peaked":
                    heat = _peak_heat(rng, rec, t) if t in rec.boxes else _heat(rng)
                elif name == "plateau":
                    heat = _plateau_heat((v + shift) % 4, t)
                else:
                    shape = (10, 10) if v == 2 else (7, 7)
                    heat = _heat(rng, shape) if t % 5 else np.ones(shape, np.float32)
                    heat = (heat * 10 ** rng.uniform(-3, 3)).astype(np.float32)
                frames.append(FramePrediction(t, label, score, heat=heat))
        elif name == "ties":
            gt = [rec.labels.get(t) for t in range(n)]
            noise = _runs(rng, n, [*rec.queries, None])
            for t in range(n):
                label = gt[t] if rng.random() < 0.7 else noise[t]
                frames.append(FramePrediction(t, label, 0.5, heat=_heat(rng)))
        elif name == "mixture":
            other = [q for q in all_queries if q not in rec.queries]
            if v == 2:
                continue  # a video without predictions
            num_frames = n + 7 if v == 0 else n - 40
            labels = _runs(rng, n, [*rec.queries, None, other[0], other[1]])
            shape = (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
            gt = [rec.labels.get(t) for t in range(n)]
            for t in range(n):
                r = rng.random()
                if r < 0.2:
                    continue  # missing second = background
                label = gt[t] if r < 0.6 else labels[t]
                label = _raw(label) if label is not None and rng.random() < 0.3 else label
                kind = int(rng.integers(4))
                x1, y1 = float(rng.uniform(-30, 600)), float(rng.uniform(-30, 450))
                frames.append(
                    FramePrediction(
                        t,
                        label,
                        float(rng.integers(1, 6)) / 5,  # few distinct scores: ties
                        heat=_heat(rng, shape) if kind < 2 else None,
                        point=(float(rng.uniform(-20, 660)), float(rng.uniform(-20, 500)))
                        if kind == 1
                        else None,
                        box=(x1, y1, x1 + float(rng.uniform(-5, 400)), y1 + float(rng.uniform(-5, 300)))
                        if kind == 2
                        else None,
                    )
                )
            for t in (n, n + 1, n + 5):  # past the end: ignored
                frames.append(FramePrediction(t, rec.queries[0], 0.9, point=(1.0, 1.0)))
                grounding.append(FramePrediction(t, rec.queries[0], 0.9, point=(1.0, 1.0)))
            for t in sorted(rec.boxes):
                if rng.random() < 0.4:
                    q = rec.labels[t]
                    grounding.append(
                        FramePrediction(
                            t, _raw(q) if t % 2 else q, float(rng.random()), heat=_heat(rng, shape)
                        )
                    )
                    wrong = other[t % len(other)]
                    grounding.append(FramePrediction(t, wrong, 0.99, box=(0.0, 0.0, 639.0, 479.0)))
        elif name == "frames_only":
            gt = [rec.labels.get(t) for t in range(n)]
            noise = _runs(rng, n, [*rec.queries, None])
            for t in range(n):
                if rng.random() < 0.1:
                    continue
                label = gt[t] if rng.random() < 0.5 else noise[t]
                frames.append(FramePrediction(t, label, float(rng.random()), heat=_heat(rng, (5, 5))))
        else:
            raise KeyError(name)
        preds[rec.video_id] = VideoPredictions(frames=frames, grounding=grounding, num_frames=num_frames)
    return preds


GYT_CASES = [
    ("random", 0, {}),
    ("random", 0, {"relative_tau": True}),
    ("gt_random_heat", 0, {}),
    ("gt_peaked", 0, {}),
    ("ties", 0, {}),
    ("plateau", 0, {}),  # videos: 7×7 plateaus, 1×1, 2×2
    ("plateau", 3, {}),  # videos: 10×10 uniform (= tau), 7×7 plateaus, 1×1
    ("plateau", 0, {"relative_tau": True}),
    ("unnormalised", 0, {}),
    ("mixture", 0, {}),
    ("mixture", 0, {"iou_pointing_classes": "union", "zero_area_boxes": "miss"}),
    ("frames_only", 0, {"trimmed_fallback": "same_label"}),
    ("frames_only", 0, {"trimmed_fallback": "any_label"}),
]


@pytest.mark.parametrize(
    ("name", "shift", "options"), GYT_CASES, ids=[f"{n}{s or ''}-{o}" for n, s, o in GYT_CASES]
)
def test_real_gyt_subset_matches_reference(name, shift, options):
    if not GYT_FILE.exists():
        pytest.skip(f"GroundingYouTube not found at {GYT_FILE} (STG_SHARED_DATA)")
    _check(_gyt_subset(), _gyt_set(name, shift=shift), **options)


# ------------------------------------------------------------------------------- synthetic records

POOL = ["cut onion", "add salt", "stir pot", "pour water", "fry egg", "serve dish"]
SIZE = (64, 48)


def _gt_box(rng: np.random.Generator) -> tuple[float, float, float, float]:
    w, h = SIZE
    kind = int(rng.integers(10))
    x1, y1 = float(rng.integers(0, w)), float(rng.integers(0, h))
    x2, y2 = float(rng.integers(x1, w + 10)), float(rng.integers(y1, h + 10))
    if kind == 0:  # zero area
        return (x1, y1, x1 - 1, y2) if rng.random() < 0.5 else (x1, y1, x2, y1 - 3)
    if kind == 1:  # fractional
        return (x1 + 0.5, y1 + 0.25, x2 + 0.5, y2 + 0.75)
    if kind == 2:  # outside the frame: non-zero area, no pixels
        return (w + 2.0, 5.0, w + 9.0, 20.0)
    if kind == 3:  # sticking out on the top left
        return (-5.0, -3.0, x2, y2)
    if kind == 4:  # one pixel
        return (x1, y1, x1, y1)
    return (x1, y1, x2, y2)


def _synthetic_records(seed: int, num_videos: int = 4) -> list[VideoRecord]:
    rng = np.random.default_rng(seed)
    records = []
    for v in range(num_videos):
        n = int(rng.integers(10, 26))
        queries = [POOL[i] for i in rng.choice(len(POOL), 3, replace=False)]
        labels = {t: q for t, q in enumerate(_runs(rng, n, [*queries, None, None], 6)) if q is not None}
        boxes = {t: _gt_box(rng) for t in labels if rng.random() < 0.85}
        for t in range(n):  # a few boxes on background seconds (never evaluated)
            if t not in labels and rng.random() < 0.1:
                boxes[t] = _gt_box(rng)
        if v == 0 and labels:  # one GT tube without voxels: no boxes but one of zero area
            first = min(labels)
            last = first
            while labels.get(last + 1) == labels[first]:
                last += 1
            for t in range(first, last + 1):
                boxes.pop(t, None)
            boxes[last] = (3.0, 3.0, 1.0, 9.0)
        segments = runs_to_segments(labels)
        records.append(
            VideoRecord(
                f"s{seed}v{v}",
                SIZE,
                n,
                segments,
                labels=labels,
                boxes=boxes,
                queries=query_vocabulary(segments),
                source="synthetic",
            )
        )
    return records


def _box_heat(rng: np.random.Generator, shape: tuple[int, int], box: tuple[float, ...]) -> np.ndarray:
    """A grid that is high on the cells whose centres fall in ``box``: masks near the GT, IoUs near θ."""
    w, h = SIZE
    rows, cols = shape
    ys = (np.arange(rows) + 0.5) * h / rows
    xs = (np.arange(cols) + 0.5) * w / cols
    inside = ((ys[:, None] >= box[1]) & (ys[:, None] <= box[3])) & (
        (xs[None, :] >= box[0]) & (xs[None, :] <= box[2])
    )
    low = rng.random(shape) * float(rng.choice([0.001, 0.05, 0.3]))
    return np.where(inside, 1.0 + 0.1 * rng.random(shape), low)


def _answer(
    rng: np.random.Generator,
    label: str | None,
    t: int,
    score: float,
    shape: tuple[int, int],
    near: tuple[float, ...] | None = None,
) -> FramePrediction:
    """A random spatial answer (heat / point / box / several / none); ``near``: a GT box to aim at."""
    w, h = SIZE
    kind = int(rng.integers(9))
    heat = point = box = None
    if kind in (0, 1, 5, 6, 7):
        heat = rng.random(shape) ** float(rng.choice([1, 4, 12]))  # peaky grids: tau matters
        heat = heat * 10 ** rng.uniform(-3, 3)
        if near is not None and rng.random() < 0.6:
            heat = _box_heat(rng, shape, near)
        elif rng.random() < 0.25:
            heat = np.ones(shape) * 10 ** rng.uniform(-3, 3)
        elif rng.random() < 0.2:
            heat = np.round(heat / heat.max() * 2) + 0.0  # plateaus and equal maxima
    if kind in (2, 5, 7):
        point = (float(rng.uniform(-5, w + 5)), float(rng.uniform(-5, h + 5)))
        if rng.random() < 0.5:
            point = (float(round(point[0])), float(round(point[1])))
    if kind in (3, 6, 7):
        x1, y1 = float(rng.uniform(-10, w)), float(rng.uniform(-10, h))
        box = (x1, y1, x1 + float(rng.uniform(-3, w)), y1 + float(rng.uniform(-3, h)))
        if near is not None and rng.random() < 0.6:  # the GT box, jittered
            box = tuple(c + float(rng.uniform(-4, 4)) for c in near)
        if rng.random() < 0.5:
            box = tuple(float(round(c)) for c in box)
    return FramePrediction(t, label, score, heat=heat, point=point, box=box)


def _synthetic_predictions(seed: int, records: list[VideoRecord]) -> Predictions:
    rng = np.random.default_rng(seed + 1000)
    preds: Predictions = {}
    for v, rec in enumerate(records):
        if v == 3 and seed % 2:
            continue  # no predictions for this video
        n = rec.num_frames
        gt = [rec.labels.get(t) for t in range(n)]
        noise = _runs(rng, n, [*rec.queries, None, POOL[seed % len(POOL)]], 5)
        tied = rng.random() < 0.5
        shapes = [(1, 1), (12, 16), (2, 2), (10, 10), (6, 8), (7, 7), (3, 8), (9, 4)]  # 10×10 uniform: = tau
        shape = shapes[(seed + v) % len(shapes)]
        frames, grounding = [], []
        for t in range(n + 3):
            if rng.random() < 0.15:
                continue
            label = gt[t] if t < n and rng.random() < 0.6 else noise[t % n]
            if label is not None and rng.random() < 0.3:
                label = _raw(label)
            score = float(rng.integers(1, 4)) / 4 if tied else float(rng.random())
            frames.append(_answer(rng, label, t, score, shape, rec.boxes.get(t) if t < n else None))
        for t in sorted(rec.boxes):
            if t in rec.labels and rng.random() < 0.35:
                q = rec.labels[t]
                grounding.append(
                    _answer(
                        rng, _raw(q) if rng.random() < 0.5 else q, t, float(rng.random()), shape, rec.boxes[t]
                    )
                )
            if rng.random() < 0.2:
                grounding.append(_answer(rng, POOL[t % len(POOL)] + " x", t, 0.9, shape))
        num_frames = [None, n, n + 4, max(n - 5, 0)][int(rng.integers(4))]
        preds[rec.video_id] = VideoPredictions(frames=frames, grounding=grounding, num_frames=num_frames)
    return preds


def _synthetic(seed: int) -> tuple[EvalDataset, Predictions]:
    records = _synthetic_records(seed)
    dataset = EvalDataset("gyt", records, DatasetReport("gyt", "synthetic"))
    return dataset, _synthetic_predictions(seed, records)


@pytest.mark.parametrize("seed", range(12))
def test_synthetic_matches_reference_default_options(seed):
    _check(*_synthetic(seed))


OPTION_GRID = [
    {
        "iou_pointing_classes": classes,
        "zero_area_boxes": zero,
        "trimmed_fallback": fallback,
        "relative_tau": relative,
    }
    for classes, zero, fallback, relative in itertools.product(
        ("gt", "union"), ("exclude", "miss"), ("same_label", "any_label"), (False, True)
    )
]


@pytest.mark.parametrize("options", OPTION_GRID, ids=lambda o: "-".join(str(v) for v in o.values()))
@pytest.mark.parametrize("seed", [100, 101, 102])
def test_synthetic_matches_reference_every_option(seed, options):
    _check(*_synthetic(seed), **options)


def test_heat_grids_of_different_shapes_in_one_video():
    # The protocol scores each entry's own [h, w] grid; nothing asks the grids of a video to share a shape.
    records = _synthetic_records(300, 2)
    rng = np.random.default_rng(300)
    preds = {
        rec.video_id: VideoPredictions(
            frames=[
                FramePrediction(
                    t, rec.labels.get(t), float(rng.random()), heat=_heat(rng, (1 + t % 3, 2 + t % 4))
                )
                for t in range(rec.num_frames)
            ]
        )
        for rec in records
    }
    _check(EvalDataset("gyt", records, DatasetReport("gyt", "synthetic")), preds)


@pytest.mark.parametrize("seed", [200, 201])
def test_synthetic_matches_reference_other_thresholds(seed):
    dataset, preds = _synthetic(seed)
    options = {"tau": 0.05, "spatial_iou": 0.1, "video_thresholds": (0.05, 0.25, 0.6)}
    want = reference_scores(dataset.records, preds, **options)
    got = _project(dataset, preds, **options)
    bad = _mismatches(got, want, tuple(want))
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------------------------------- MiningYouTube


def _myt_records(seed: int, num_videos: int) -> list[VideoRecord]:
    """Tiny MYT videos; every step keeps at least one GT second (see the empty-step test below)."""
    rng = np.random.default_rng(seed)
    records: list[VideoRecord] = []
    while len(records) < num_videos:
        n = int(rng.integers(6, 10))
        num_steps = int(rng.integers(1, 4))
        cuts = sorted(rng.choice(np.arange(n + 1), 2 * num_steps, replace=True).tolist())
        segments = []
        for i in range(num_steps):
            start, end = cuts[2 * i], max(cuts[2 * i + 1], cuts[2 * i] + 1)
            if i == 1 and rng.random() < 0.5:
                start -= 1.5  # overlaps the previous step: the later segment wins
            segments.append(Segment(f"Step_{i}", f"step {i}", float(start), float(end)))
        rec = VideoRecord(
            f"m{seed}v{len(records)}", (64, 48), n, segments, queries=[s.query for s in segments]
        )
        if set(step_truth(rec)) >= set(range(num_steps)):
            records.append(rec)
    return records


def _myt_dataset(records: list[VideoRecord]) -> EvalDataset:
    return EvalDataset("myt", records, DatasetReport("myt", "synthetic"))


@pytest.mark.parametrize("seed", range(6))
def test_myt_random_step_scores_match_exhaustive_reference(seed):
    records = _myt_records(seed, 3)
    rng = np.random.default_rng(seed + 50)
    preds = {
        r.video_id: VideoPredictions(step_scores=rng.random((r.num_frames, len(r.segments)))) for r in records
    }
    want = reference_temporal(records, preds, background_score=0.5)
    got = _project(_myt_dataset(records), preds, background_score=0.5)
    bad = _mismatches(got, want, TEMPORAL_KEYS)
    assert not bad, "\n".join(bad)


def test_myt_steps_without_gt_seconds_match_reference():
    # Step 0 is wholly overridden by step 1, step 2 starts after the video: neither owns a GT second, so
    # neither enters the means (the protocol averages over the steps that own one), though both are aligned.
    rec = VideoRecord(
        "e",
        (64, 48),
        6,
        [Segment("x", "x", 1, 2), Segment("y", "y", 1, 3), Segment("z", "z", 7, 9)],
        queries=["x", "y", "z"],
    )
    sim = np.random.default_rng(0).random((6, 3))  # aligns y at 1–3: IoU_y = 2/3
    preds = {"e": VideoPredictions(step_scores=sim)}
    want = reference_temporal([rec], preds)
    got = _project(_myt_dataset([rec]), preds)
    bad = _mismatches(got, want, TEMPORAL_KEYS)
    assert not bad, "\n".join(bad)


def _tied_predictions(seed: int, rec: VideoRecord) -> VideoPredictions:
    rng = np.random.default_rng(seed + 77)
    if seed % 2:  # integer step scores: many tied paths
        return VideoPredictions(
            step_scores=rng.integers(0, 2, (rec.num_frames, len(rec.segments))).astype(float)
        )
    queries = [s.label for s in rec.segments] + [None]  # raw labels: compared after normalisation
    labels = _runs(rng, rec.num_frames, queries, 3)
    return VideoPredictions(
        frames=[FramePrediction(t, q) for t, q in enumerate(labels) if rng.random() < 0.9]
    )


@pytest.mark.parametrize("seed", range(8))
def test_myt_tied_inputs_reach_the_optimum(seed):
    from stg_lightning.eval.viterbi import viterbi_align

    (rec,) = _myt_records(seed + 10, 1)
    preds = {rec.video_id: _tied_predictions(seed, rec)}
    sim = similarity(rec, preds[rec.video_id])
    _, labelings = optimal_alignments(sim, 0.5)
    best = optimal_alignment_score(sim, 0.5)
    path = [int(s) for s in viterbi_align(sim, 0.5).tolist()]
    assert is_valid_alignment(path, len(rec.segments)), path
    assert alignment_score(path, sim, 0.5) == pytest.approx(best, abs=1e-9)
    # The scorer's metrics are those of one of the optimal alignments.
    got = _project(_myt_dataset([rec]), preds, background_score=0.5)
    candidates = [temporal_metrics([step_truth(rec)], [a]) for a in labelings]
    assert any(not _mismatches(got, c, TEMPORAL_KEYS) for c in candidates), (
        {k: got.get(k) for k in TEMPORAL_KEYS},
        candidates[:5],
    )
