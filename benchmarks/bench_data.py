"""Data pipeline throughput → JSON: DataModule clips/s (decode + augment + collate, 2 workers) vs raw PyAV
window decoding of the same clips, and shard reading with cached tokens vs JPEG frames.

    python benchmarks/bench_data.py --out bench_results/data.json [--videos N --seconds S --size WxH]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from results import write_result

from stg_lightning.backbones import InputSpec, OpenClipConfig, build_backbone
from stg_lightning.data.cache_tokens import cache_tokens
from stg_lightning.data.captions import clip_window, load_captions
from stg_lightning.data.datamodule import ShardDataModule
from stg_lightning.data.prepare import PrepareConfig, write_shards
from stg_lightning.data.video import VideoReader, sample_times, write_video


def make_corpus(root: Path, videos: int, seconds: int, size: tuple[int, int], fps: int) -> None:
    """Moving-gradient videos with one 2 s sentence every 4 s."""
    (root / "videos").mkdir(parents=True)
    rng = np.random.default_rng(0)
    captions = {}
    for v in range(videos):
        base = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        frames = (np.roll(base, 2 * i, axis=1) for i in range(seconds * fps))
        write_video(root / "videos" / f"vid{v:03d}.mp4", frames, fps=fps)
        starts = list(range(0, seconds - 2, 4))
        captions[f"vid{v:03d}"] = {
            "start": starts,
            "end": [s + 2 for s in starts],
            "text": ["stir the pot"] * len(starts),
        }
    (root / "caption.json").write_text(json.dumps(captions))


def raw_decode_rate(cfg: PrepareConfig) -> float:
    """Clips/s decoding each sentence window with PyAV (RGB, resized), no JPEG, one process."""
    captions = load_captions(cfg.captions)
    clips, start = 0, time.perf_counter()
    for vid, sentences in captions.items():
        with VideoReader(Path(cfg.videos) / f"{vid}.mp4", cfg.short_side) as reader:
            for s in sentences:
                window = clip_window(s.start, s.end, cfg.min_time)
                reader.frames_at(sample_times(*window, cfg.fps, cfg.num_frames))
                clips += 1
    return clips / (time.perf_counter() - start)


def loader_rate(dm: ShardDataModule, epochs: int = 2) -> tuple[float, float]:
    """(clips/s, MB/s of batch tensors) over `epochs` passes after one warm-up batch."""
    loader = dm.train_dataloader()
    iterator = iter(loader)
    next(iterator)  # workers started, first shards opened
    clips = nbytes = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        for batch in iterator if epoch == 0 else loader:
            batch = dm.on_after_batch_transfer(dm.on_before_batch_transfer(batch, 0), 0)
            clips += batch.size
            nbytes += sum(v.numel() * v.element_size() for v in batch.values() if isinstance(v, torch.Tensor))
    elapsed = time.perf_counter() - start
    return clips / elapsed, nbytes / elapsed / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench_results/data.json")
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument(
        "--image-size", type=int, default=64, help="crop side (the tiny backbone's input size)"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=2)
    args = parser.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_corpus(root, args.videos, args.seconds, (width, height), fps=25)
        cfg = PrepareConfig(
            videos=str(root / "videos"), captions=str(root / "caption.json"), out=str(root / "shards"),
            fps=4.0, num_frames=args.num_frames, min_time=args.num_frames / 4.0, short_side=args.image_size,
            shard_size=10, workers=args.num_workers,
        )  # fmt: skip
        start = time.perf_counter()
        summary = write_shards(cfg, progress=False)
        prepare_s = time.perf_counter() - start
        clips = summary["sentences_written"]
        raw = raw_decode_rate(cfg)
        common = dict(batch_size=args.batch_size, num_workers=args.num_workers, num_frames=args.num_frames,
                      inputs=InputSpec(image_size=args.image_size), shuffle_buffer=32, epoch_length=clips)  # fmt: skip
        jpeg_rate, jpeg_mb = loader_rate(ShardDataModule(str(root / "shards" / "clips-*.tar"), **common))
        backbone = build_backbone(OpenClipConfig(model_name="stg-tiny-vit", pretrained=None))
        shards = sorted((root / "shards").glob("clips-*.tar"))
        cache_tokens(shards, root / "tokens", backbone, progress=False)
        cached_dm = ShardDataModule(str(root / "tokens" / "clips-*.tar"), use_cached_tokens=True, **common)
        cached_rate, cached_mb = loader_rate(cached_dm)
        shard_mb = {
            d: sum(p.stat().st_size for p in (root / d).glob("*.tar")) / 1e6 for d in ("shards", "tokens")
        }
    result = {
        "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads()},
        "setup": {**vars(args), "clips": clips, "fps": cfg.fps},
        "prepare_clips_per_s": clips / prepare_s,
        "raw_pyav_window_decode_clips_per_s": raw,
        "datamodule_jpeg_clips_per_s": jpeg_rate,
        "datamodule_jpeg_batch_MB_per_s": jpeg_mb,
        "datamodule_cached_tokens_clips_per_s": cached_rate,
        "datamodule_cached_tokens_batch_MB_per_s": cached_mb,
        "shard_MB": shard_mb,
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
