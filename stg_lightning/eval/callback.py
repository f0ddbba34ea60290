"""`GroundingEvalCallback`: grounding metrics of the model being trained, every N epochs at validation end.

Rank 0 predicts and scores the (first `max_videos`) videos and broadcasts the numbers, so every rank logs
the same `eval/<metric>` values without a collective inside the metrics. Splitting videos across ranks
would not be cheaper to get right: class ids and per-class AP need every rank's predictions anyway. The
other ranks wait in the broadcast, so keep `max_videos` small enough for the process-group timeout.

YAML (LightningCLI)::

    trainer:
      callbacks:
        - class_path: stg_lightning.eval.callback.GroundingEvalCallback
          init_args:
            dataset: gyt
            annotations: runs/synth/eval/gyt/GoundingYouTubeBox.json
            videos: runs/synth/eval/gyt/videos
            every_n_epochs: 1
            max_videos: 20
            inference: {theta: 0.5, normalise: minmax}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from stg_lightning.config import as_config
from stg_lightning.errors import StgUserError
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.inference import predict_dataset
from stg_lightning.eval.readout import InferenceConfig, scored_dataset
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import BOOKKEEPING, ScoringConfig, score_predictions

# Counts that describe the run rather than the model: not logged.


class GroundingEvalCallback(Callback):
    """Run inference + scoring on an evaluation split and log `eval/<metric>` through the module's loggers.

    dataset: gyt | myt | yc_inter; annotations: file/folder (None = released files); videos: folder of
    `<id>.mp4` or `<id>/<second>.jpg`; frame_size: (w, h) (None = synthetic meta.json or the dataset's);
    every_n_epochs: run after validation of epochs N, 2N, ...; max_videos: first N videos (None = all).
    """

    def __init__(
        self,
        dataset: str,
        videos: str,
        annotations: str | None = None,
        frame_size: tuple[int, int] | None = None,
        every_n_epochs: int = 1,
        max_videos: int | None = None,
        inference: InferenceConfig | dict[str, Any] | None = None,
        scoring: ScoringConfig | dict[str, Any] | None = None,
        lenient: bool = False,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"GroundingEvalCallback.every_n_epochs must be >= 1, got {every_n_epochs}")
        self.dataset_name, self.annotations, self.videos = dataset, annotations, Path(videos)
        self.frame_size = None if frame_size is None else tuple(frame_size)
        self.every_n_epochs, self.max_videos, self.lenient = every_n_epochs, max_videos, lenient
        self.inference = as_config(inference, InferenceConfig)
        self.scoring = as_config(scoring, ScoringConfig)
        self._dataset: EvalDataset | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Fail before training starts when the split is not there.
        if not self.videos.is_dir():
            raise StgUserError(f"GroundingEvalCallback.videos {self.videos}: folder not found")
        dataset = load_dataset(self.dataset_name, self.annotations, self.frame_size, self.lenient)
        dataset.records = dataset.records[: self.max_videos]
        self._dataset = dataset

    def evaluate(self, pl_module: L.LightningModule) -> dict[str, float]:
        """Predict and score the split with the module as it is now."""
        if self._dataset is None:
            raise RuntimeError("GroundingEvalCallback.evaluate called before setup")
        predictions = predict_dataset(
            pl_module.model, self._dataset, self.videos, self.inference, progress=False, lenient=self.lenient
        )
        target = scored_dataset(self._dataset, self.inference.mode)
        metrics = score_predictions(target, predictions, self.scoring)
        return {f"eval/{k}": v for k, v in metrics.items() if k not in BOOKKEEPING}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs != 0:
            return
        metrics = self.evaluate(pl_module) if trainer.is_global_zero else None
        metrics = trainer.strategy.broadcast(metrics, src=0)
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=False)
