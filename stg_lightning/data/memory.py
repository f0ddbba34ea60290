"""In-memory smoke-test DataModule: random frames and sentences from a word list, no files needed.

It exists so the whole training loop (`make train EXP=smoke`) runs end to end on a CPU without shards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict

import lightning as L
import open_clip
import torch
from torch.utils.data import DataLoader, Dataset

from stg_lightning import backbones  # noqa: F401  (registers the tiny open_clip configs the tokenizer needs)
from stg_lightning.backbones.config import InputSpec
from stg_lightning.data.batch import ClipBatch
from stg_lightning.data.datamodule import distributed_info
from stg_lightning.data.resumable import ResumableLoader, ResumableStream

DEFAULT_WORDS = ("crack", "egg", "pour", "milk", "stir", "batter", "flip", "pancake", "cut", "banana")


class RandomClipDataset(Dataset):
    """`length` clips of random frames, each with a random sentence; deterministic per index."""

    def __init__(
        self, length: int, num_frames: int, image_size: int, words: tuple[str, ...], seed: int
    ) -> None:
        self.length, self.num_frames, self.image_size = length, num_frames, image_size
        self.words, self.seed = words, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, object]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        frames = torch.randn(self.num_frames, 3, self.image_size, self.image_size, generator=g)
        picks = torch.randint(len(self.words), (int(torch.randint(2, 6, (1,), generator=g)),), generator=g)
        return {
            "frames": frames,
            "frame_mask": torch.ones(self.num_frames, dtype=torch.bool),
            "timestamps": torch.arange(self.num_frames, dtype=torch.float32),
            "text": " ".join(self.words[i] for i in picks.tolist()),
            "video_id": f"random_{index:06d}",
        }


class RandomClipStream(ResumableStream):
    """An epoch's training batches of a `RandomClipDataset`: its indices in an order drawn from (seed, epoch),
    this rank's share (equal on every rank), in full batches; slot s of n makes batches s, s + n, ..."""

    def __init__(
        self, dataset: RandomClipDataset, batch_size: int, rank: int, world_size: int, collate: Callable
    ) -> None:
        super().__init__()
        self.dataset, self.batch_size, self.collate = dataset, batch_size, collate
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return len(self.dataset) // self.world_size // self.batch_size

    def slot_batches(self, epoch: int, slot: int, slots: int, skip: int) -> Iterator[ClipBatch]:
        g = torch.Generator().manual_seed(self.dataset.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.dataset), generator=g)[self.rank :: self.world_size]
        b = self.batch_size
        for start in range(slot * b, len(self) * b, slots * b)[skip:]:
            yield self.collate([self.dataset[int(i)] for i in order[start : start + b]])


class MemoryDataModule(L.LightningDataModule):
    """Random clips for smoke runs; the batch layout is the one the shard DataModule produces."""

    def __init__(
        self,
        inputs: InputSpec | None = None,
        num_frames: int = 8,
        batch_size: int = 8,
        train_size: int = 64,
        val_size: int = 16,
        num_workers: int = 0,
        words: tuple[str, ...] = DEFAULT_WORDS,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.inputs = inputs or InputSpec(image_size=64, tokenizer="stg-tiny-vit", context_length=32)
        self.save_hyperparameters(ignore=["inputs"])
        self.hparams["inputs"] = asdict(self.inputs)
        spec = self.inputs
        self.tokenizer = (
            open_clip.get_tokenizer(spec.tokenizer, context_length=spec.context_length)
            if spec.tokenizer
            else None
        )

    def _collate(self, samples: list[dict[str, object]]) -> ClipBatch:
        texts = [s["text"] for s in samples]
        return ClipBatch(
            frames=torch.stack([s["frames"] for s in samples]),
            frame_mask=torch.stack([s["frame_mask"] for s in samples]),
            timestamps=torch.stack([s["timestamps"] for s in samples]),
            text_ids=None if self.tokenizer is None else self.tokenizer(texts),
            text=texts,
            video_id=[s["video_id"] for s in samples],
        )

    def _dataset(self, size: int, seed: int) -> RandomClipDataset:
        hp = self.hparams
        return RandomClipDataset(size, hp.num_frames, self.inputs.image_size, tuple(hp.words), seed)

    def train_dataloader(self) -> ResumableLoader:
        hp = self.hparams
        rank, world_size = distributed_info(self.trainer)
        stream = RandomClipStream(
            self._dataset(hp.train_size, hp.seed), hp.batch_size, rank, world_size, self._collate
        )
        return ResumableLoader(stream, batch_size=None, num_workers=hp.num_workers)

    def val_dataloader(self) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            self._dataset(hp.val_size, hp.seed + 1),
            batch_size=hp.batch_size,
            num_workers=hp.num_workers,
            collate_fn=self._collate,
            drop_last=True,
        )

    def test_dataloader(self) -> DataLoader | list:
        """`stg test` / `stg predict` read the held-out (validation) clips."""
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader | list:
        return self.val_dataloader()
