"""torch.distributed helpers: rank/world that work without a process group, and gathers across ranks.

`within_rank()` turns the gathers off: scores are then computed within each rank's batch, with no
collective, so ranks may hold different numbers or sizes of batches (held-out clips split by shard).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor

_within_rank = False


@contextmanager
def within_rank() -> Iterator[None]:
    """Inside: `world_size()` is 1 and `rank()` 0, so the model's gathers are identities."""
    global _within_rank
    previous, _within_rank = _within_rank, True
    try:
        yield
    finally:
        _within_rank = previous


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and not _within_rank


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate every rank's `tensor` along dim 0, keeping autograd; identity without a process group.

    The backward sums each rank's gradient wrt the gathered copy into the owner's input, so a tensor's
    gradient on its rank is d(Σ_ranks loss_r)/d tensor. All ranks must pass the same shape (drop_last).
    """
    if world_size() == 1:
        return tensor
    return torch.cat(dist_fn.all_gather(tensor), dim=0)


def gather_no_grad(tensor: Tensor) -> Tensor:
    """Concatenate every rank's `tensor` along dim 0 without autograd (masks; bool goes as uint8 for gloo)."""
    if world_size() == 1:
        return tensor
    wire = tensor.to(torch.uint8) if tensor.dtype == torch.bool else tensor.contiguous()
    parts = [torch.empty_like(wire) for _ in range(world_size())]
    dist.all_gather(parts, wire)
    return torch.cat(parts, dim=0).to(tensor.dtype)
