"""SIGTERM ends `stg fit`: with a checkpoint at the next step, or after the grace period when no step comes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def start_fit(tmp_path: Path, *extra: str) -> subprocess.Popen:
    args = ["fit", "--config", str(ROOT / "configs" / "defaults.yaml")]
    args += ["--config", str(ROOT / "experiments" / "smoke.yaml"), f"--experiment.output_dir={tmp_path}"]
    args += ["--experiment.wandb=false", "--trainer.max_steps=100000", "--trainer.max_epochs=-1", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "stg_lightning", *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True, cwd=ROOT, start_new_session=True,
    )  # fmt: skip


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def stop(process: subprocess.Popen, seconds: float) -> tuple[int | None, str]:
    """SIGTERM, wait for the run to end, then kill what it leaves (the stalled pipe's `sleep` holds stderr)."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        code = None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return code, process.stderr.read()


@pytest.mark.slow
def test_sigterm_stops_at_the_next_step_and_saves_a_checkpoint(tmp_path):
    process = start_fit(tmp_path, "--experiment.checkpoint_every_n_steps=2")
    checkpoints = tmp_path / "smoke" / "v1" / "checkpoints"
    wait_for(lambda: any(checkpoints.glob("*step=4*.ckpt")), 120)
    code, err = stop(process, 60)
    assert code != 0 and "stg: SIGTERM: saved" in err, err[-2000:]
    saved = torch.load(checkpoints / "last.ckpt", weights_only=True, map_location="cpu")
    assert saved["global_step"] >= 4


@pytest.mark.slow
def test_sigterm_ends_a_run_stalled_on_its_data_after_the_grace_period(tmp_path):
    # A shard "read" from a process that never writes: the DataLoader waits forever for the first batch.
    stalled = ["--data=stg_lightning.data.datamodule.ShardDataModule", "--data.train_shards=pipe:sleep 600"]
    stalled += ["--data.epoch_length=8", "--data.num_workers=0", "--data.batch_size=2"]
    process = start_fit(tmp_path, *stalled, "--experiment.sigterm_grace_s=2")
    wait_for(lambda: (tmp_path / "smoke" / "v1" / "run.json").is_file(), 60)
    time.sleep(3)  # into the wait for data
    started = time.monotonic()
    code, err = stop(process, 30)
    assert code == 143 and "no step boundary within 2 s" in err, err[-2000:]
    assert time.monotonic() - started < 20
