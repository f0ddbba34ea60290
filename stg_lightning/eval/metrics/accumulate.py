"""A metric as states + ``update`` + ``compute`` on numpy: what scoring runs, without importing torch.

Each metric declares its ``states`` (name → ``"sum"`` or ``"cat"``, as torchmetrics' ``dist_reduce_fx``),
``stats(...)``: one video's contribution to every state, and ``result(states)``: the value(s) from the
accumulated states. :func:`stg_lightning.eval.metrics.synced.rank_synced` turns the same class into a
rank-synced ``torchmetrics.Metric``, so both paths share one implementation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np


class Accumulating:
    states: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.values: dict[str, Any] = {k: 0.0 if r == "sum" else [] for k, r in self.states.items()}

    def stats(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def result(self, states: dict[str, Any]) -> float | dict[str, float]:
        raise NotImplementedError

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Add one video (the arguments of :meth:`stats`)."""
        if (stats := self.stats(*args, **kwargs)) is None:
            return
        for name, value in stats.items():
            if self.states[name] == "sum":
                self.values[name] += float(value)
            else:
                self.values[name].append(np.asarray(value, dtype=np.float64).ravel())

    def compute(self) -> float | dict[str, float]:
        return self.result(
            {
                k: v if self.states[k] == "sum" else (np.concatenate(v) if v else np.zeros(0))
                for k, v in self.values.items()
            }
        )
