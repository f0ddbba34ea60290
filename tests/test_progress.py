"""Progress in logs: plain status lines with known content, and `stg fit` writing them when not in a terminal."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from stg_lightning.progress import LineProgress, status_line, track

ROOT = Path(__file__).resolve().parents[1]


def test_status_line_counts_rate_and_time_left():
    assert status_line("stg eval gyt", 5, 10, "video", 10.0) == (
        "stg eval gyt: 5/10 videos (50.0%), 2.00 s/video, 0m10s left"
    )
    assert status_line("x", 600, None, "clip", 3.0) == "x: 600 clips, 200 clips/s"
    assert (
        status_line("x", 1, 3, "step", 3600.0, "loss 1.2")
        == "x: 1/3 steps (33.3%), 3600.00 s/step, 2h00m left, loss 1.2"
    )


def test_line_progress_prints_lines_not_carriage_returns():
    out = io.StringIO()
    bar = LineProgress(4, "stg prepare", "video", initial=1, interval_s=0.0, stream=out)
    for _ in range(3):
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()
    assert lines[-1].startswith("stg prepare: 3/3 videos (100.0%)") and lines[-1].endswith("(resumed at 1)")


def test_track_yields_every_item():
    assert list(track(range(5), "x", disable=True)) == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_stg_fit_writes_progress_lines_to_a_log(tmp_path):
    args = [
        "fit",
        "--config",
        str(ROOT / "configs" / "defaults.yaml"),
        "--config",
        str(ROOT / "experiments" / "smoke.yaml"),
    ]
    args += [f"--experiment.output_dir={tmp_path}", "--experiment.wandb=false", "--trainer.max_steps=3"]
    args += [
        "--experiment.progress_interval_s=0",
        "--trainer.val_check_interval=2",
        "--trainer.limit_val_batches=1",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "stg_lightning", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("stg ")]
    assert any(line.startswith("stg fit: 3/3 steps (100.0%)") and "loss" in line for line in lines), lines
    assert any(line.startswith("stg validation at step 2: val/loss") for line in lines), lines
    val_line = next(line for line in lines if line.startswith("stg validation"))
    assert val_line.index("val/top1_local") < val_line.index("val/chance_loss")  # chance after the values
    assert "\r" not in done.stderr
