"""WebDataset shard files: atomic writing, listing/validation of shard patterns, rank-aware shard streams.

A sample is a group of tar members sharing a key: `KEY.json` (metadata) plus either `KEY.000.jpg`,
`KEY.001.jpg`, ... (frames) or the cached-token arrays `KEY.frame_global.npy`, ... (see cache_tokens.py).
"""

from __future__ import annotations

import glob
import io
import json
import os
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import webdataset as wds

from stg_lightning.errors import StgUserError

SUMMARY_NAME = "summary.json"


class ShardWriter:
    """Writes a tar shard to `<path>.tmp`, renamed on `close()`: a killed run leaves no partial shard.

    Members get fixed metadata (mtime 0, root owner) so rerunning the same input gives byte-identical shards.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp_path = self.path.with_name(self.path.name + ".tmp")
        self._tar = tarfile.open(self.tmp_path, "w")  # noqa: SIM115 (closed in close())
        self.count = 0

    def add(self, key: str, files: dict[str, bytes]) -> None:
        """Add one sample: `files` maps extensions (e.g. "json", "000.jpg") to contents."""
        for ext, data in files.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            self._tar.addfile(info, io.BytesIO(data))
        self.count += 1

    def close(self) -> None:
        self._tar.close()
        os.replace(self.tmp_path, self.path)


class TruncatedShardError(tarfile.ReadError):
    """A shard that ends inside a member or before the end-of-archive blocks: samples were lost."""

    def __init__(self, path: str | Path, why: str) -> None:
        super().__init__(
            f"{path}: truncated shard ({why}), samples are missing; rewrite it (stg prepare --overwrite)"
        )


def _check_complete(tar: tarfile.TarFile, path: str | Path) -> None:
    """TruncatedShardError unless the last member's data and the two zero blocks closing a tar follow.

    tarfile stops without a word at a header cut short, so a shard cut between members reads as a
    smaller, valid one; every finished tar (ShardWriter's included) ends in 2 x 512 zero bytes.
    """
    members = tar.getmembers()
    end = 0
    if members:
        last = members[-1]
        end = last.offset_data + -(-last.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    tar.fileobj.seek(end)
    if tar.fileobj.read(2 * tarfile.BLOCKSIZE) != bytes(2 * tarfile.BLOCKSIZE):
        raise TruncatedShardError(path, f"no end-of-archive blocks after member {len(members)}")


def iter_shard(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) for each sample of a local shard, in file order.

    A truncated shard raises TruncatedShardError (after the samples before the cut)."""
    key, files = None, {}
    with tarfile.open(path, "r") as tar:
        try:
            for member in tar:
                if not member.isreg():
                    continue
                name_key, _, ext = member.name.partition(".")
                if name_key != key and files:
                    yield key, files
                    files = {}
                key = name_key
                files[ext] = tar.extractfile(member).read()
        except tarfile.ReadError as err:  # "unexpected end of data": cut inside a member
            raise TruncatedShardError(path, str(err)) from err
        _check_complete(tar, path)  # before the last sample: a cut right after it may have lost members
    if files:
        yield key, files


def count_shard_samples(path: str | Path) -> int:
    """Samples in a local shard, from its member headers (one `.json` per sample); TruncatedShardError if
    the file is cut short (its count would be too small)."""
    with tarfile.open(path, "r") as tar:
        try:
            names = tar.getnames()
        except tarfile.ReadError as err:  # "unexpected end of data": cut inside a member
            raise TruncatedShardError(path, str(err)) from err
        _check_complete(tar, path)
        return sum(name.endswith(".json") for name in names)


def sample_key(video_id: str, sentence_index: int) -> str:
    """Tar key of a clip; WebDataset splits names at the first dot, so dots and slashes are replaced."""
    safe = video_id.replace(".", "_").replace("/", "_")
    return f"{safe}__{sentence_index:05d}"


def is_url(path: str) -> bool:
    """True for anything webdataset's gopen opens other than a local file (pipe:, s3://, http://, ...)."""
    return path.startswith("pipe:") or ("://" in path and not path.startswith("file://"))


def list_file_entries(path: Path) -> list[str]:
    """The entries of a list file: one a line, stripped; blank lines and `#` comments left out (video lists
    of `stg prepare --videos`, shard lists)."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def listed_shards(pattern: str, config_key: str) -> list[str]:
    """The lines of a `.txt` shard list file (`stg prepare-merge` writes `<out>/shards.txt`): paths,
    patterns or URLs, a relative path relative to the file (the folder can move as a whole); any other
    pattern as itself."""
    if not pattern.endswith(".txt") or is_url(pattern):
        return [pattern]
    path = Path(pattern.removeprefix("file://"))
    if not path.is_file():
        raise StgUserError(
            f"{config_key}: shard list {pattern!r} not found (`stg prepare-merge` writes <out>/shards.txt)"
        )
    return [ln if is_url(ln) else str(path.parent / ln) for ln in list_file_entries(path)]


def expand_shards(pattern: str | list[str], config_key: str) -> list[str]:
    """Shard paths/URLs from a brace pattern (`a-{000..009}.tar`, `::`-joined), a local glob, a `.txt`
    shard list file, or a list of these.

    Local files must exist; the error names the pattern, the config key and how to create shards.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    patterns = [line for pat in patterns for line in listed_shards(pat, config_key)]
    urls: list[str] = []
    for pat in patterns:
        for url in wds.shardlists.expand_urls(pat):
            if is_url(url):
                urls.append(url)
            elif glob.has_magic(url):
                urls.extend(sorted(glob.glob(url)))
            else:
                urls.append(url)
    missing = [u for u in urls if not is_url(u) and not Path(u.removeprefix("file://")).is_file()]
    if not urls or missing:
        detail = f"{len(missing)} of {len(urls)} files missing, e.g. {missing[0]}" if missing else "no files"
        raise StgUserError(
            f"{config_key}={pattern!r}: {detail}. Create shards with `stg prepare --config "
            f"configs/data/prepare.yaml` (or `make data`), then point {config_key} at them "
            "(brace patterns like 'data/shards/clips-{000000..000009}.tar' and globs are accepted)."
        )
    return urls


def count_samples(urls: list[str]) -> int | None:
    """Total samples in local shards from the `summary.json` that `stg prepare` writes; None if unknown."""
    total, summaries = 0, {}
    for url in urls:
        if is_url(url):
            return None
        path = Path(url.removeprefix("file://"))
        if path.parent not in summaries:
            summary_file = path.parent / SUMMARY_NAME
            summaries[path.parent] = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        counts = summaries[path.parent].get("shards", {})
        if path.name not in counts:
            return None
        total += counts[path.name]
    return total


@dataclass
class SkipCounter:
    """Samples or shard segments a DataLoader worker could not read since the last batch it emitted."""

    skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    # More failed reads than this before the next batch: nothing readable is left (e.g. every shard is
    # corrupt), and a resampling stream would otherwise retry forever without a word.
    max_failed_reads: int | None = None

    def handler(self, exn: BaseException) -> bool:
        """WebDataset exception handler: count and continue."""
        self.record(exn)
        return True

    def record(self, exn: BaseException) -> None:
        self.skipped += 1
        self.reasons.append(f"{type(exn).__name__}: {str(exn)[:200]}")
        if self.max_failed_reads is not None and self.skipped > self.max_failed_reads:
            raise StgUserError(
                f"data: {self.skipped} reads failed in a row without a batch (last: {self.reasons[-1]}); "
                "the shards are unreadable: check them (re-run `stg prepare`) or raise data.max_failed_reads"
            )

    def take(self) -> tuple[int, list[str]]:
        out = (self.skipped, self.reasons)
        self.skipped, self.reasons = 0, []
        return out


def shard_urls(
    urls: list[str], rank: int, world_size: int, slot: int, slots: int, resample: bool, rng: random.Random
) -> Iterator[str]:
    """One pass over the shards of a rank's reader `slot` (of `slots`), in an order drawn from `rng`.

    With `resample`, an endless stream of shards drawn with replacement; otherwise the shards
    `rank + k * world_size`, split again over the slots, each listed once.
    """
    if resample:
        while True:
            yield rng.choice(urls)
    mine = urls[rank::world_size][slot::slots]
    rng.shuffle(mine)
    yield from mine


def check_split(num_shards: int, world_size: int, num_workers: int, config_key: str) -> None:
    """Without resampling every (rank, worker) needs at least one shard, else it would see no data."""
    readers = world_size * max(1, num_workers)
    if num_shards < readers:
        raise StgUserError(
            f"{config_key} has {num_shards} shards but {world_size} rank(s) x {max(1, num_workers)} worker(s)"
            f" = {readers} readers each need one: write more, smaller shards (`stg prepare --shard-size`),"
            " lower data.num_workers, or set data.resample=true"
        )
