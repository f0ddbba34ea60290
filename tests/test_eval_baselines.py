"""Reference predictors (eval/baselines/): oracle, uniform split, chance, random object, motion energy, rows."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from eval_fixtures import tiny_split_config, write_tiny_split
from PIL import Image

from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.chance import chance_by_area, random_point_predictions
from stg_lightning.eval.baselines.motion_energy import (
    box_filter,
    motion_energy_point,
    motion_energy_predictions,
)
from stg_lightning.eval.baselines.oracle import oracle_predictions
from stg_lightning.eval.baselines.pointing import pointing_seconds
from stg_lightning.eval.baselines.random_object import (
    OBJECTS_FILE,
    load_object_boxes,
    objects_file,
    random_object_predictions,
)
from stg_lightning.eval.baselines.rows import (
    CHANCE_BY_AREA,
    MOTION_ENERGY,
    RANDOM_OBJECT,
    UNIFORM_SPLIT,
    text_blind_rows,
    uniform_split_row,
)
from stg_lightning.eval.baselines.uniform_split import uniform_split, uniform_split_predictions
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.loaders import load_gyt, load_myt, shared_data_root
from stg_lightning.eval.metrics import TemporalAlignment
from stg_lightning.eval.predictions import validate_predictions
from stg_lightning.eval.records import DatasetReport, EvalDataset, Segment, VideoRecord
from stg_lightning.eval.scoring import ScoringConfig, score_predictions, step_classes, step_targets
from stg_lightning.synth import writer
from stg_lightning.synth.scene import Scene
from stg_lightning.synth.script import VideoPlan, build_vocabulary

GYT_FILE = shared_data_root() / "groundingyoutube" / "GoundingYouTubeBox.json"
MYT_DIR = shared_data_root() / "miningyoutube" / "annotations"
SPATIAL_SPLITS = {"gyt": "GoundingYouTubeBox.json", "yc_inter": ""}


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


def _myt_record() -> EvalDataset:
    """6 seconds: step a at 0–1, background 2–3, step b at 4–5."""
    segments = [Segment("a", "a", 0, 2), Segment("b", "b", 4, 6)]
    labels = {0: "a", 1: "a", 4: "b", 5: "b"}
    rec = VideoRecord("m", (10, 10), 6, segments, labels, {}, ["a", "b"])
    return EvalDataset("myt", [rec], DatasetReport("myt", "<hand>"))


# ------------------------------------------------------------------------------------------------- oracle
@pytest.fixture(scope="module")
def gyt():
    if not GYT_FILE.exists():
        pytest.skip(f"GroundingYouTube not found at {GYT_FILE} (STG_SHARED_DATA)")
    return load_gyt(GYT_FILE)


@pytest.fixture(scope="module")
def myt():
    if not MYT_DIR.exists():
        pytest.skip(f"MiningYouTube not found at {MYT_DIR} (STG_SHARED_DATA)")
    return load_myt(MYT_DIR)


def test_oracle_predictions_are_the_ground_truth():
    ds = _myt_record()
    video = oracle_predictions(ds)["m"]
    assert [(p.t, p.label) for p in video.frames] == [(0, "a"), (1, "a"), (4, "b"), (5, "b")]
    assert video.step_scores.tolist() == [[1, 0], [1, 0], [0, 0], [0, 0], [0, 1], [0, 1]]
    out = score_predictions(ds, oracle_predictions(ds))
    assert (out["temporal_iou"], out["temporal_iod"], out["temporal_mof"]) == (1.0, 1.0, 1.0)


@pytest.mark.slow
def test_gyt_oracle_is_perfect(gyt):
    out = score_predictions(gyt, oracle_predictions(gyt))
    for key in (
        "pointing",
        "iou_pointing",
        "spatial_map",
        "video_map",
        *(f"video_map@{t}" for t in (0.1, 0.2, 0.3, 0.4, 0.5)),
    ):
        assert out[key] == 1.0, key


def test_myt_oracle_alignment_is_perfect(myt):
    out = score_predictions(myt, oracle_predictions(myt))
    assert (out["temporal_iou"], out["temporal_iod"], out["temporal_mof"]) == (1.0, 1.0, 1.0)
    baseline = uniform_split_row(myt)
    assert 0 < baseline["temporal_iou"] < 0.5


# ------------------------------------------------------------------------------------------ uniform split
def test_uniform_split_cuts_the_frames_into_equal_consecutive_parts():
    assert uniform_split(7, 3).tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert uniform_split(4, 0).tolist() == [-1, -1, -1, -1]


def test_uniform_split_predictions_score_as_the_split_itself():
    ds = _myt_record()
    preds = uniform_split_predictions(ds)
    validate_predictions(preds)
    video = preds["m"]
    assert [p.label for p in video.frames] == ["a", "a", "a", "b", "b", "b"]
    assert video.num_frames == 6 and video.step_scores.tolist() == [[1, 0]] * 3 + [[0, 1]] * 3
    # Split [a a a b b b] against GT [a a - - b b]: each step IoU 2/3 (≥ every threshold), IoD 2/3;
    # 4 of 6 seconds right; the classes are the steps, so the per-class numbers are the same.
    at = {f"temporal_iou@{t}": 1.0 for t in ("0.1", "0.3", "0.5", "avg")}
    assert uniform_split_row(ds) == pytest.approx(
        {"temporal_iou": 2 / 3, "temporal_iod": 2 / 3, "temporal_mof": 4 / 6, **at}
        | {"temporal_iou_class": 2 / 3, "temporal_iod_class": 2 / 3}
    )


def test_uniform_split_row_equals_the_split_given_as_alignment(synth: Path):
    myt = load_dataset("myt", synth / "eval" / "myt" / "annotations")
    for background in (0.0, 0.5, 0.9):
        direct = TemporalAlignment(background)
        for rec in myt.records:
            gt = step_targets(rec, rec.num_frames)
            direct.update(
                gt, alignment=uniform_split(len(gt), len(rec.segments)), step_classes=step_classes(rec)
            )
        expected = {f"temporal_{k}": float(v) for k, v in direct.compute().items()}
        assert uniform_split_row(myt, ScoringConfig(background_score=background)) == expected


# ----------------------------------------------------------------------------------------- chance by area
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


# ------------------------------------------------------------------------------------------ random object
def _rendered_object_boxes(plan: VideoPlan, scene: Scene, t: int) -> list[tuple[int, int, int, int]]:
    """Every object's box at second t by re-rendering the scene (moving: measured on the frame; idle: the
    rest square), independently of the objects.json that `stg synth` wrote."""
    _, moving = scene.render(float(t), plan.activities(float(t)), plan.wandering(float(t)))
    return scene.object_boxes(float(t), moving)


def test_objects_file_holds_the_boxes_re_rendering_gives(synth: Path):
    cfg = tiny_split_config()
    vocab = build_vocabulary(cfg)
    assert OBJECTS_FILE == writer.OBJECTS_FILE
    for split in ("gyt", "myt", "yc_inter"):
        written = json.loads((synth / "eval" / split / OBJECTS_FILE).read_text())
        assert list(written) == [writer.video_id(split, i) for i in range(cfg.eval_videos)]
        for i in range(cfg.eval_videos):
            plan, scene = writer.plan_and_scene(cfg, vocab, split, i)
            expected = {
                str(t): [list(b) for b in _rendered_object_boxes(plan, scene, t)]
                for t in range(plan.duration)
            }
            assert written[writer.video_id(split, i)] == expected
            assert all(len(boxes) == len(plan.objects) for boxes in expected.values())


@pytest.mark.parametrize("split", SPATIAL_SPLITS)
def test_random_object_predictions_are_those_of_the_re_rendered_boxes(synth: Path, split: str):
    cfg = tiny_split_config()
    vocab = build_vocabulary(cfg)
    ds = load_dataset(split, synth / "eval" / split / SPATIAL_SPLITS[split])
    rendered = {}
    for rec in ds.records:
        plan, scene = writer.plan_and_scene(cfg, vocab, split, int(rec.video_id.rpartition("_")[2]))
        rendered[rec.video_id] = {t: _rendered_object_boxes(plan, scene, t) for t, _ in pointing_seconds(rec)}
    boxes = load_object_boxes(ds)
    assert boxes == rendered
    for seed in range(3):
        new, old = random_object_predictions(ds, boxes, seed), random_object_predictions(ds, rendered, seed)
        assert new == old
        pointing = score_predictions(ds, new, metrics=("pointing",))
        assert pointing == score_predictions(ds, old, metrics=("pointing",))


def test_random_object_boxes_hold_the_gt_box_and_sometimes_pick_it(synth: Path):
    ds = _gyt(synth)
    boxes = load_object_boxes(ds)  # raises if a GT box is not among the boxes
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


def test_random_object_points_at_the_centre_of_an_object_of_the_file(tmp_path: Path):
    ds = _hand_dataset()  # seconds 0, 1, 2 are scored
    objects = {
        "v": {"0": [[0, 0, 4, 4]], "1": [[8, 8, 12, 12], [1, 2, 3, 4]], "2": [[5, 5, 4, 4], [0, 0, 9, 7]]}
    }
    (tmp_path / OBJECTS_FILE).write_text(json.dumps(objects))
    boxes = load_object_boxes(ds, tmp_path / OBJECTS_FILE)
    assert boxes == {
        "v": {0: [(0, 0, 4, 4)], 1: [(8, 8, 12, 12), (1, 2, 3, 4)], 2: [(5, 5, 4, 4), (0, 0, 9, 7)]}
    }
    for seed in range(5):
        points = [p.point for p in random_object_predictions(ds, boxes, seed)["v"].grounding]
        assert points[0] == (2.0, 2.0)  # the only object
        assert points[1] in [(10.0, 10.0), (2.0, 3.0)] and points[2] in [(4.5, 4.5), (4.5, 3.5)]


def test_random_object_without_objects_json_says_rerun_stg_synth(synth: Path, tmp_path: Path):
    gyt = tmp_path / "eval" / "gyt"
    gyt.mkdir(parents=True)
    (gyt / "GoundingYouTubeBox.json").write_bytes(
        (synth / "eval" / "gyt" / "GoundingYouTubeBox.json").read_bytes()
    )
    (tmp_path / "meta.json").write_bytes((synth / "meta.json").read_bytes())
    ds = load_dataset("gyt", gyt / "GoundingYouTubeBox.json")
    assert objects_file(ds.report.source) == (gyt / OBJECTS_FILE).resolve()
    with pytest.raises(StgUserError, match=r"objects\.json: not found.*rerun `stg synth`"):
        load_object_boxes(ds)
    with pytest.raises(StgUserError, match=r"objects\.json: not found"):
        text_blind_rows(ds)  # a synthetic split (meta.json above): the random-object row applies


def test_random_object_refuses_an_objects_json_of_other_annotations(synth: Path, tmp_path: Path):
    objects = json.loads((synth / "eval" / "gyt" / OBJECTS_FILE).read_text())
    shifted = {
        vid: {t: [[v + 1 for v in b] for b in boxes] for t, boxes in video.items()}
        for vid, video in objects.items()
    }
    (tmp_path / OBJECTS_FILE).write_text(json.dumps(shifted))
    with pytest.raises(StgUserError, match="not among the object boxes"):
        load_object_boxes(_gyt(synth), tmp_path / OBJECTS_FILE)
    (tmp_path / OBJECTS_FILE).write_text(json.dumps({}))
    with pytest.raises(StgUserError, match="no boxes of video 'gyt_00000'"):
        load_object_boxes(_gyt(synth), tmp_path / OBJECTS_FILE)
    (tmp_path / OBJECTS_FILE).write_text(json.dumps({"v": {"0": [[0, 0, 4]]}}))
    with pytest.raises(StgUserError, match=r"second 0: expected a box"):
        load_object_boxes(_hand_dataset(), tmp_path / OBJECTS_FILE)


# ------------------------------------------------------------------------------------------ motion energy
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
    preds = motion_energy_predictions(ds, tmp_path, smooth_fraction=0.0)
    # Decoded at 16 px, scored at 32 px: pixel x → (x + 0.5) · 2 − 0.5.
    assert [p.point for p in preds["v"].grounding] == [(6.5, 4.5), (6.5, 4.5), (20.5, 24.5)]


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


# --------------------------------------------------------------------------------------------------- rows
def test_text_blind_rows_per_dataset(synth: Path):
    rows = text_blind_rows(_gyt(synth), synth / "eval" / "gyt" / "videos")
    assert list(rows) == [CHANCE_BY_AREA, RANDOM_OBJECT, MOTION_ENERGY]
    assert all(0 <= row["pointing"] <= 1 and row["seconds"] >= 0 for row in rows.values())
    assert list(text_blind_rows(_hand_dataset())) == [CHANCE_BY_AREA]  # not synthetic, no videos
    myt = load_dataset("myt", synth / "eval" / "myt" / "annotations")
    rows = text_blind_rows(myt)
    assert list(rows) == [UNIFORM_SPLIT]
    assert {k: v for k, v in rows[UNIFORM_SPLIT].items() if k != "seconds"} == uniform_split_row(myt)


def test_baselines_read_files_and_never_render_or_run_a_model():
    """No baseline imports the synthetic generator (no re-rendering) or the model."""
    root = Path(__file__).resolve().parents[1] / "stg_lightning" / "eval" / "baselines"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        banned = ("stg_lightning.synth", "stg_lightning.lit_module", "stg_lightning.eval.inference")
        assert not {m for m in modules if m.startswith(banned)}, path.name
