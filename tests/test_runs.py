"""Run folders: one per run, nothing of another run touched, resume continues its own run, atomic checkpoints,
one finished W&B run per training."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
from pathlib import Path

import pytest
import torch

from stg_lightning.checkpoint_io import AtomicCheckpointIO
from stg_lightning.cli import main
from stg_lightning.runs import is_first_process, new_run, resolve_run, run_of_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SMOKE = [
    "--config",
    str(ROOT / "configs" / "defaults.yaml"),
    "--config",
    str(ROOT / "experiments" / "smoke.yaml"),
]


def fit(out: Path, *extra: str) -> int:
    args = [
        "fit",
        *SMOKE,
        f"--experiment.output_dir={out}",
        "--trainer.max_steps=2",
        "--trainer.log_every_n_steps=1",
    ]
    return main([*args, "--experiment.checkpoint_every_n_steps=1", *extra])


def digest(folder: Path) -> dict[str, str]:
    """Content hashes of a run's files (W&B's link to its shared service log is not the run's)."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def loss_steps(run: Path) -> list[int]:
    rows = csv.DictReader((run / "metrics.csv").open())
    return [int(r["step"]) for r in rows if r.get("train/loss")]


def test_new_runs_take_the_next_version_and_latest_follows_training(tmp_path):
    root = tmp_path / "exp"
    first, second = new_run(root, "fit"), new_run(root, "fit")
    assert (first.dir.name, second.dir.name) == ("v1", "v2")
    assert (root / "latest").resolve() == second.dir.resolve()
    evaluation = new_run(root, "validate", ckpt_path="x.ckpt")
    assert evaluation.dir.name == "v3" and (root / "latest").resolve() == second.dir.resolve()
    record = json.loads((evaluation.dir / "run.json").read_text())
    assert record["command"] == "validate" and record["code_version"] and record["ckpt_path"] == "x.ckpt"
    assert first.info["wandb_id"] != second.info["wandb_id"]


def test_a_checkpoint_inside_a_run_resumes_that_run_else_a_new_one(tmp_path):
    root = tmp_path / "exp"
    run = new_run(root, "fit")
    (run.checkpoints).mkdir()
    (run.checkpoints / "last.ckpt").write_bytes(b"x")
    resumed, path = resolve_run(root, "fit", "last")
    assert (
        resumed.resumed
        and resumed.dir == run.dir
        and path == str(root / "latest" / "checkpoints" / "last.ckpt")
    )
    validated, path = resolve_run(root, "validate", "last")
    assert not validated.resumed and validated.dir.name == "v2" and path.endswith("last.ckpt")
    assert run_of_checkpoint(tmp_path / "elsewhere.ckpt", root) is None
    fresh, _ = resolve_run(root, "fit", str(tmp_path / "elsewhere.ckpt"))  # fine-tuning from another model
    assert not fresh.resumed and fresh.dir.name == "v3"


def test_ranks_above_zero_create_no_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("STG_RUN_DIR", str(tmp_path / "exp" / "v7"))
    assert not is_first_process()
    run, _ = resolve_run(tmp_path / "exp", "fit", None)
    assert run.dir == tmp_path / "exp" / "v7" and not (tmp_path / "exp").exists()


def test_a_failed_checkpoint_write_leaves_the_earlier_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)
    real_save = torch.save

    def full_disk(obj, file):
        real_save(obj, file)
        file.truncate(10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary file left behind


@pytest.mark.slow
def test_two_runs_of_one_name_never_touch_each_others_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert fit(tmp_path) == 0
    first = tmp_path / "smoke" / "v1"
    before = digest(first)
    assert "checkpoints/last.ckpt" in before and "metrics.csv" in before and any("wandb" in k for k in before)
    assert fit(tmp_path) == 0
    assert digest(first) == before
    assert (tmp_path / "smoke" / "latest").resolve() == (tmp_path / "smoke" / "v2").resolve()
    # Each training finished its own W&B run (the second is not logged into the first).
    import wandb

    assert wandb.run is None
    runs = [sorted((tmp_path / "smoke" / v / "wandb").glob("offline-run-*")) for v in ("v1", "v2")]
    assert all(len(r) == 1 for r in runs) and runs[0][0].name.split("-")[-1] != runs[1][0].name.split("-")[-1]
    # An evaluation writes its own folder too, never the training's metrics.
    args = ["validate", *SMOKE, f"--experiment.output_dir={tmp_path}", "--experiment.wandb=false"]
    assert main([*args, "--ckpt_path=last"]) == 0
    assert digest(first) == before and (tmp_path / "smoke" / "v3" / "metrics.csv").is_file()


@pytest.mark.slow
def test_resume_appends_to_the_run_it_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert fit(tmp_path) == 0
    run = tmp_path / "smoke" / "v1"
    assert loss_steps(run) == [0, 1]
    assert fit(tmp_path, "--ckpt_path=last", "--trainer.max_steps=4") == 0
    assert sorted(p.name for p in (tmp_path / "smoke").iterdir()) == ["latest", "v1"]
    assert loss_steps(run) == [0, 1, 2, 3]  # the first part's rows kept, once each
    assert (run / "config.yaml").is_file() and (run / "config.resume-1.yaml").is_file()
