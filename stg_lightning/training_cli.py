"""`stg fit/validate/test/predict`: LightningCLI with the project's run layout, loggers and checks.

`stg fit --config configs/defaults.yaml --config experiments/clip_finetune.yaml --model.loss.margin=0.01`
composes config files left to right (OmegaConf interpolation allowed) and then command-line overrides.
Imported only for these commands, so the tools of `stg` start without Lightning.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning import LightningDataModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from stg_lightning.backbones import BackboneConfig, InputSpec, OpenClipConfig, backbone_config
from stg_lightning.backbones.open_clip_weights import resolve_checkpoint
from stg_lightning.checkpoint_io import AtomicCheckpointIO
from stg_lightning.config import explain_error, unknown_key
from stg_lightning.data.shards import expand_shards
from stg_lightning.errors import StgUserError
from stg_lightning.lit_module import GroundingModule
from stg_lightning.log_progress import LogProgressBar
from stg_lightning.loggers import FinishWandb, build_loggers
from stg_lightning.prediction_writer import ClipPredictionWriter
from stg_lightning.progress import is_terminal
from stg_lightning.runs import resolve_run
from stg_lightning.sigterm import EXIT_SIGTERM, StopOnSigterm


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
    # After SIGTERM, a run that reaches no step boundary (stalled data) ends after this many seconds.
    sigterm_grace_s: float = 60.0
    # Outside a terminal (a job's log), a progress line every this many seconds.
    progress_interval_s: float = 30.0


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


def _class_parameters(class_path: str) -> dict[str, inspect.Parameter]:
    module, _, name = class_path.rpartition(".")
    return dict(inspect.signature(getattr(importlib.import_module(module), name)).parameters)


def describe_parse_error(parser: LightningArgumentParser, message: str, argv: list[str]) -> str:
    """jsonargparse's multi-line message → one line naming the key and listing the valid ones."""
    commands = parser._subcommands_action._name_parser_map if parser._subcommands_action else {}
    command = next((a for a in argv if a in commands), None)
    sub = commands.get(command, parser)
    nested = re.search(r"Parser key \"([^\"]+)\".*?class_path '([^']+)':\s*Option '([^']+)' is not accepted", message, re.S)  # fmt: skip
    if nested:
        group, class_path, key = nested.groups()
        return unknown_key(f"{group}.{key}", list(_class_parameters(class_path)), f"{group} ({class_path})")
    bad_value = re.search(r"Parser key \"([^\"]+)\".*?class_path '([^']+)'.*NestedArg\(key='([^']+)', val='([^']*)'\)", message, re.S)  # fmt: skip
    if bad_value:
        group, class_path, key, value = bad_value.groups()
        hint = _class_parameters(class_path)[key].annotation
        return f"key {f'{group}.{key}'!r}: expected {hint}, got {value!r}"
    return explain_error(sub, message)


class StgCLI(LightningCLI):
    """LightningCLI with an `experiment` section that builds the loggers and checkpointing of a run."""

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        try:
            super().parse_arguments(parser, args)
        except argparse.ArgumentError as err:
            argv = list(sys.argv[1:] if args is None else args)
            raise StgUserError(describe_parse_error(parser, str(err), argv)) from None

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
        self.experiment = exp = ExperimentConfig(**self._get(self.config, "experiment"))
        self.run, config.ckpt_path = resolve_run(
            Path(exp.output_dir) / exp.name, str(self.subcommand), config.get("ckpt_path")
        )
        resume = sum(1 for _ in self.run.dir.glob("config*.yaml"))
        self.save_config_kwargs = {
            "overwrite": False,
            "config_filename": f"config.resume-{resume}.yaml" if self.run.resumed else "config.yaml",
        }

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        exp, run = self.experiment, self.run
        trainer_cfg = self._get(self.config_init, "trainer", default={})
        if trainer_cfg.get("logger") in (None, True):
            ckpt_path = self._get(self.config, "ckpt_path")
            resume_step = checkpoint_step(ckpt_path) if run.resumed else None
            kwargs["logger"] = build_loggers(
                run, exp.name, exp.group, exp.tags, exp.wandb, exp.wandb_project, resume_step
            )
        if trainer_cfg.get("default_root_dir") is None:
            kwargs["default_root_dir"] = str(run.dir)
        checkpoint = ModelCheckpoint(
            dirpath=run.checkpoints, save_last=True, every_n_train_steps=exp.checkpoint_every_n_steps
        )
        callbacks = [
            checkpoint,
            LearningRateMonitor(logging_interval="step"),
            FinishWandb(),
            StopOnSigterm(run.checkpoints / "last.ckpt", exp.sigterm_grace_s),
        ]
        if not is_terminal() and trainer_cfg.get("enable_progress_bar") is not False:
            callbacks.append(LogProgressBar(exp.progress_interval_s))  # lines in logs, not tqdm's \r
        if self.subcommand == "predict":
            callbacks.append(ClipPredictionWriter(run.dir / "predictions.jsonl"))
        self.trainer_defaults = {"callbacks": callbacks, "plugins": [AtomicCheckpointIO()]}
        print(f"stg {self.subcommand}: run folder {run.dir}" + (" (resumed)" if run.resumed else ""))
        return super().instantiate_trainer(**kwargs)


def checkpoint_step(path: str) -> int:
    """The global step a checkpoint was saved at."""
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])


def run_lightning_cli(args: list[str] | None) -> StgCLI:
    try:
        return StgCLI(
            GroundingModule,
            LightningDataModule,
            subclass_mode_data=True,
            parser_kwargs={"parser_mode": "omegaconf+", "exit_on_error": False},
            seed_everything_default=0,
            args=args,
        )
    except SIGTERMException:  # Lightning's is a SystemExit with status 0: a scheduler must see a stopped run
        raise SystemExit(EXIT_SIGTERM) from None
