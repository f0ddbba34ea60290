"""Lightning's progress for logs (no terminal): `LogProgressBar`, a line per `experiment.progress_interval_s`.

Apart from `stg_lightning.progress` so that tools which only need `track` / `progress` (prepare and its
decoding workers, eval) do not import Lightning at start-up.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks.progress import ProgressBar

from stg_lightning.progress import INTERVAL_S, status_line


class LogProgressBar(ProgressBar):
    """Lightning's progress for logs: a line per `interval_s` with the step, loss and time left, and one
    per validation with its metrics."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._enabled = True
        self._start = self._last = 0.0
        self._first_step = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last = time.monotonic()
        self._first_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        now = time.monotonic()
        if not self._enabled or now - self._last < self.interval_s:
            return
        self._last = now
        total = trainer.max_steps if trainer.max_steps > 0 else None
        done = trainer.global_step - self._first_step
        metrics = self.get_metrics(trainer, pl_module)
        loss = next((f"loss {float(v):.4f}" for k, v in metrics.items() if k.endswith("loss")), "")
        line = status_line(f"stg {trainer.state.fn.value}", done, total and total - self._first_step, "step", now - self._start, loss)  # fmt: skip
        print(
            f"{line} (epoch {trainer.current_epoch}, step {trainer.global_step})", file=sys.stderr, flush=True
        )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._enabled or trainer.sanity_checking:
            return
        shown = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("val/") and v.numel() == 1
        }
        # The chance levels (`val/chance_*`) last, after what they are the chance of.
        order = sorted(shown, key=lambda k: (k.startswith("val/chance_"), k))
        values = ", ".join(f"{k} {shown[k]:.4f}" for k in order)
        print(f"stg validation at step {trainer.global_step}: {values}", file=sys.stderr, flush=True)
