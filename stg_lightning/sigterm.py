"""SIGTERM always ends a training: at the next step boundary with a checkpoint, or after a grace period.

Lightning only notes a SIGTERM and stops at the next batch; a run stuck between batches (a DataLoader
waiting on a stalled source) would ignore it forever. `StopOnSigterm` chains onto whatever handler is
installed, saves `last.ckpt` when Lightning stops, and ends the process after `grace_s` otherwise.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

EXIT_SIGTERM = 143  # 128 + SIGTERM, what a shell reports for a process the signal ended


class StopOnSigterm(L.Callback):
    def __init__(self, last_checkpoint: Path, grace_s: float) -> None:
        self.last_checkpoint, self.grace_s = Path(last_checkpoint), grace_s
        self._previous: Any = None
        self._timer: threading.Timer | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        if trainer.received_sigterm:  # it came before this handler was installed
            self._on_sigterm(signal.SIGTERM, None)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self._timer is None:
            print(
                f"stg: SIGTERM: stopping at the next step and saving {self.last_checkpoint}; "
                f"ending the process in {self.grace_s:g} s if no step comes",
                file=sys.stderr,
                flush=True,
            )
            self._timer = threading.Timer(self.grace_s, self._exit_now)
            self._timer.daemon = True
            self._timer.start()
        if callable(self._previous):
            self._previous(signum, frame)

    def _exit_now(self) -> None:
        print(
            f"stg: SIGTERM: no step boundary within {self.grace_s:g} s (waiting for data?); exiting "
            "without a new checkpoint (the last one saved stays valid)",
            file=sys.stderr,
            flush=True,
        )
        os._exit(EXIT_SIGTERM)

    def _restore(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit":
            trainer.save_checkpoint(self.last_checkpoint)
            if trainer.is_global_zero:
                print(f"stg: SIGTERM: saved {self.last_checkpoint}", file=sys.stderr, flush=True)
        self._restore()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()
