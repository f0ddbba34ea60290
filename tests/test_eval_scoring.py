"""Predictions file I/O and score_predictions: perturbations with known answers (oracles: test_eval_baselines)."""

import numpy as np
import pytest
from eval_fixtures import tiny_gyt

from stg_lightning.eval.loaders import load_gyt, load_myt, shared_data_root
from stg_lightning.eval.predictions import (
    FramePrediction,
    PredictionsError,
    VideoPredictions,
    read_predictions,
    write_predictions,
)
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import ScoringConfig, score_predictions, step_targets

GYT_FILE = shared_data_root() / "groundingyoutube" / "GoundingYouTubeBox.json"
MYT_DIR = shared_data_root() / "miningyoutube" / "annotations"


def _sample_predictions() -> dict[str, VideoPredictions]:
    return {
        "v1": VideoPredictions(
            frames=[
                FramePrediction(0, "crack eggs", 0.7, heat=np.arange(6, dtype=np.float32).reshape(2, 3)),
                FramePrediction(1, None, 0.1),
                FramePrediction(2, "add salt", 0.9, point=(3.0, 4.0), box=(1.0, 2.0, 5.0, 6.0)),
            ],
            grounding=[FramePrediction(2, "crack eggs", 0.4, point=(1.0, 1.0))],
            num_frames=5,
            step_scores=np.eye(5, 2),
        ),
        "v2": VideoPredictions(),
    }


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_predictions_round_trip(tmp_path, suffix):
    preds = _sample_predictions()
    write_predictions(preds, tmp_path / f"p{suffix}")
    back = read_predictions(tmp_path / f"p{suffix}")
    assert back.keys() == preds.keys()
    for vid, video in preds.items():
        assert back[vid].num_frames == video.num_frames
        for part in ("frames", "grounding"):
            for a, b in zip(getattr(back[vid], part), getattr(video, part), strict=True):
                assert (a.t, a.label, a.score, a.point, a.box) == (
                    b.t,
                    b.label,
                    pytest.approx(b.score),
                    b.point,
                    b.box,
                )
                assert (a.heat is None) == (b.heat is None)
                if a.heat is not None:
                    np.testing.assert_allclose(a.heat, b.heat)
    np.testing.assert_allclose(back["v1"].step_scores, np.eye(5, 2))


def test_predictions_validation_names_file_video_key(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        '{"format": "stg-predictions", "version": 1, "videos": {"v1": {"frames": '
        '[{"t": 0, "label": "x", "score": 1, "point": [1, 2, 3]}]}}}'
    )
    with pytest.raises(PredictionsError, match=r"bad.json: video 'v1', frames\[0\]: key 'point' must be 2"):
        read_predictions(path)
    path.write_text('{"videos": {}}')
    with pytest.raises(PredictionsError, match="not a predictions file"):
        read_predictions(path)


def test_score_predictions_tiny_hand_computed():
    # t=1 points inside its box, t=2 points outside (a miss), t=3 is a false-positive second.
    preds = {
        "v1": VideoPredictions(
            frames=[
                FramePrediction(1, "A", 0.8, point=(2, 2), box=(0, 0, 4, 4)),
                FramePrediction(2, "a", 0.6, point=(1, 1), box=(10, 0, 19, 9)),
                FramePrediction(3, "a", 0.4, point=(1, 1), box=(10, 0, 19, 9)),
                FramePrediction(9, "a", 0.4),  # past the video: ignored
            ]
        )
    }
    out = score_predictions(tiny_gyt(), preds)
    assert out["pointing"] == pytest.approx(1 / 2)
    assert out["iou_pointing"] == pytest.approx(1 / 3)  # hits {1} over P ∪ G = {1, 2, 3}
    assert out["spatial_map"] == pytest.approx(1.0)  # both masks equal their boxes
    # One tube t1–3: voxels 25 + 100 + 100, GT 25 + 100 → IoU 125 / 225 ≥ .5 → AP 1 everywhere.
    assert out["video_map"] == pytest.approx(1.0)
    assert out["ignored_predictions"] == 1
    with pytest.raises(PredictionsError, match="'nope'"):
        score_predictions(tiny_gyt(), {"nope": VideoPredictions()})
    lenient = score_predictions(tiny_gyt(), {"nope": VideoPredictions()}, ScoringConfig(lenient=True))
    assert lenient["unknown_videos"] == 1 and lenient["pointing"] == 0.0


@pytest.fixture(scope="module")
def gyt():
    if not GYT_FILE.exists():
        pytest.skip(f"GroundingYouTube not found at {GYT_FILE} (STG_SHARED_DATA)")
    return load_gyt(GYT_FILE)


def test_gyt_boxes_shifted_by_their_width_never_point(gyt):
    preds = {}
    for rec in gyt.records:
        # No point given: pointing uses the centre of the box shifted right by its own (inclusive) width.
        shifted = {
            t: (x1 + (x2 - x1 + 1), y1, x2 + (x2 - x1 + 1), y2) for t, (x1, y1, x2, y2) in rec.boxes.items()
        }
        preds[rec.video_id] = VideoPredictions(
            [FramePrediction(t, rec.labels[t], box=b) for t, b in shifted.items()]
        )
    out = score_predictions(gyt, preds, metrics=("pointing",))
    assert out["pointing"] == 0.0


@pytest.fixture(scope="module")
def myt():
    if not MYT_DIR.exists():
        pytest.skip(f"MiningYouTube not found at {MYT_DIR} (STG_SHARED_DATA)")
    return load_myt(MYT_DIR)


def _shifted_step_scores(dataset: EvalDataset, k: int) -> dict[str, VideoPredictions]:
    preds = {}
    for rec in dataset.records:
        gt = step_targets(rec, rec.num_frames)
        scores = np.zeros((rec.num_frames + k, len(rec.segments)))
        t = np.nonzero(gt >= 0)[0]
        scores[t + k, gt[t]] = 1.0
        preds[rec.video_id] = VideoPredictions(num_frames=rec.num_frames + k, step_scores=scores)
    return preds


def test_myt_labels_shifted_match_brute_force(myt):
    k = 3
    # The file is k seconds longer than the annotation: the scored video grows by k background seconds.
    subset = EvalDataset("myt", myt.records[:40], myt.report)
    out = score_predictions(subset, _shifted_step_scores(subset, k))
    per_video = []
    for rec in subset.records:
        gt = step_targets(rec, rec.num_frames).tolist()
        ious = []
        for i in sorted(set(gt) - {-1}):
            g = {t for t, s in enumerate(gt) if s == i}
            d = {t + k for t in g}
            ious.append(len(g & d) / len(g | d))
        per_video.append(sum(ious) / len(ious))
    assert out["temporal_iou"] == pytest.approx(sum(per_video) / len(per_video), abs=1e-6)


def test_a_predictions_file_never_cuts_the_ground_truth():
    # Perfect answers for seconds 0–1 only, in a file that says the video has 2 seconds: second 2 of
    # step "a" stays in the GT (missed), so IoU+Pointing is 1/2, not 1, and the mismatch is counted.
    ds = tiny_gyt()
    preds = {"v1": VideoPredictions(frames=[FramePrediction(1, "a", 1.0, point=(2.0, 2.0))], num_frames=2)}
    out = score_predictions(ds, preds)
    assert out["iou_pointing"] == pytest.approx(1 / 2)
    assert out["pointing"] == pytest.approx(1 / 2)
    assert out["length_mismatch_videos"] == 1
    # Entries past the annotated length are ignored and counted, never scored.
    preds["v1"].frames.append(FramePrediction(7, "a", 1.0, point=(2.0, 2.0)))
    assert score_predictions(ds, preds)["ignored_predictions"] == 1


def test_unanswered_trimmed_queries_are_counted_and_the_fallback_rule_is_an_option():
    # Second 1 predicts "b" with heat peaked on the GT box of "a"; no grounding entry answers (1, "a").
    ds = tiny_gyt()
    heat = np.zeros((2, 4), dtype=np.float32)
    heat[0, 0] = 1.0  # top-left cell: inside the t=1 box
    preds = {"v1": VideoPredictions(frames=[FramePrediction(1, "b", 0.9, heat=heat)])}
    same = score_predictions(ds, preds)
    assert (same["pointing"], same["trimmed_seconds"], same["trimmed_unanswered"]) == (0.0, 2, 2)
    anyl = score_predictions(ds, preds, ScoringConfig(trimmed_fallback="any_label"))
    assert (anyl["pointing"], anyl["trimmed_unanswered"]) == (0.5, 1)
    with pytest.raises(ValueError, match="trimmed_fallback"):
        ScoringConfig(trimmed_fallback="nearest")


def test_iou_pointing_class_set_option():
    # "a" predicted on both of its seconds (points inside the boxes), "b" (absent from the GT) at second 3.
    ds = tiny_gyt()
    frames = [
        FramePrediction(1, "a", 1.0, point=(1.0, 1.0)),
        FramePrediction(2, "a", 1.0, point=(15.0, 5.0)),
        FramePrediction(3, "b", 1.0),
    ]
    preds = {"v1": VideoPredictions(frames=frames)}
    assert score_predictions(ds, preds)["iou_pointing"] == 1.0  # GT classes: {a}
    union = score_predictions(ds, preds, ScoringConfig(iou_pointing_classes="union"))
    assert union["iou_pointing"] == pytest.approx((1.0 + 0.0) / 2)  # {a, b}: b adds a 0


def test_negative_heat_is_refused_naming_the_entry(tmp_path):
    preds = {"v1": VideoPredictions(frames=[FramePrediction(0, "a", 1.0, heat=np.array([[0.5, -0.1]]))])}
    with pytest.raises(PredictionsError, match=r"'v1', frames\[0\]: key 'heat' must be non-negative"):
        write_predictions(preds, tmp_path / "p.json")


def test_tau_sweep_repeats_the_mask_metrics_at_each_threshold():
    # A 1×2 heat grid [0.7, 0.3] on a 20×10 frame: the mask is the whole frame at τ ≤ 0.3 and the left part
    # (values ≥ τ) above; the sweep's numbers equal separate runs at those τ.
    ds = tiny_gyt()
    heat = np.array([[0.7, 0.3]], dtype=np.float32)
    preds = {"v1": VideoPredictions(frames=[FramePrediction(t, "a", 0.8, heat=heat) for t in (1, 2)])}
    out = score_predictions(ds, preds, ScoringConfig(tau_sweep=(0.01, 0.5)))
    for tau in (0.01, 0.5):
        alone = score_predictions(ds, preds, ScoringConfig(tau=tau))
        assert out[f"video_map|tau={tau:g}"] == alone["video_map"]
        assert out[f"spatial_iou|tau={tau:g}"] == alone["spatial_iou"]
    assert out["spatial_iou|tau=0.01"] != out["spatial_iou|tau=0.5"]
    assert "pointing|tau=0.5" not in out


def test_a_longer_file_adds_background_seconds():
    # The file saw 6 seconds of a video annotated up to second 3: "a" predicted at second 5 is a false
    # positive of "a" (IoU+Pointing 2/3: hits at 1 and 2 over P ∪ G = {1, 2, 5}).
    ds = tiny_gyt()
    frames = [
        FramePrediction(t, "a", 1.0, point=p) for t, p in ((1, (1.0, 1.0)), (2, (15.0, 5.0)), (5, (1.0, 1.0)))
    ]
    out = score_predictions(ds, {"v1": VideoPredictions(frames=frames, num_frames=6)})
    assert out["iou_pointing"] == pytest.approx(2 / 3)
    assert (out["length_mismatch_videos"], out["ignored_predictions"]) == (1, 0)


def test_object_choice_reads_the_trimmed_answers_and_needs_the_object_boxes():
    # t=1 points at its GT box, t=2 at (1, 1): inside the other object's box at t=2 → one named, one other.
    preds = {
        "v1": VideoPredictions(
            frames=[FramePrediction(1, "a", 0.8, point=(2, 2)), FramePrediction(2, "a", 0.6, point=(1, 1))]
        )
    }
    boxes = {"v1": {1: [(0, 0, 4, 4), (10, 0, 14, 4)], 2: [(10, 0, 19, 9), (0, 0, 4, 4)]}}
    out = score_predictions(tiny_gyt(), preds, metrics=("object_choice",), object_boxes=boxes)
    assert (out["point_on_named"], out["point_on_other"], out["named_share"]) == (0.5, 0.5, 0.5)
    assert out["trimmed_seconds"] == 2
    with pytest.raises(ValueError, match="object_boxes"):
        score_predictions(tiny_gyt(), preds, metrics=("object_choice",))
