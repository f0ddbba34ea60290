"""`stg fit/validate/test/predict`: LightningCLI with the project's run layout, loggers and checks.

`stg fit --config configs/defaults.yaml --config experiments/clip_finetune.yaml --model.loss.margin=0.01`
composes config files left to right (OmegaConf interpolation allowed) and then command-line overrides.
Imported only for these commands, so the tools of `stg` start without Lightning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning import LightningDataModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

from stg_lightning.backbones import BackboneConfig, InputSpec, OpenClipConfig, backbone_config
from stg_lightning.backbones.open_clip_weights import resolve_checkpoint
from stg_lightning.data.shards import expand_shards
from stg_lightning.errors import StgUserError
from stg_lightning.lit_module import GroundingModule
from stg_lightning.prediction_writer import ClipPredictionWriter


@dataclass
class ExperimentConfig:
    """Run identity and logging: where the run writes and how it lines up with others in W&B."""

    name: str = "default"
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    output_dir: str = "runs"
    wandb: bool = True
    wandb_project: str = "stg-lightning"
    checkpoint_every_n_steps: int | None = None


def build_loggers(exp: ExperimentConfig) -> list[Logger]:
    """A CSV logger always; W&B too when enabled, offline unless WANDB_MODE says otherwise."""
    save_dir = Path(exp.output_dir)
    loggers: list[Logger] = [CSVLogger(save_dir=save_dir, name=exp.name, version="")]
    mode = os.environ.get("WANDB_MODE", "offline")
    if exp.wandb and mode != "disabled":
        loggers.append(
            WandbLogger(
                project=exp.wandb_project,
                name=exp.name,
                group=exp.group,
                tags=list(exp.tags),
                save_dir=str(save_dir / exp.name),
                offline=mode == "offline",
            )
        )
    return loggers


def missing_inputs(backbone: BackboneConfig, data: Any) -> list[str]:
    """Backbone weights and training shards the run needs but this machine lacks, as user-facing messages."""
    problems = []
    if isinstance(backbone, OpenClipConfig) and backbone.pretrained:
        try:
            resolve_checkpoint(
                backbone.model_name, backbone.pretrained, backbone.cache_dir, backbone.download
            )
        except (StgUserError, FileNotFoundError, ValueError) as err:
            problems.append(str(err))
    if data is not None and data.class_path.endswith("ShardDataModule"):
        try:
            expand_shards(data.init_args.train_shards, "data.init_args.train_shards")
        except StgUserError as err:
            problems.append(str(err))
    return problems


def backbone_from_namespace(value: Any) -> BackboneConfig:
    """The backbone config a parsed `model.backbone` value (Namespace or dataclass) stands for."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    return backbone_config(value)


def input_spec(backbone: Any) -> InputSpec:
    """Linked argument: what the data must deliver (frame size, tokenizer) for `model.backbone`."""
    return backbone_from_namespace(backbone).input_spec()


class StgCLI(LightningCLI):
    """LightningCLI with an `experiment` section that builds the loggers and checkpointing of a run."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_dataclass_arguments(ExperimentConfig, "experiment")
        # Frame size and tokenizer follow the backbone; a DataModule takes them as `inputs: InputSpec`.
        parser.link_arguments("model.backbone", "data.init_args.inputs", compute_fn=input_spec)

    def before_instantiate_classes(self) -> None:
        # Fail before anything heavy is built, naming every missing input at once.
        config = self.config.get(str(self.subcommand), self.config)
        problems = missing_inputs(backbone_from_namespace(config.model.backbone), config.data)
        if problems:
            raise StgUserError("cannot start:\n" + "\n".join(f"  - {p}" for p in problems))

    def before_fit(self) -> None:
        # Lightning warns and trains from step 0 when `last` has no checkpoint: a resume that silently restarts.
        if self.config.fit.get("ckpt_path") == "last":
            exp = ExperimentConfig(**self._get(self.config, "experiment"))
            last = Path(exp.output_dir) / exp.name / "checkpoints" / "last.ckpt"
            if not last.is_file():
                raise StgUserError(
                    f"--ckpt_path last: no {last} to resume from (drop --ckpt_path to start a new run, "
                    "or give a checkpoint's path)"
                )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        exp = ExperimentConfig(**self._get(self.config, "experiment"))
        trainer_cfg = self._get(self.config_init, "trainer", default={})
        run_dir = Path(exp.output_dir) / exp.name
        if trainer_cfg.get("logger") in (None, True):
            kwargs["logger"] = build_loggers(exp)
        if trainer_cfg.get("default_root_dir") is None:
            kwargs["default_root_dir"] = str(run_dir)
        checkpoint = ModelCheckpoint(
            dirpath=run_dir / "checkpoints", save_last=True, every_n_train_steps=exp.checkpoint_every_n_steps
        )
        callbacks = [checkpoint, LearningRateMonitor(logging_interval="step")]
        if self.subcommand == "predict":
            callbacks.append(ClipPredictionWriter(run_dir / "predictions.jsonl"))
        self.trainer_defaults = {"callbacks": callbacks}
        return super().instantiate_trainer(**kwargs)


def run_lightning_cli(args: list[str] | None) -> StgCLI:
    return StgCLI(
        GroundingModule,
        LightningDataModule,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"parser_mode": "omegaconf+"},
        seed_everything_default=0,
        args=args,
    )
