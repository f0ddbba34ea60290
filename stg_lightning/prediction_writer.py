"""`stg predict`: one JSON line per clip (selected frames, their times, each head's score of the clip's own
sentence) in `<run folder>/predictions.jsonl`, written as batches arrive."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter


class ClipPredictionWriter(BasePredictionWriter):
    """Appends `GroundingModule.predict_step` outputs to `path` (one file per rank: `.rank<r>` suffix)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.path = Path(path)

    def _file(self, trainer: L.Trainer) -> Path:
        return (
            self.path
            if trainer.world_size == 1
            else self.path.with_suffix(f".rank{trainer.global_rank}.jsonl")
        )

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        file = self._file(trainer)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("")

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: dict[str, Any],
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        scores = [k for k in prediction if k.startswith("score_")]
        with self._file(trainer).open("a") as out:
            for i, video_id in enumerate(prediction["video_id"]):
                frames = [f for f in prediction["selected_frames"][i].tolist() if f >= 0]
                times = [t for t in prediction["selected_times"][i].tolist() if not math.isnan(t)]
                row = {"video_id": video_id, "text": prediction["text"][i], "frames": frames, "times": times}
                row.update({k: float(prediction[k][i]) for k in scores})
                out.write(json.dumps(row) + "\n")
