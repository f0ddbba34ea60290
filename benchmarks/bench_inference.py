"""Inference cost per video-minute (decode at 1 fps + backbone + heads + heatmaps) → JSON, and the whole
`stg ground` on the same video (inference + overlay mp4/GIF + viewer copy + timeline + page).

    .venv/bin/python benchmarks/bench_inference.py [--seconds 60] [--size 640 480] [--video-fps 25]
        [--queries 8] [--model stg-tiny-vit] [--embed-dim 32] [--device cpu] [--threads 2] [--out F]

A moving-gradient test video (GYT-like 640×480 at 25 fps by default) is written once to --workdir, then
predicted with the random-init model for each spatial setting. Times are wall seconds per minute of
video; "decode" is PyAV alone at 1 fps. Peak memory is the process's maximum resident set size (the
torch import and model alone are `rss_before_inference_mb`); compare --seconds 60 and 240 to see that it
does not grow with the video.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from stg_lightning.backbones import OpenClipConfig
from stg_lightning.data.video import iter_frames_at_fps, write_video
from stg_lightning.eval.inference import InferenceConfig, predict_video
from stg_lightning.eval.records import Segment, VideoRecord
from stg_lightning.ground import RenderConfig, ground_video
from stg_lightning.model import GlobalHeadConfig, GroundingModel, LocalHeadConfig

SETTINGS = {
    "temporal_only": InferenceConfig(heatmaps=False),
    "rollout": InferenceConfig(),
    "patch_similarity": InferenceConfig(spatial="patch_similarity"),
}


def test_video(path: Path, seconds: int, size: tuple[int, int], fps: int) -> Path:
    """A smooth moving gradient (cheap to encode, realistic to decode) unless it already exists."""
    if path.exists():
        return path
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def frames():
        for i in range(seconds * fps):
            phase = i / fps
            r = 127 + 120 * np.sin(xx / 40 + phase)
            g = 127 + 120 * np.sin(yy / 30 - phase)
            b = np.full_like(xx, 64 + (i % 128))
            yield np.stack([r, g, b], -1).astype(np.uint8)

    write_video(path, frames(), fps)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--video-fps", type=int, default=25)
    parser.add_argument("--queries", type=int, default=8, help="steps in the video's query list")
    parser.add_argument("--model", default="stg-tiny-vit")
    parser.add_argument("--embed-dim", type=int, default=32, help="global/local head width")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="bench_results")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    video = test_video(
        Path(args.workdir) / f"bench_{args.seconds}s_{args.size[0]}x{args.size[1]}.mp4",
        args.seconds,
        tuple(args.size),
        args.video_fps,
    )
    model = GroundingModel(
        OpenClipConfig(model_name=args.model, pretrained=None),
        global_head=GlobalHeadConfig(embed_dim=args.embed_dim),
        local_head=LocalHeadConfig(embed_dim=args.embed_dim, num_heads=4),
    ).to(args.device)
    queries = [f"step number {i} of the recipe" for i in range(args.queries)]
    segments = [Segment(q, q, 5.0 * i, 5.0 * i + 3) for i, q in enumerate(queries)]
    record = VideoRecord("bench", tuple(args.size), args.seconds, segments, queries=queries)

    minutes = args.seconds / 60
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # torch + model, before any video
    start = time.perf_counter()
    decoded = sum(1 for _ in iter_frames_at_fps(video, 1))
    timings = {"decode": (time.perf_counter() - start) / minutes}
    predict_video(model, video, record, InferenceConfig(heatmaps=False))  # warm-up (allocations, vmap)
    for name, cfg in SETTINGS.items():
        start = time.perf_counter()
        predict_video(model, video, record, cfg)
        timings[name] = (time.perf_counter() - start) / minutes
    start = time.perf_counter()
    ground_video(model, video, queries, Path(args.workdir) / "ground", render=RenderConfig())
    timings["stg_ground"] = (time.perf_counter() - start) / minutes

    result = {
        "benchmark": "inference_per_video_minute",
        "video": {
            "seconds": args.seconds,
            "decoded_seconds": decoded,
            "size": list(args.size),
            "fps": args.video_fps,
        },
        "model": {"backbone": args.model, "head_dim": args.embed_dim, "grid": list(model.grid)},
        "queries": args.queries,
        "device": args.device,
        "threads": args.threads,
        "seconds_per_video_minute": {k: round(v, 3) for k, v in timings.items()},
        "rss_before_inference_mb": round(base_rss, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
