"""GroundingEvalCallback: one epoch of `stg fit` with the callback in the YAML logs eval/ metrics."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from eval_fixtures import tiny_data, tiny_model
from lightning import Trainer

from stg_lightning.errors import StgUserError
from stg_lightning.eval.callback import GroundingEvalCallback
from stg_lightning.training_cli import run_lightning_cli

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_fit_from_yaml_logs_eval_metrics(split, tmp_path):
    gyt = split / "eval" / "gyt"
    config = {
        "experiment": {"name": "cb", "output_dir": str(tmp_path), "wandb": False},
        "trainer": {
            "max_epochs": 1,
            "max_steps": 1,
            "num_sanity_val_steps": 0,
            "enable_progress_bar": False,
            "callbacks": [
                {
                    "class_path": "stg_lightning.eval.callback.GroundingEvalCallback",
                    "init_args": {
                        "dataset": "gyt",
                        "annotations": str(gyt / "GoundingYouTubeBox.json"),
                        "videos": str(gyt / "videos"),
                        "max_videos": 1,
                        "inference": {"theta": 0.3, "normalise": "minmax"},
                    },
                }
            ],
        },
        "data": {"init_args": {"batch_size": 4, "train_size": 4, "val_size": 4}},
    }
    (tmp_path / "cb.yaml").write_text(yaml.safe_dump(config))
    cli = run_lightning_cli(
        ["fit", "--config", str(EXPERIMENTS / "smoke.yaml"), "--config", str(tmp_path / "cb.yaml")]
    )
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, GroundingEvalCallback))
    assert callback.inference.theta == 0.3 and callback.inference.normalise == "minmax"
    for key in ("eval/pointing", "eval/iou_pointing", "eval/spatial_map", "eval/video_map"):
        assert key in cli.trainer.callback_metrics
    with open(tmp_path / "cb" / "latest" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert any(row.get("eval/pointing") for row in rows)


def test_every_n_epochs_and_missing_videos(split, tmp_path):
    gyt = split / "eval" / "gyt"
    callback = GroundingEvalCallback(
        "gyt",
        str(gyt / "videos"),
        str(gyt / "GoundingYouTubeBox.json"),
        every_n_epochs=2,
        max_videos=1,
        inference={"spatial": "patch_similarity"},
    )
    trainer = Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        default_root_dir=tmp_path,
    )
    trainer.fit(tiny_model(), tiny_data())
    assert not any(k.startswith("eval/") for k in trainer.callback_metrics)  # epoch 1 of every 2
    assert set(callback.evaluate(tiny_model())) >= {"eval/pointing", "eval/video_map"}
    with pytest.raises(StgUserError, match="videos"):
        GroundingEvalCallback("gyt", str(tmp_path / "none")).setup(trainer, tiny_model(), "fit")
