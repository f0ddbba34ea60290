from dataclasses import replace

import numpy as np
import pytest
from eval_fixtures import tiny_gyt

from stg_lightning.eval.baselines.oracle import oracle_predictions
from stg_lightning.eval.combine import combine_predictions, main, unplaced
from stg_lightning.eval.predictions import (
    FramePrediction,
    PredictionsError,
    VideoPredictions,
    read_predictions,
    write_predictions,
)
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import score_predictions


def _oracle_temporal(dataset: EvalDataset):
    """GT labels with distinct scores (t=1 ranks first), so spatial mAP depends on whose scores are used."""
    preds = oracle_predictions(dataset)
    preds["v1"].frames = [replace(p, score={1: 0.9, 2: 0.6}[p.t]) for p in preds["v1"].frames]
    return preds


def _spatial_model():
    """Wrong temporal answers, box shifted right by its width at t=1, exact box at t=2 (grounding entry)."""
    return {
        "v1": VideoPredictions(
            frames=[
                FramePrediction(0, "a", 0.3, box=(0, 0, 9, 9), point=(4, 4)),
                FramePrediction(1, "A", 0.2, box=(5, 0, 9, 4), point=(7, 2)),
                FramePrediction(2, None, 0.1),
                FramePrediction(3, "a", 0.7, box=(0, 0, 3, 3), point=(1, 1)),
            ],
            grounding=[FramePrediction(2, "a", 0.8, box=(10, 0, 19, 9), point=(14.5, 4.5))],
            num_frames=4,
        )
    }


def test_known_answer_scores():
    dataset = tiny_gyt()
    combined = combine_predictions(_oracle_temporal(dataset), _spatial_model())
    out = score_predictions(dataset, combined)
    assert out["pointing"] == pytest.approx(1 / 2)  # t=1 points at (7, 2), outside (0..4); t=2 hits
    assert out["iou_pointing"] == pytest.approx(1 / 2)  # A's P = G = {1, 2}; only t=2 is a hit
    # Two GT boxes; ranked by A's scores the t=1 miss (0.9) comes before the t=2 hit (0.6): precision 1/2
    # at recall 1/2 → AP 1/4 (B's scores 0.2 / 0.8 would rank the hit first: AP 1/2).
    assert out["spatial_map"] == pytest.approx(1 / 4)
    # One tube t=1–2: voxels 25 (disjoint from GT) + 100 (= GT) → IoU 100 / 150 ≥ 0.5 at every threshold.
    assert out["video_map"] == pytest.approx(1.0)
    # The oracle's own boxes would be perfect: the drop comes from B's place, not A's time.
    assert score_predictions(dataset, _oracle_temporal(dataset))["pointing"] == 1.0


def test_labels_from_temporal_places_from_spatial():
    dataset = tiny_gyt()
    temporal = _oracle_temporal(dataset)
    video = combine_predictions(temporal, _spatial_model())["v1"]
    assert [(p.t, p.label, p.score, p.box) for p in video.frames] == [
        (1, "a", 0.9, (5, 0, 9, 4)),
        (2, "a", 0.6, (10, 0, 19, 9)),
    ]
    # B's other answers stay available to trimmed metrics, with B's score since A never scored them.
    assert [(p.t, p.label, p.score, p.box) for p in video.grounding] == [
        (0, "a", 0.3, (0, 0, 9, 9)),
        (3, "a", 0.7, (0, 0, 3, 3)),
    ]
    assert video.num_frames == temporal["v1"].num_frames
    np.testing.assert_array_equal(video.step_scores, temporal["v1"].step_scores)


def test_pair_without_spatial_answer_has_no_place():
    temporal = {"v": VideoPredictions([FramePrediction(0, "cut", 0.9, box=(0, 0, 1, 1))])}
    spatial = {"v": VideoPredictions([FramePrediction(0, "stir", 0.9, heat=np.ones((2, 2)))])}
    combined = combine_predictions(temporal, spatial)
    frame = combined["v"].frames[0]
    assert (frame.label, frame.heat, frame.point, frame.box) == ("cut", None, None, None)
    assert unplaced(combined) == 1  # the "stir" grounding entry keeps B's heat


def test_mismatched_videos_fail_naming_them():
    temporal = {"x": VideoPredictions(), "y": VideoPredictions(num_frames=5)}
    with pytest.raises(PredictionsError, match=r"only in the temporal.*'x'.*only in the spatial.*'z'"):
        combine_predictions(temporal, {"y": VideoPredictions(), "z": VideoPredictions()})
    with pytest.raises(PredictionsError, match=r"'y'.*5 seconds.*6"):
        combine_predictions({"y": temporal["y"]}, {"y": VideoPredictions(num_frames=6)})


def test_cli_round_trip(tmp_path, capsys):
    dataset = tiny_gyt()
    a, b, out = tmp_path / "a.json", tmp_path / "b.npz", tmp_path / "c.json"
    write_predictions(_oracle_temporal(dataset), a)
    write_predictions(_spatial_model(), b)
    assert main(["--temporal", str(a), "--spatial", str(b), "--out", str(out)]) == 0
    assert score_predictions(dataset, read_predictions(out))["pointing"] == pytest.approx(1 / 2)
    write_predictions({"other": VideoPredictions()}, b)
    assert main(["--temporal", str(a), "--spatial", str(b), "--out", str(out)]) == 2
    assert "'other'" in capsys.readouterr().err
