import csv
import json
from pathlib import Path

import pytest
import yaml

from stg_lightning import backbones
from stg_lightning.cli import main
from stg_lightning.training_cli import run_lightning_cli

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = str(ROOT / "configs" / "defaults.yaml")
EXPERIMENTS = sorted((ROOT / "experiments").rglob("*.yaml"))
# Training experiments (eval-only files such as baselines/clip_zeroshot.yaml are `stg eval` configs).
EXPERIMENTS = [
    p for p in EXPERIMENTS if "sweeps" not in p.parts and "experiment" in yaml.safe_load(p.read_text())
]


def print_config(*configs: str, extra: tuple[str, ...] = ()) -> dict:
    args = [
        "fit",
        "--config",
        DEFAULTS,
        *[a for c in configs for a in ("--config", c)],
        *extra,
        "--print_config",
    ]
    with pytest.raises(SystemExit) as exit_info:
        run_lightning_cli(args)
    assert exit_info.value.code in (0, None)
    return args


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[str(p.relative_to(ROOT)) for p in EXPERIMENTS])
def test_every_experiment_parses_and_composes(path, capsys):
    print_config(str(path))
    resolved = yaml.safe_load(capsys.readouterr().out)
    override = yaml.safe_load(path.read_text())
    # The experiment's own values win over the defaults.
    assert resolved["experiment"]["name"] == override["experiment"]["name"]
    for section, values in override.get("model", {}).items():
        got = resolved["model"][section]
        if "class_path" in values:  # a backbone chosen by class; the resolved config prints its fields
            name = values["class_path"].rpartition(".")[2]
            assert set(got) == set(getattr(backbones, name).__dataclass_fields__)
            values = values["init_args"]
        for key, value in values.items():
            assert got[key] == value, (section, key)


def test_defaults_yaml_keeps_the_model_values_it_used_to_state(capsys):
    """configs/defaults.yaml no longer restates the model's dataclass defaults; the run gets the same values
    it stated before (written out by hand here)."""
    print_config()
    model = yaml.safe_load(capsys.readouterr().out)["model"]
    before = {
        "selection": {"strategy": "sinkhorn", "text_granularity": "local", "video_granularity": "global",
                      "num_frames": 16, "epsilon": 0.05, "iterations": 3, "use_raw_features": False},
        "global_head": {"embed_dim": 512, "frame_pooling": "cls", "pool_all_frames": False},
        "local_head": {"embed_dim": 512, "num_heads": 8, "variant": "cross_self_cross", "attention": "cosine",
                       "temperature": 0.1, "chunk_size": 8},
        "loss": {"global_weight": 1.0, "local_weight": 1.0, "margin": 0.001, "temperature": None},
        "optim": {"head_lr": 1.0e-4, "backbone_lr": 1.0e-7, "weight_decay": 0.0, "warmup_steps": 500,
                  "min_lr_ratio": 0.0},
    }  # fmt: skip
    for section, values in before.items():
        assert model[section] is not None, section  # printed in full (an empty section in the file)
        assert {k: model[section][k] for k in values} == values, section


def test_command_line_overrides_win_and_interpolation_resolves(tmp_path, capsys):
    exp = tmp_path / "exp.yaml"
    # Relative interpolation, resolved after all files and command-line overrides are merged.
    exp.write_text(
        "experiment:\n  name: interp\nmodel:\n  local_head:\n    embed_dim: ${..global_head.embed_dim}\n"
    )
    print_config(str(exp), extra=("--model.global_head.embed_dim=96",))
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["model"]["global_head"]["embed_dim"] == 96
    assert resolved["model"]["local_head"]["embed_dim"] == 96  # interpolations resolve on the merged config


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (
            "--model.loss.margn=0.1",
            "unknown key 'model.loss.margn' (did you mean 'margin'?); valid keys of model.loss",
        ),
        (
            "--trainer.max_stepz=3",
            "unknown key 'trainer.max_stepz' (did you mean 'max_steps'?); valid keys of trainer:",
        ),
        ("--data.init_args.batch_sise=3", "unknown key 'data.batch_sise' (did you mean 'batch_size'?)"),
        ("--model.loss.margin=abc", "key 'model.loss.margin': expected float, got 'abc'"),
    ],
)
def test_unknown_keys_and_bad_values_fail_in_one_line_listing_the_valid_keys(flag, expected, capsys):
    assert main(["fit", "--config", DEFAULTS, flag, "--print_config"]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err
    if "valid keys of model.loss" in expected:
        assert err.strip().endswith("global_weight, local_weight, margin, temperature")


def test_missing_weights_and_shards_stop_at_once_naming_keys(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["fit", "--config", DEFAULTS, "--config", str(ROOT / "experiments" / "clip_finetune.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert "model.backbone.pretrained" in err and "data.init_args.train_shards" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_smoke_experiment_trains_logs_and_checkpoints(tmp_path):
    code = main(
        [
            "fit",
            "--config",
            DEFAULTS,
            "--config",
            str(ROOT / "experiments" / "smoke.yaml"),
            "--trainer.max_steps=3",
            "--trainer.limit_val_batches=1",
            f"--experiment.output_dir={tmp_path}",
            "--experiment.wandb=false",
        ]
    )
    assert code == 0
    run = tmp_path / "smoke" / "latest"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["experiment"]["name"] == "smoke"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert losses and all(loss > 0 for loss in losses)
    assert any(r.get("lr-AdamW/heads") for r in rows)


def test_test_and_predict_run_on_the_held_out_clips(tmp_path):
    """`stg test` logs the losses of the held-out clips; `stg predict` writes one JSON line per clip."""
    common = ["--config", DEFAULTS, "--config", str(ROOT / "experiments" / "smoke.yaml")]
    common += [f"--experiment.output_dir={tmp_path}", "--experiment.wandb=false"]
    assert main(["test", *common]) == 0
    rows = list(csv.DictReader((tmp_path / "smoke" / "v1" / "metrics.csv").open()))
    assert any(float(r.get("test/loss") or 0) > 0 for r in rows)
    assert main(["predict", *common]) == 0
    lines = [
        json.loads(line)
        for line in (tmp_path / "smoke" / "v2" / "predictions.jsonl").read_text().splitlines()
    ]
    assert len(lines) == 16  # the smoke DataModule's 16 validation clips
    first = lines[0]
    assert first["video_id"].startswith("random_") and len(first["frames"]) == 4 == len(first["times"])
    assert first["frames"] == sorted(first["frames"]) and -1 <= first["score_global"] <= 1


def test_stg_help_lists_every_command_and_tool(capsys):
    from stg_lightning.cli import LIGHTNING_COMMANDS, TOOLS, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in [*LIGHTNING_COMMANDS, *TOOLS]:
        assert f"\n  {name} " in out, name
    assert main([]) == 2  # no command: the same list, and a usage error
    assert "tools:" in capsys.readouterr().out


def test_resume_from_last_without_a_checkpoint_is_an_error(tmp_path, capsys):
    args = ["fit", "--config", DEFAULTS, "--config", str(ROOT / "experiments" / "smoke.yaml")]
    args += [f"--experiment.output_dir={tmp_path}", "--experiment.wandb=false", "--ckpt_path=last"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert (
        "--ckpt_path last: no" in err
        and str(tmp_path / "smoke" / "latest" / "checkpoints" / "last.ckpt") in err
    )
    assert not (tmp_path / "smoke").exists()  # nothing trained, no run folder
