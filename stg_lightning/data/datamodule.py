"""ShardDataModule: streams clip shards (local paths, brace patterns, globs, `.txt` shard lists such as
`stg prepare-merge`'s, or any URL webdataset opens: `pipe:`, `s3://` through its gopen) with
per-rank/per-worker shard splitting or resampling, a shuffle buffer, decoding + augmentation +
tokenisation in the workers, and padded, masked batches.

Epochs are nominal: every rank steps exactly workers · ceil(epoch_length / (world_size·batch_size·workers))
batches, repeating its shards when it runs out, so DDP ranks never wait on each other at the end of an epoch.
Unreadable samples are skipped in the workers, counted, logged to the trainer's loggers and capped by
`max_skip_rate`; a worker that fails `max_failed_reads` reads in a row without a batch stops the run (every
shard unreadable would otherwise loop forever when resampling, or end an epoch with no step).
Training batches are a pure function of (seed, epoch, rank, worker slot) and the loader's position is in
every checkpoint, so a resumed run continues with the batch it would have drawn (data/resumable.py).
"""

from __future__ import annotations

import importlib
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import partial
from itertools import islice

import lightning as L
import open_clip
import torch
import webdataset as wds
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from stg_lightning.backbones.config import InputSpec
from stg_lightning.data.batch import ClipBatch
from stg_lightning.data.resumable import ResumableLoader, ResumableStream, reader_slot
from stg_lightning.data.shards import SkipCounter, check_split, count_samples, expand_shards, shard_urls
from stg_lightning.data.transforms import ClipAugment, collate_clips, decode_clip
from stg_lightning.errors import StgUserError


class Tokenizer:
    """open_clip tokenizer built on first use, so DataLoader workers receive a cheap picklable object."""

    def __init__(self, model_name: str, context_length: int) -> None:
        self.model_name, self.context_length = model_name, context_length
        self._tokenizer: Callable | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tokenizer": None}

    def __call__(self, texts: list[str]) -> Tensor:
        if self._tokenizer is None:
            if self.model_name not in open_clip.list_models():
                importlib.import_module("stg_lightning.backbones")  # registers the project's tiny configs
            self._tokenizer = open_clip.get_tokenizer(self.model_name, context_length=self.context_length)
        return self._tokenizer(texts)


def tar_samples(urls: Iterator[str], counter: SkipCounter) -> Iterator[dict]:
    """The samples of the shards `urls` names; unreadable shards and members are counted, not raised."""
    return wds.tarfile_to_samples(handler=counter.handler)({"url": url} for url in urls)


def decode_stage(samples: Iterator[dict], decode: Callable, counter: SkipCounter) -> Iterator[dict]:
    """Decode samples, counting (not raising) failures; a sample's augmentation draws from its own seed."""
    for sample in samples:
        try:
            yield decode(sample, rng=random.Random(sample.pop("__seed__", 0)))
        except Exception as exn:
            counter.record(exn)


def video_group_stage(samples: Iterator[dict], group_size: int) -> Iterator[list[dict]]:
    """Consecutive samples of one video (shards hold a video's clips in a row; the key is
    `<video>__<sentence>`) in groups of at most `group_size`, so a shuffle keeps each group together."""
    group: list[dict] = []
    group_video = None
    for sample in samples:
        video = str(sample.get("__key__", "")).rpartition("__")[0]
        if group and (len(group) == group_size or video != group_video):
            yield group
            group = []
        group.append(sample)
        group_video = video
    if group:
        yield group


def flatten_stage(groups: Iterator[list[dict]]) -> Iterator[dict]:
    for group in groups:
        yield from group


def no_batch_error(counter: SkipCounter) -> StgUserError:
    last = counter.reasons[-1] if counter.reasons else "no samples"
    return StgUserError(
        f"data: a pass over the shards gave no batch; {counter.skipped} read(s) failed "
        f"(last: {last}): check the shards (re-run `stg prepare`)"
    )


def batch_stage(
    clips: Iterator[dict], batch_size: int, collate: Callable, counter: SkipCounter, partial_batches: bool
) -> Iterator[ClipBatch]:
    """Group clips into collated batches that also carry how many samples were skipped before them."""

    def emit(buffer: list[dict]) -> ClipBatch:
        batch = collate(buffer)
        batch.skipped, batch.skip_reasons = counter.take()
        return batch

    buffer: list[dict] = []
    emitted = False
    for clip in clips:
        buffer.append(clip)
        if len(buffer) == batch_size:
            yield emit(buffer)
            buffer, emitted = [], True
    if buffer and partial_batches:
        yield emit(buffer)
        emitted = True
    if not emitted and counter.skipped:  # a whole pass over this reader's shards, nothing readable
        raise no_batch_error(counter)


class ClipStream(ResumableStream):
    """One rank's training batches from clip shards: `batches_per_slot` per reader slot and epoch.

    A slot reads its shards pass after pass; shard order, shuffle and each sample's augmentation seed are
    drawn from generators seeded by (seed, rank, slot, epoch). A resume skips the samples of the batches
    already delivered before decoding them (exact unless one of them was unreadable).
    """

    def __init__(
        self,
        urls: list[str],
        rank: int,
        world_size: int,
        slots: int,
        batches_per_slot: int,
        hparams: dict,
        decode: Callable,
        collate: Callable,
    ) -> None:
        super().__init__()
        self.urls, self.rank, self.world_size = urls, rank, world_size
        self.slots, self.batches_per_slot = slots, batches_per_slot
        self.hp = dict(hparams)
        self.decode, self.collate = decode, collate

    def __len__(self) -> int:
        return self.batches_per_slot * self.slots

    def shuffled(self, samples: Iterator[dict], rng: random.Random) -> Iterator[dict]:
        """One pass's samples through the shuffle buffer (a video's groups of clips kept whole)."""
        hp = self.hp
        group = hp["clips_per_video"]
        if hp["shuffle_buffer"] <= 1:
            return samples
        bufsize = max(2, hp["shuffle_buffer"] // group)
        if group == 1:
            return wds.shuffle(bufsize, initial=bufsize // 2, rng=rng)(samples)
        groups = wds.shuffle(bufsize, initial=bufsize // 2, rng=rng)(video_group_stage(samples, group))
        return flatten_stage(groups)

    def samples(self, seed: str, slot: int, slots: int, counter: SkipCounter) -> Iterator[dict]:
        """Raw samples of one slot, pass after pass, each pass shuffled; each sample carries the seed of
        its augmentation (drawn in read order, so a sample's crop does not depend on the shuffle)."""
        shard_rng, shuffle_rng, sample_rng = (random.Random(f"{seed}-{part}") for part in ("shards", "shuffle", "augment"))  # fmt: skip

        def one_pass() -> Iterator[dict]:
            order = shard_urls(self.urls, self.rank, self.world_size, slot, slots, self.hp["resample"], shard_rng)  # fmt: skip
            for sample in tar_samples(order, counter):
                sample["__seed__"] = sample_rng.getrandbits(64)
                yield sample

        while True:
            read = 0
            for sample in self.shuffled(one_pass(), shuffle_rng):
                read += 1
                yield sample
            if not read:
                raise no_batch_error(counter)

    def slot_batches(self, epoch: int, slot: int, slots: int, skip: int) -> Iterator[ClipBatch]:
        hp = self.hp
        counter = SkipCounter(max_failed_reads=hp["max_failed_reads"])
        samples = self.samples(f"{hp['seed']}-{self.rank}-{slot}-{epoch}", slot, slots, counter)
        clips = decode_stage(islice(samples, skip * hp["batch_size"], None), self.decode, counter)
        batches = batch_stage(clips, hp["batch_size"], self.collate, counter, partial_batches=False)
        return islice(batches, max(0, self.batches_per_slot - skip))


class HeldOutStream(IterableDataset):
    """Each held-out sample once over all ranks and workers, in order, in batches (the last may be short)."""

    def __init__(
        self, urls: list[str], rank: int, world_size: int, batch_size: int, max_failed_reads: int,
        decode: Callable, collate: Callable,
    ) -> None:  # fmt: skip
        super().__init__()
        self.urls, self.rank, self.world_size, self.batch_size = urls, rank, world_size, batch_size
        self.max_failed_reads, self.decode, self.collate = max_failed_reads, decode, collate

    def __iter__(self) -> Iterator[ClipBatch]:
        slot, slots = reader_slot()
        counter = SkipCounter(max_failed_reads=self.max_failed_reads)
        samples = tar_samples(iter(self.urls[self.rank :: self.world_size][slot::slots]), counter)
        clips = decode_stage(samples, self.decode, counter)
        yield from batch_stage(clips, self.batch_size, self.collate, counter, partial_batches=True)


def distributed_info(trainer: L.Trainer | None) -> tuple[int, int]:
    """(rank, world_size) from the trainer, else torch.distributed, else (0, 1)."""
    if trainer is not None:
        return trainer.global_rank, trainer.world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class SkipMonitor:
    """Running count of delivered vs skipped samples; stops the run past `max_rate` (after `min_samples`)."""

    def __init__(self, max_rate: float, min_samples: int) -> None:
        self.max_rate, self.min_samples = max_rate, min_samples
        self.delivered = self.skipped = 0

    @property
    def rate(self) -> float:
        return self.skipped / max(1, self.delivered + self.skipped)

    def update(self, delivered: int, skipped: int, reasons: list[str]) -> None:
        self.delivered += delivered
        self.skipped += skipped
        if skipped:
            rank_zero_warn(f"data: skipped {skipped} unreadable sample(s), e.g. {reasons[0]}")
        if self.delivered + self.skipped >= self.min_samples and self.rate > self.max_rate:
            last = reasons[-1] if reasons else "?"
            raise StgUserError(
                f"data: {self.skipped} of {self.delivered + self.skipped} samples unreadable "
                f"({self.rate:.1%} > data.max_skip_rate={self.max_rate:.1%}); last error: {last}."
                " Check the shards (re-run `stg prepare`) or raise data.max_skip_rate"
            )


class ShardDataModule(L.LightningDataModule):
    """Clip shards from `stg prepare` → batches (see docs/architecture.md, "Batches").

    `epoch_length` counts samples per epoch summed over all ranks (None: the number of training samples in
    the shards' summary.json). `val_shards` None with `val_holdout_shards` k > 0 holds out the last k
    training shards for validation. Without `resample`, every rank reads its own shards (rank::world_size),
    so ranks see disjoint samples. With `use_cached_tokens` the shards must come from
    `stg prepare --cache-tokens` (`<out>/tokens/`) and batches carry backbone tokens instead of frames.
    `clips_per_video` k > 1 keeps up to k clips of one video next to each other through the shuffle, so a
    training batch holds B / k videos with k clips each: in-video negatives, which share the scene and differ
    in what is done when (docs/method.md §1, §5); 1 = independent clips, as the paper samples.
    After transfer to the device, frames are CLIP-normalised float32 and cached tokens float32.
    """

    def __init__(
        self,
        train_shards: str | list[str] = "data/shards/clips-*.tar",
        val_shards: str | list[str] | None = None,
        val_holdout_shards: int = 0,
        batch_size: int = 64,
        num_workers: int = 4,
        num_frames: int = 80,
        inputs: InputSpec | None = None,
        random_crop: bool = True,
        flip_prob: float = 0.0,
        shuffle_buffer: int = 1000,
        epoch_length: int | None = None,
        resample: bool = False,
        seed: int = 0,
        max_skip_rate: float = 0.01,
        skip_check_after: int = 1000,
        max_failed_reads: int = 200,
        use_cached_tokens: bool = False,
        clips_per_video: int = 1,
    ) -> None:
        super().__init__()
        self.inputs = inputs or InputSpec()
        # Plain types only in hparams: checkpoints stay loadable with weights_only=True.
        self.save_hyperparameters(ignore=["inputs"])
        self.hparams["inputs"] = asdict(self.inputs)
        self.tokenizer = (
            Tokenizer(self.inputs.tokenizer, self.inputs.context_length) if self.inputs.tokenizer else None
        )
        self.skips = SkipMonitor(max_skip_rate, skip_check_after)
        if clips_per_video < 1 or clips_per_video > batch_size:
            raise StgUserError(
                f"data.clips_per_video must be in [1, batch_size={batch_size}], got {clips_per_video}"
            )

    def shard_lists(self) -> tuple[list[str], list[str]]:
        """(train, val) shard URLs, validated."""
        hp = self.hparams
        train = expand_shards(hp.train_shards, "data.train_shards")
        if hp.val_shards is not None:
            return train, expand_shards(hp.val_shards, "data.val_shards")
        if hp.val_holdout_shards <= 0:
            return train, []
        if hp.val_holdout_shards >= len(train):
            raise StgUserError(
                f"data.val_holdout_shards={hp.val_holdout_shards} leaves no training shard of {len(train)}"
            )
        return train[: -hp.val_holdout_shards], train[-hp.val_holdout_shards :]

    def _codec(self, train: bool) -> tuple[Callable, Callable]:
        """(decode, collate) of training or held-out samples."""
        hp = self.hparams
        augment = ClipAugment(
            self.inputs.image_size, hp.num_frames, hp.random_crop and train, hp.flip_prob * train
        )
        decode = partial(decode_clip, augment=augment, use_cached_tokens=hp.use_cached_tokens)
        return decode, partial(collate_clips, num_frames=hp.num_frames, tokenizer=self.tokenizer)

    def train_dataset(self, rank: int, world_size: int) -> ClipStream:
        """The training stream of one rank, a fixed number of batches per epoch (testable without DDP)."""
        hp = self.hparams
        train, _ = self.shard_lists()
        if not hp.resample:
            check_split(len(train), world_size, hp.num_workers, "data.train_shards")
        epoch_length = hp.epoch_length or count_samples(train)
        if not epoch_length:
            raise StgUserError(
                "data.epoch_length is not set and the shards have no summary.json with sample counts"
                " (remote or hand-made shards): set data.epoch_length to the samples per epoch"
            )
        slots = max(1, hp.num_workers)
        per_slot = math.ceil(epoch_length / (world_size * hp.batch_size * slots))
        return ClipStream(train, rank, world_size, slots, per_slot, dict(hp), *self._codec(train=True))

    def val_dataset(self, rank: int, world_size: int, num_workers: int) -> HeldOutStream:
        """Each held-out sample once over all ranks (ranks may get different batch counts)."""
        hp = self.hparams
        _, val = self.shard_lists()
        check_split(len(val), world_size, num_workers, "data.val_shards")
        return HeldOutStream(
            val, rank, world_size, hp.batch_size, hp.max_failed_reads, *self._codec(train=False)
        )

    def _loader_options(self, num_workers: int) -> dict:
        return {
            "batch_size": None,
            "num_workers": num_workers,
            "persistent_workers": num_workers > 0,
            "pin_memory": torch.cuda.is_available(),
        }

    def train_dataloader(self) -> ResumableLoader:
        rank, world_size = distributed_info(self.trainer)
        dataset = self.train_dataset(rank, world_size)
        return ResumableLoader(dataset, **self._loader_options(self.hparams.num_workers))

    def val_dataloader(self) -> DataLoader | list:
        _, val = self.shard_lists()
        if not val:
            return []
        rank, world_size = distributed_info(self.trainer)
        workers = min(self.hparams.num_workers, len(val) // world_size)
        return DataLoader(self.val_dataset(rank, world_size, workers), **self._loader_options(workers))

    def test_dataloader(self) -> DataLoader | list:
        """`stg test` / `stg predict` read the held-out (validation) clips."""
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader | list:
        return self.val_dataloader()

    def on_before_batch_transfer(self, batch: ClipBatch, dataloader_idx: int) -> ClipBatch:
        self.skips.update(batch.size, batch.skipped, batch.skip_reasons)
        if batch.skipped and self.trainer is not None:
            metrics = {"data/skipped_samples": float(self.skips.skipped), "data/skip_rate": self.skips.rate}
            for logger in self.trainer.loggers:
                logger.log_metrics(metrics, step=self.trainer.global_step)
        return batch
