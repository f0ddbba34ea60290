"""Time all GroundingYouTube metrics over the 250 videos from oracle predictions → JSON.

    .venv/bin/python benchmarks/bench_eval.py [--heat 7] [--threads 2] [--out bench_eval.json]

``--heat h`` replaces the oracle points/boxes with an h×h heat grid per second (the box painted on
the grid), exercising the streamed upsample → argmax / threshold → integral-image path.
Peak memory is the process's maximum resident set size (includes the torch import).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import numpy as np
import torch

from stg_lightning.eval.baselines.oracle import oracle_predictions
from stg_lightning.eval.loaders import load_gyt, shared_data_root
from stg_lightning.eval.predictions import Predictions
from stg_lightning.eval.scoring import score_predictions


def heat_oracle(predictions: Predictions, grid: int, frame_size: tuple[int, int]) -> None:
    """Swap each oracle point/box for a grid×grid heat map that is 1 on the cells the box covers."""
    w, h = frame_size
    for video in predictions.values():
        for p in video.frames:
            heat = np.zeros((grid, grid), dtype=np.float32)
            if p.box is not None:
                c1, c2 = (int(np.clip(v / w * grid, 0, grid - 1)) for v in (p.box[0], p.box[2]))
                r1, r2 = (int(np.clip(v / h * grid, 0, grid - 1)) for v in (p.box[1], p.box[3]))
                heat[r1 : r2 + 1, c1 : c2 + 1] = 1.0
            p.heat, p.point, p.box = heat / max(heat.sum(), 1.0), None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heat", type=int, default=0, help="heat grid size (0: oracle points and boxes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    dataset = load_gyt(shared_data_root() / "groundingyoutube" / "GoundingYouTubeBox.json")
    predictions = oracle_predictions(dataset)
    if args.heat:
        heat_oracle(predictions, args.heat, dataset.records[0].frame_size)
    prepared = time.perf_counter()
    metrics = score_predictions(dataset, predictions)
    done = time.perf_counter()

    result = {
        "benchmark": "gyt_all_metrics_oracle",
        "spatial_input": f"heat {args.heat}x{args.heat}" if args.heat else "points+boxes",
        "videos": len(dataset.records),
        "boxed_seconds": int(dataset.report.counts["boxed_seconds"]),
        "threads": args.threads,
        "load_and_build_s": round(prepared - start, 3),
        "scoring_s": round(done - prepared, 3),
        "wall_s": round(done - start, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "targets": {"wall_s": 60, "peak_rss_mb": 2048},
        "metrics": metrics,
        "host": platform.node(),
        "torch": torch.__version__,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
