"""Progress of long stages that reads well in a terminal and in a log file alike.

In a terminal: tqdm bars. Anywhere else (a batch job's log, `make demo > log`, CI): one plain line every
`interval_s` seconds and at the end (done/total, rate, time left), instead of tqdm's carriage returns that
a log shows as one endless line, or nothing at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks.progress import ProgressBar
from tqdm import tqdm

INTERVAL_S = 30.0


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return hasattr(stream, "isatty") and stream.isatty()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def status_line(desc: str, done: int, total: int | None, unit: str, elapsed: float, extra: str = "") -> str:
    """`desc: 12/250 videos (4.8%), 0.31 s/video, 1m14s left` (no total: count and rate only)."""
    rate = elapsed / done if done else 0.0
    text = f"{desc}: {done}" + (f"/{total} {unit}s ({done / total:.1%})" if total else f" {unit}s")
    text += f", {rate:.2f} s/{unit}" if rate >= 0.01 or not done else f", {1 / rate:.0f} {unit}s/s"
    if total and done:
        text += f", {_duration(rate * (total - done))} left"
    return text + (f", {extra}" if extra else "")


class LineProgress:
    """tqdm's `update` / `close` interface, printing a status line every `interval_s` seconds."""

    def __init__(
        self, total: int | None, desc: str, unit: str = "it", initial: int = 0,
        interval_s: float = INTERVAL_S, stream: TextIO | None = None,
    ) -> None:  # fmt: skip
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.interval_s, self.stream = interval_s, stream or sys.stderr
        self.initial = initial
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.interval_s:
            self.last = now
            self.write()

    def write(self) -> None:
        elapsed = time.monotonic() - self.start
        line = status_line(self.desc, self.done - self.initial, self.total and self.total - self.initial, self.unit, elapsed)  # fmt: skip
        print(
            line if not self.initial else f"{line} (resumed at {self.initial})", file=self.stream, flush=True
        )

    def close(self) -> None:
        self.write()


def progress(total: int | None, desc: str, unit: str = "it", initial: int = 0, disable: bool = False) -> Any:
    """A tqdm bar in a terminal, a `LineProgress` otherwise, or a silent one when `disable`."""
    if disable or is_terminal():
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=disable)
    return LineProgress(total, desc, unit, initial)


def track(
    items: Iterable, desc: str, unit: str = "it", total: int | None = None, disable: bool = False
) -> Iterator:
    """`items`, reporting progress as `progress` does."""
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    bar = progress(total, desc, unit, disable=disable)
    for item in items:
        yield item
        bar.update()
    bar.close()


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
        values = ", ".join(f"{k} {v:.4f}" for k, v in sorted(shown.items()))
        print(f"stg validation at step {trainer.global_step}: {values}", file=sys.stderr, flush=True)
