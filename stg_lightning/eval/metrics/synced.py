"""The metrics as rank-synced ``torchmetrics.Metric`` s, wrapping the numpy implementations.

States are registered from the metric's ``states`` (sums as float64 scalars, ``cat`` states as lists of
float64 vectors), so DDP ranks reduce them as torchmetrics does; ``compute`` runs the shared ``result``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from stg_lightning.eval.metrics.accumulate import Accumulating
from stg_lightning.eval.metrics.iou_pointing import IoUPointing as _IoUPointing
from stg_lightning.eval.metrics.pointing import PointingGame as _PointingGame
from stg_lightning.eval.metrics.spatial_map import SpatialMAP as _SpatialMAP
from stg_lightning.eval.metrics.temporal import TemporalAlignment as _TemporalAlignment
from stg_lightning.eval.metrics.video_map import VideoMAP as _VideoMAP


def _as_numpy(state: Tensor | list[Tensor]) -> np.ndarray:
    """A ``cat`` state (a list before sync, a tensor after) as one float64 vector."""
    if isinstance(state, list):
        return torch.cat(state).cpu().double().numpy() if state else np.zeros(0)
    return state.cpu().double().numpy().ravel()


def rank_synced(core: type[Accumulating]) -> type[Metric]:
    """A ``torchmetrics.Metric`` with ``core``'s constructor, ``update`` arguments and result."""

    class Synced(Metric):
        full_state_update = False
        higher_is_better = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__()
            self.core = core(*args, **kwargs)
            for name, reduce in core.states.items():
                default = torch.tensor(0.0, dtype=torch.float64) if reduce == "sum" else []
                self.add_state(name, default, dist_reduce_fx=reduce)

        def update(self, *args: Any, **kwargs: Any) -> None:
            if (stats := self.core.stats(*args, **kwargs)) is None:
                return
            for name, value in stats.items():
                if core.states[name] == "sum":
                    setattr(self, name, getattr(self, name) + float(value))
                else:
                    getattr(self, name).append(torch.from_numpy(np.asarray(value, dtype=np.float64).ravel()))

        def compute(self) -> Tensor | dict[str, Tensor]:
            states = {
                name: float(getattr(self, name)) if reduce == "sum" else _as_numpy(getattr(self, name))
                for name, reduce in core.states.items()
            }
            out = self.core.result(states)
            if isinstance(out, dict):
                return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}
            return torch.tensor(out, dtype=torch.float64)

    Synced.__name__ = Synced.__qualname__ = core.__name__
    Synced.__doc__ = core.__doc__
    return Synced


PointingGame = rank_synced(_PointingGame)
SpatialMAP = rank_synced(_SpatialMAP)
IoUPointing = rank_synced(_IoUPointing)
VideoMAP = rank_synced(_VideoMAP)
TemporalAlignment = rank_synced(_TemporalAlignment)
