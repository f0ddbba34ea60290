"""Report support: figures as readable PNGs, report.md (the text-blind baselines: test_eval_baselines)."""

import math
from pathlib import Path

import numpy as np
import pytest
from eval_fixtures import write_tiny_split
from PIL import Image

from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.oracle import oracle_predictions
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.metrics.spatial import heat_points
from stg_lightning.eval.records import EvalDataset
from stg_lightning.report.figures import (
    OverlaySample,
    ReferenceLine,
    curve_panels,
    overlay_samples,
    plot_heatmap_comparison,
    plot_timelines,
    plot_training_curves,
    read_metrics_csv,
)
from stg_lightning.report.markdown import MISSING, write_report


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_split(tmp_path_factory.mktemp("synth"))


def _gyt(root: Path) -> EvalDataset:
    return load_dataset("gyt", root / "eval" / "gyt" / "GoundingYouTubeBox.json")


def _assert_png(path: Path, min_side: int = 200) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert min(pixels.shape[:2]) >= min_side
    assert pixels.std() > 0  # not blank


# -------------------------------------------------------------------------------------------------- figures
def test_training_curves_png(tmp_path: Path):
    header = "epoch,step,train/loss,train/loss_global,train/loss_local,val/loss\n"
    rows = "".join(f"0,{s},{3 - 0.1 * s},{1.5 - 0.05 * s},{1.5 - 0.05 * s},\n" for s in range(10))
    csv = tmp_path / "metrics.csv"
    csv.write_text(header + rows + "0,9,,,,2.5\n1,19,,,,2.2\n")
    _assert_png(plot_training_curves({"run a": csv}, tmp_path / "curves.png"))
    with pytest.raises(StgUserError, match=r"metrics\.csv not found"):
        plot_training_curves({"run a": tmp_path / "missing.csv"}, tmp_path / "x.png")
    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,step,lr\n0,1,0.1\n")
    with pytest.raises(StgUserError, match="no loss or top-1 columns"):
        plot_training_curves({"run a": empty}, tmp_path / "x.png")


def _write_val_metrics(path: Path, val_chance: float = 2 * math.log(8)) -> Path:
    """Train rows every 10 steps, val rows (losses, top-1 and the chance levels the module logs) at steps 50
    and 100, empty cells elsewhere: batch 8 in training, partial held-out batches lower the val chance."""
    columns = ["loss", "loss_global", "loss_local", "chance_loss", "chance_loss_global", "chance_loss_local"]
    val_only = ["top1_global", "top1_local", "chance_top1"]
    header = ["epoch", "step", *(f"train/{c}" for c in columns), *(f"val/{c}" for c in columns + val_only)]
    lines = [",".join(header)]
    c = 2 * math.log(8)
    for s in range(0, 101, 10):
        train = [3 - 0.01 * s, 1.5 - 0.005 * s, 1.5 - 0.005 * s, 2 * c, c, c]
        lines.append(",".join(map(str, [0, s, *train])) + "," * len(columns + val_only))
    for epoch, step, loss, top1 in ((0, 50, 1.3, 0.2), (1, 100, 1.2, 0.3)):
        val = [2 * loss, loss, loss, 2 * val_chance, val_chance, val_chance, top1, top1 / 2, 0.15]
        lines.append(",".join(map(str, [epoch, step])) + "," * len(columns) + "," + ",".join(map(str, val)))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_curve_panels_draw_the_chance_each_stage_logged(tmp_path: Path):
    runs = {"full": read_metrics_csv(_write_val_metrics(tmp_path / "metrics.csv", val_chance=4.0))}
    panels = {p.title: p for p in curve_panels(runs)}
    assert list(panels) == ["loss", "loss_global", "loss_local", "top1_global", "top1_local"]
    train, val = panels["loss_global"].series
    assert (train.label, train.is_val, len(train.xs)) == ("full train", False, 11)
    assert (val.label, val.is_val, val.xs, val.ys) == ("full val", True, [50.0, 100.0], [1.3, 1.2])
    train_chance, val_chance = panels["loss_local"].chance
    assert (train_chance.label, train_chance.run) == ("chance train", None)
    assert train_chance.ys == pytest.approx([2 * math.log(8)] * 11)
    # Validation draws its own level, not the training batch's.
    assert (val_chance.label, val_chance.xs, val_chance.ys) == ("chance val", [50.0, 100.0], [4.0, 4.0])
    assert panels["loss"].chance[1].ys == [8.0, 8.0]
    for name in ("top1_global", "top1_local"):
        assert panels[name].ylabel == "top-1 retrieval"
        assert [s.label for s in panels[name].series] == ["full val"]
        assert [(c.label, c.ys) for c in panels[name].chance] == [("chance val", [0.15, 0.15])]


def test_curve_panels_keep_one_chance_line_per_run_where_runs_differ(tmp_path: Path):
    a = read_metrics_csv(_write_val_metrics(tmp_path / "a.csv", val_chance=4.0))
    b = read_metrics_csv(_write_val_metrics(tmp_path / "b.csv", val_chance=3.0))
    c = read_metrics_csv(_write_val_metrics(tmp_path / "c.csv", val_chance=3.0))
    panel = {p.title: p for p in curve_panels({"full": a, "global only": b, "local": c})}["loss_global"]
    assert [(c.label, c.run) for c in panel.chance] == [
        ("chance train", None),
        ("full val chance", "full"),
        ("global only, local val chance", "global only"),
    ]
    # The three runs log the same losses: the later series say so (drawn under full's, they would look
    # missing).
    assert [s.label for s in panel.series] == [
        "full train",
        "full val",
        "global only train (= full)",
        "global only val (= full)",
        "local train (= full)",
        "local val (= full)",
    ]
    no_chance = [{k: v for k, v in row.items() if "chance" not in k} for row in a]
    assert all(p.chance == [] for p in curve_panels({"full": no_chance}))


def test_training_curves_with_val_steps_and_chance_png(tmp_path: Path):
    a, b = _write_val_metrics(tmp_path / "a.csv", 4.0), _write_val_metrics(tmp_path / "b.csv", 3.0)
    oracles = {
        "loss_local": [
            ReferenceLine("oracle: object detector (train)", 3.9, False),
            ReferenceLine("oracle: action detector (train)", 3.1, False),
            ReferenceLine("oracle: object detector (val)", 3.6, True),
        ]
    }
    out = plot_training_curves({"full": a, "global only": b}, tmp_path / "curves.png", references=oracles)
    _assert_png(out)


def _two_samples() -> list[OverlaySample]:
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[8:16, 8:16] = 255
    heat = np.zeros((4, 4), np.float32)
    heat[1, 1] = 1.0
    return [
        OverlaySample(
            frame=frame, heat=heat, point=(12.0, 12.0), gt_box=(8, 8, 15, 15), query="cut x", caption="a"
        ),
        OverlaySample(frame=frame, heat=None, point=None, gt_box=(0, 0, 3, 3), query="stir y", caption="b"),
    ]


def test_heatmap_comparison_png(tmp_path: Path):
    samples = _two_samples()
    rows = {"full": samples, "global only": samples[::-1]}
    _assert_png(plot_heatmap_comparison(rows, tmp_path / "comparison.png"))
    with pytest.raises(ValueError, match="same number of samples"):
        plot_heatmap_comparison({"full": samples, "global only": samples[:1]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one"):
        plot_heatmap_comparison({}, tmp_path / "x.png")


def test_overlay_samples_read_frames_and_the_scored_point(synth: Path, tmp_path: Path):
    ds = _gyt(synth)
    samples = overlay_samples(ds, oracle_predictions(ds), synth / "eval" / "gyt" / "videos", n=3, seed=0)
    assert len(samples) == 3
    w, h = ds.records[0].frame_size
    for s in samples:
        assert s["frame"].shape == (h, w, 3) and s["frame"].dtype == np.uint8
        x1, y1, x2, y2 = s["gt_box"]
        assert s["point"] == ((x1 + x2) / 2, (y1 + y2) / 2)  # the oracle points at the box centre
    _assert_png(plot_heatmap_comparison({"oracle": samples}, tmp_path / "overlay.png"))


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


def test_overlay_samples_point_at_the_heat_argmax(synth: Path):
    # Heat-only answers (as models write): the figure's point is the scored one, the grid's argmax.
    ds = _gyt(synth)
    preds = oracle_predictions(ds)
    heat = np.zeros((4, 4), dtype=np.float32)
    heat[3, 0] = 1.0  # bottom-left cell
    for video in preds.values():
        for p in video.frames:
            p.heat, p.point, p.box = heat, None, None
    w, h = ds.records[0].frame_size
    expected = tuple(heat_points(heat[None], (w, h))[0])
    samples = overlay_samples(ds, preds, synth / "eval" / "gyt" / "videos", n=2, seed=0)
    assert samples and all(s["point"] == expected for s in samples)
    assert expected[0] < w / 4 and expected[1] > 3 * h / 4
