"""Report support: figures as readable PNGs, report.md (the text-blind baselines: test_eval_baselines)."""

from pathlib import Path

import numpy as np
import pytest
from eval_fixtures import write_tiny_split
from PIL import Image

from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.oracle import oracle_predictions
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.records import EvalDataset
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
