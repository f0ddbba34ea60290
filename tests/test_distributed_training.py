"""Real 2-process CPU trainings through `stg fit`: DDP with held-out shards of different sizes per rank (the
short last shard `stg prepare` writes), and ddp_spawn with DataLoader worker processes (everything pickles)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_fit(tmp_path: Path, many_shards: Path, *extra: str) -> subprocess.CompletedProcess:
    config = {
        "trainer": {"accelerator": "cpu", "devices": 2, "max_steps": 4, "val_check_interval": 2,
                    "num_sanity_val_steps": 0, "log_every_n_steps": 1, "enable_progress_bar": False},
        "model": {"backbone": {"model_name": "stg-tiny-vit", "pretrained": None}, "selection": {"num_frames": 2},
                  "global_head": {"embed_dim": 16}, "local_head": {"embed_dim": 16, "num_heads": 2}},
        "data": {"init_args": {"train_shards": str(many_shards / "clips-*.tar"), "val_holdout_shards": 3,
                               "batch_size": 2, "num_frames": 2, "num_workers": 0, "shuffle_buffer": 0,
                               "resample": False}},
    }  # fmt: skip
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ["fit", "--config", str(ROOT / "configs" / "defaults.yaml"), "--config", str(path)]
    args += [f"--experiment.output_dir={tmp_path / 'runs'}", "--experiment.wandb=false", *extra]
    # Its own process group, so a hang (the bug this guards against) takes the rank processes down with it.
    with subprocess.Popen(
        [sys.executable, "-m", "stg_lightning", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT, start_new_session=True,
    ) as process:  # fmt: skip
        try:
            out, err = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            err += "\n[killed after 240 s: hung]"
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def val_rows(tmp_path: Path) -> list[dict]:
    rows = csv.DictReader((tmp_path / "runs" / "default" / "latest" / "metrics.csv").open())
    return [r for r in rows if r.get("val/loss")]


@pytest.mark.slow
def test_ddp_validation_with_uneven_held_out_shards_neither_hangs_nor_mismatches(tmp_path, many_shards):
    # 3 held-out shards of 2 clips over 2 ranks: rank 0 gets 2 batches of 2, rank 1 one batch.
    done = run_fit(tmp_path, many_shards, "--trainer.strategy=ddp")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = val_rows(tmp_path)
    assert len(rows) == 2 and all(0 < float(r["val/loss"]) < 20 for r in rows)


@pytest.mark.slow
def test_ddp_spawn_with_worker_processes_pickles_everything(tmp_path, many_shards):
    done = run_fit(tmp_path, many_shards, "--trainer.strategy=ddp_spawn", "--data.init_args.num_workers=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "default" / "latest" / "checkpoints" / "last.ckpt").is_file()
    assert len(val_rows(tmp_path)) == 2
