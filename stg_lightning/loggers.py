"""The loggers of a run: CSV always (`<run>/metrics.csv`), W&B when enabled, one W&B run per run folder.

A resumed training appends to its run: the CSV keeps the rows logged before the checkpoint's step (the
rows after it belong to the part the kill lost) and W&B continues the run with the id in run.json.
Lightning never finishes a W&B run, so several trainings in one process (the demo) would share one:
`FinishWandb` finishes it when the run ends, failed or not.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from stg_lightning.runs import Run


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer that continues an existing metrics.csv instead of deleting it."""

    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self.resume_step = resume_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.resume_step is None or not path.is_file():
            return
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            rows, keys = list(reader), list(reader.fieldnames or [])
        kept = [row for row in rows if float(row.get("step") or 0) < self.resume_step]
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=keys)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, path)
        self.metrics_keys = sorted(keys)


class RunCSVLogger(CSVLogger):
    """`<run>/metrics.csv` (and hparams.yaml); with `resume_step`, continues the run's file."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        super().__init__(save_dir=run_dir, name="", version="")
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(self.log_dir, self.resume_step)
        return self._experiment


def build_loggers(
    run: Run,
    name: str,
    group: str | None,
    tags: list[str],
    wandb: bool,
    project: str,
    resume_step: int | None,
) -> list[Logger]:
    """The CSV logger; W&B too when enabled, offline unless WANDB_MODE says otherwise, continuing the run's
    W&B run when it resumes."""
    loggers: list[Logger] = [RunCSVLogger(run.dir, resume_step if run.resumed else None)]
    mode = os.environ.get("WANDB_MODE", "offline")
    if wandb and mode != "disabled":
        loggers.append(
            WandbLogger(
                project=project,
                name=f"{name}/{run.dir.name}",
                group=group,
                tags=list(tags),
                save_dir=str(run.dir),
                offline=mode == "offline",
                id=run.info.get("wandb_id"),
                resume="allow",
            )
        )
    return loggers


class FinishWandb(L.Callback):
    """Finishes the run's W&B run when the run ends, so the next run in this process starts its own."""

    @staticmethod
    def _finish(trainer: L.Trainer, exit_code: int) -> None:
        for logger in trainer.loggers:
            experiment = getattr(logger, "_experiment", None)
            if isinstance(logger, WandbLogger) and experiment is not None:
                experiment.finish(exit_code=exit_code)
                logger._experiment = None

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._finish(trainer, 0)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: Any) -> None:
        self._finish(trainer, 1)
