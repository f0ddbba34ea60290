"""Report support: text-blind baselines with known answers, figures as readable PNGs, report.md."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from eval_fixtures import write_tiny_split
from PIL import Image

from stg_lightning.errors import StgUserError
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.predictions import validate_predictions
from stg_lightning.eval.records import DatasetReport, EvalDataset, Segment, VideoRecord
from stg_lightning.eval.scoring import oracle_predictions, score_predictions
from stg_lightning.report.baselines import (
    CHANCE_BY_AREA,
    MOTION_ENERGY,
    RANDOM_OBJECT,
    UNIFORM_SPLIT,
    BaselineConfig,
    box_filter,
    chance_by_area,
    motion_energy_point,
    motion_energy_predictions,
    random_object_predictions,
    random_point_predictions,
    scene_object_boxes,
    text_blind_rows,
)
from stg_lightning.report.figures import (
    OverlaySample,
    overlay_samples,
    plot_heatmap_overlays,
    plot_timelines,
    plot_training_curves,
)
from stg_lightning.report.markdown import MISSING, write_report


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_split(tmp_path_factory.mktemp("synth"))


def _gyt(root: Path) -> EvalDataset:
    return load_dataset("gyt", root / "eval" / "gyt" / "GoundingYouTubeBox.json")


def _hand_dataset() -> EvalDataset:
    """A 10×10 frame with a 5×5 box, a box half outside the frame (2×2 inside) and a zero-area box."""
    labels = {0: "cut", 1: "cut", 2: "cut"}
    boxes = {0: (0.0, 0.0, 4.0, 4.0), 1: (8.0, 8.0, 12.0, 12.0), 2: (5.0, 5.0, 4.0, 4.0)}
    rec = VideoRecord("v", (10, 10), 3, [Segment("cut", "cut", 0, 3)], labels, boxes, ["cut"])
    return EvalDataset("gyt", [rec], DatasetReport("gyt", "<hand>"))


def _assert_png(path: Path, min_side: int = 200) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert min(pixels.shape[:2]) >= min_side
    assert pixels.std() > 0  # not blank


# ------------------------------------------------------------------------------------------------ baselines
def test_chance_by_area_is_the_mean_box_fraction_and_random_points_sample_it():
    ds = _hand_dataset()
    assert chance_by_area(ds) == pytest.approx((25 / 100 + 4 / 100) / 2)  # zero-area box excluded
    scores = []
    for seed in range(100):
        preds = random_point_predictions(ds, seed)
        validate_predictions(preds)
        points = [p.point for p in preds["v"].grounding]
        assert all(x == int(x) and 0 <= x < 10 and y == int(y) and 0 <= y < 10 for x, y in points)
        scores.append(score_predictions(ds, preds, metrics=("pointing",))["pointing"])
    assert np.mean(scores) == pytest.approx(0.145, abs=0.06)


def test_box_filter_matches_a_brute_force_mean_over_windows_cut_at_the_border():
    image = np.random.default_rng(0).random((7, 9))
    expected = np.array(
        [[image[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].mean() for x in range(9)] for y in range(7)]
    )
    np.testing.assert_allclose(box_filter(image, 3), expected)
    np.testing.assert_allclose(box_filter(image, 1), image)


def test_motion_energy_points_at_the_changed_block_and_takes_the_first_maximum():
    previous = np.zeros((16, 16, 3), np.uint8)
    current = previous.copy()
    current[10:12, 4:6] = 200
    assert motion_energy_point(previous, current, kernel=1) == (4.0, 10.0)  # first max, row-major
    x, y = motion_energy_point(previous, current, kernel=3)
    assert 4 <= x <= 5 and 10 <= y <= 11


def test_motion_energy_from_a_frame_folder_pairs_t0_with_t1_and_rescales_points(tmp_path: Path):
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    frames[1:, 2, 3] = 255  # appears at 1 s
    frames[2, 12, 10] = 255  # appears at 2 s
    (tmp_path / "v").mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / "v" / f"{t}.png")
    labels = dict.fromkeys(range(3), "cut")
    boxes = dict.fromkeys(range(3), (0.0, 0.0, 31.0, 31.0))
    rec = VideoRecord("v", (32, 32), 3, [Segment("cut", "cut", 0, 3)], labels, boxes, ["cut"])
    ds = EvalDataset("gyt", [rec], DatasetReport("gyt", "<hand>"))
    preds = motion_energy_predictions(ds, tmp_path, BaselineConfig(smooth_fraction=0.0))
    # Decoded at 16 px, scored at 32 px: pixel x → (x + 0.5) · 2 − 0.5.
    assert [p.point for p in preds["v"].grounding] == [(6.5, 4.5), (6.5, 4.5), (20.5, 24.5)]


def test_random_object_boxes_hold_the_gt_box_and_sometimes_pick_it(synth: Path):
    ds = _gyt(synth)
    boxes = scene_object_boxes(ds)  # raises if a GT box is not re-rendered
    for rec in ds.records:
        for t, box in rec.boxes.items():
            assert len(boxes[rec.video_id][t]) >= 2 and tuple(map(int, box)) in boxes[rec.video_id][t]
    hits = []
    for seed in range(3):
        preds = random_object_predictions(ds, boxes, seed)
        validate_predictions(preds)
        score = score_predictions(ds, preds, metrics=("pointing",))["pointing"]
        assert 0 <= score <= 1
        hits.append(score)
    assert max(hits) > 0


def test_random_object_refuses_a_meta_json_of_other_annotations(synth: Path, tmp_path: Path):
    meta = json.loads((synth / "meta.json").read_text())
    meta["config"]["seed"] += 1
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StgUserError, match="does not reproduce"):
        scene_object_boxes(_gyt(synth), tmp_path / "meta.json")


def test_motion_energy_points_lie_in_the_frame_and_score(synth: Path):
    ds = _gyt(synth)
    preds = motion_energy_predictions(ds, synth / "eval" / "gyt" / "videos")
    validate_predictions(preds)
    w, h = ds.records[0].frame_size
    points = [p.point for v in preds.values() for p in v.grounding]
    assert len(points) == sum(len(r.boxes) for r in ds.records)
    assert all(0 <= x < w and 0 <= y < h for x, y in points)
    assert 0 <= score_predictions(ds, preds, metrics=("pointing",))["pointing"] <= 1


def test_motion_energy_names_a_missing_video(synth: Path, tmp_path: Path):
    with pytest.raises(StgUserError, match="no video for"):
        motion_energy_predictions(_gyt(synth), tmp_path)


def test_text_blind_rows_per_dataset(synth: Path):
    rows = text_blind_rows(_gyt(synth), synth / "eval" / "gyt" / "videos")
    assert list(rows) == [CHANCE_BY_AREA, RANDOM_OBJECT, MOTION_ENERGY]
    assert all(0 <= row["pointing"] <= 1 and row["seconds"] >= 0 for row in rows.values())
    myt = load_dataset("myt", synth / "eval" / "myt" / "annotations")
    assert list(text_blind_rows(myt)) == [UNIFORM_SPLIT]


def test_random_object_needs_synthetic_ids(synth: Path, tmp_path: Path):
    shutil.copy(synth / "meta.json", tmp_path / "meta.json")
    with pytest.raises(StgUserError, match="not a synthetic id"):
        scene_object_boxes(_hand_dataset(), tmp_path / "meta.json")


# -------------------------------------------------------------------------------------------------- figures
def test_training_curves_png(tmp_path: Path):
    header = "epoch,step,train/loss,train/loss_global,train/loss_local,val/loss\n"
    rows = "".join(f"0,{s},{3 - 0.1 * s},{1.5 - 0.05 * s},{1.5 - 0.05 * s},\n" for s in range(10))
    csv = tmp_path / "metrics.csv"
    csv.write_text(header + rows + "0,9,,,,2.5\n1,19,,,,2.2\n")
    _assert_png(plot_training_curves({"run a": csv}, tmp_path / "curves.png"))
    with pytest.raises(StgUserError, match=r"metrics\.csv not found"):
        plot_training_curves({"run a": tmp_path / "missing.csv"}, tmp_path / "x.png")


def test_heatmap_overlays_png(tmp_path: Path):
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[8:16, 8:16] = 255
    heat = np.zeros((4, 4), np.float32)
    heat[1, 1] = 1.0
    samples = [
        OverlaySample(
            frame=frame, heat=heat, point=(12.0, 12.0), gt_box=(8, 8, 15, 15), query="cut x", caption="a"
        ),
        OverlaySample(frame=frame, heat=None, point=None, gt_box=(0, 0, 3, 3), query="stir y", caption="b"),
    ]
    _assert_png(plot_heatmap_overlays(samples, tmp_path / "overlay.png"))


def test_overlay_samples_read_frames_and_the_scored_point(synth: Path, tmp_path: Path):
    ds = _gyt(synth)
    samples = overlay_samples(ds, oracle_predictions(ds), synth / "eval" / "gyt" / "videos", n=3, seed=0)
    assert len(samples) == 3
    w, h = ds.records[0].frame_size
    for s in samples:
        assert s["frame"].shape == (h, w, 3) and s["frame"].dtype == np.uint8
        x1, y1, x2, y2 = s["gt_box"]
        assert s["point"] == ((x1 + x2) / 2, (y1 + y2) / 2)  # the oracle points at the box centre
    _assert_png(plot_heatmap_overlays(samples, tmp_path / "overlay.png"))


def test_timelines_png(synth: Path, tmp_path: Path):
    ds = _gyt(synth)
    ids = [r.video_id for r in ds.records]
    _assert_png(plot_timelines(ds, oracle_predictions(ds), ids, tmp_path / "timeline.png"))
    myt = load_dataset("myt", synth / "eval" / "myt" / "annotations")
    ids = [r.video_id for r in myt.records]
    _assert_png(plot_timelines(myt, oracle_predictions(myt), ids, tmp_path / "aligned.png", aligned=True))
    with pytest.raises(StgUserError, match="not in gyt"):
        plot_timelines(ds, {}, ["nope"], tmp_path / "x.png")


# ---------------------------------------------------------------------------------------------- report.md
def test_write_report_has_the_table_figures_and_notes(tmp_path: Path):
    figure = tmp_path / "figs" / "curves.png"
    figure.parent.mkdir()
    Image.new("RGB", (8, 8), "red").save(figure)
    rows = [
        {"name": "trained model", "pointing": 0.61234, "temporal_iou": 0.4},
        {"name": "chance by area", "pointing": 0.09},
        {"name": "oracle", "pointing": 1.0, "temporal_iou": float("nan")},
    ]
    path = write_report(
        tmp_path / "out", "Demo", rows, ["pointing", "temporal_iou"], {"Training curves": figure}, ["seed 0"]
    )
    text = path.read_text()
    assert path.name == "report.md"
    assert "|  | pointing | temporal_iou |" in text
    assert "| trained model | 0.612 | 0.400 |" in text
    assert f"| chance by area | 0.090 | {MISSING} |" in text
    assert f"| oracle | 1.000 | {MISSING} |" in text
    assert "![Training curves](../figs/curves.png)" in text
    assert "- seed 0" in text
    with pytest.raises(StgUserError, match="does not exist"):
        write_report(tmp_path / "out", "Demo", rows, ["pointing"], {"gone": tmp_path / "gone.png"}, [])
