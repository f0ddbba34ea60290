"""Training streams a resume can skip into, and the DataLoader that records how far it got.

A `ResumableStream` makes the batches of an epoch as a pure function of (seed, epoch, rank, slot): with n
DataLoader workers, slot s makes batches s, s+n, s+2n, ... of the epoch, because the DataLoader asks its
workers in turn, worker 0 first. `ResumableLoader` counts the batches it delivered; Lightning stores that
position in every checkpoint (its stateful-loader protocol, `state_dict` / `load_state_dict`), and the first
epoch of a resumed run starts at the next batch: each worker takes the slot whose turn it is and skips the
batches that slot already gave. Nothing else (the worker seeds the DataLoader draws, how many workers ran
before) changes what a batch holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader, IterableDataset, get_worker_info


def reader_slot() -> tuple[int, int]:
    """(this DataLoader worker, workers), (0, 1) in the main process."""
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


class ResumableStream(IterableDataset):
    """Base of the training streams: subclasses give `__len__` (batches per epoch) and `slot_batches`."""

    def __init__(self) -> None:
        super().__init__()
        # (epoch, batches of it already delivered) where the next `__iter__` starts.
        self.position = (0, 0)

    def slot_batches(self, epoch: int, slot: int, slots: int, skip: int) -> Iterator[Any]:
        """Batches slot, slot + slots, ... of `epoch`, after the first `skip` of them."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        epoch, delivered = self.position
        # A persistent worker calls __iter__ once per epoch on its own copy: it keeps count itself.
        self.position = (epoch + 1, 0)
        worker, workers = reader_slot()
        slot = (worker + delivered) % workers
        yield from self.slot_batches(epoch, slot, workers, skip=len(range(slot, delivered, workers)))


class ResumableLoader(DataLoader):
    """A DataLoader over a `ResumableStream` whose position (epoch, batches delivered) is checkpointed."""

    def __init__(self, dataset: ResumableStream, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self._epoch, self._delivered, self._started = 0, 0, False

    def __iter__(self) -> Iterator[Any]:
        # A generator: the position moves when batches are drawn, not when Lightning calls iter() ahead.
        if self._started:  # every later iteration is the next epoch
            self._epoch, self._delivered = self._epoch + 1, 0
        self._started = True
        self.dataset.position = (self._epoch, self._delivered)
        for batch in super().__iter__():
            self._delivered += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "delivered": self._delivered}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, delivered = int(state["epoch"]), int(state["delivered"])
        if delivered >= len(self):  # saved at the end of an epoch: resume at the next one
            epoch, delivered = epoch + 1, 0
        self._epoch, self._delivered, self._started = epoch, delivered, False
