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
