import sys
from pathlib import Path

import pytest
import yaml

from stg_lightning.errors import StgUserError
from stg_lightning.sweep import build_command, grid_points, load_sweep, main

SWEEPS = sorted(Path(__file__).resolve().parents[1].joinpath("experiments", "sweeps").glob("*.yaml"))


def test_grid_is_the_cartesian_product_in_file_order():
    points = grid_points(
        {"a": {"values": [1, 2]}, "b": {"value": "x"}, "c": {"values": [True, False]}}, Path("s")
    )
    assert points == [
        {"a": 1, "b": "x", "c": True},
        {"a": 1, "b": "x", "c": False},
        {"a": 2, "b": "x", "c": True},
        {"a": 2, "b": "x", "c": False},
    ]


def test_command_expands_wandb_macros():
    spec = {"command": ["${env}", "stg", "fit", "--config", "a.yaml", "${args}"]}
    cmd = build_command(spec, {"model.loss.margin": 0.01, "model.selection.strategy": "topk"}, "s-00", "s")
    assert cmd[:3] == [sys.executable, "-m", "stg_lightning"]
    assert cmd[3:] == [
        "fit",
        "--config",
        "a.yaml",
        "--model.loss.margin=0.01",
        "--model.selection.strategy=topk",
        "--experiment.name=s-00",
        "--experiment.group=s",
    ]


def test_bad_sweep_files_fail_clearly(tmp_path):
    with pytest.raises(StgUserError, match="not found"):
        load_sweep(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"method": "bayes", "parameters": {}, "command": []}))
    with pytest.raises(StgUserError, match="grids only"):
        load_sweep(bad)


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_sweeps_expand(path, capsys):
    assert main([str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "stg_lightning fit" in out and "--experiment.group=" in out


def smoke_sweep(tmp_path: Path, first_value: object) -> Path:
    root = Path(__file__).resolve().parents[1]
    spec = {
        "name": "smoke_sweep",
        "method": "grid",
        "parameters": {"model.loss.margin": {"values": [first_value, 0.05]}},
        "command": ["stg", "fit", "--config", str(root / "configs" / "defaults.yaml"), "--config",
                    str(root / "experiments" / "smoke.yaml"), "${args}"],
    }  # fmt: skip
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_a_sweep_runs_every_point_on_a_cpu_in_its_own_run_folder(tmp_path):
    extra = [
        f"--experiment.output_dir={tmp_path / 'runs'}",
        "--experiment.wandb=false",
        "--trainer.max_steps=2",
    ]
    assert main([str(smoke_sweep(tmp_path, 0.01)), *extra]) == 0
    for index, margin in enumerate([0.01, 0.05]):
        config = yaml.safe_load(
            (tmp_path / "runs" / f"smoke_sweep-{index:02d}" / "v1" / "config.yaml").read_text()
        )
        assert config["model"]["loss"]["margin"] == margin and config["experiment"]["group"] == "smoke_sweep"


def test_a_sweep_stops_at_the_first_failed_run(tmp_path, capsys):
    extra = [f"--experiment.output_dir={tmp_path / 'runs'}", "--experiment.wandb=false"]
    assert main([str(smoke_sweep(tmp_path, "not-a-number")), *extra]) == 1
    err = capsys.readouterr().err
    assert "smoke_sweep-00 failed (exit 2); stopped with 1 of 2 runs not started" in err
    assert not (tmp_path / "runs" / "smoke_sweep-01").exists()
