"""Cost of scoring GroundingYouTube: `stg eval --predictions` on seeded prediction sets → JSON.

    .venv/bin/python benchmarks/bench_eval.py [--seed 0] [--work bench_results/eval_sets] [--out eval.json]

Each set of ``prediction_sets.py`` (250 real GYT videos, a 7×7 heat grid per predicted second) is written
as JSON (heat inline) and as NPZ, and scored by a fresh ``stg eval`` process under ``/usr/bin/time``:
wall seconds and peak resident memory of the whole command (interpreter start, imports, reading the
annotations and the file, all metrics). In-process phase times (reading, each metric) come beside it.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from prediction_sets import prediction_sets

from stg_lightning.eval.loaders import load_gyt, shared_data_root
from stg_lightning.eval.predictions import read_predictions, write_predictions
from stg_lightning.eval.scoring import DATASET_METRICS, ScoringConfig, score_predictions

TARGETS = {"wall_s": 10.0, "peak_rss_mb": 1024.0}
# Scoring options per set: the frames-only file is scored under both trimmed-query rules.
OPTIONS = {"frames_only": [{}, {"trimmed_fallback": "any_label"}]}


def timed_eval(path: Path, options: dict[str, str], out: Path) -> dict:
    """Wall seconds, peak RSS and metrics of one `stg eval` process."""
    cmd = [sys.executable, "-m", "stg_lightning", "eval", "--dataset", "gyt", "--predictions", str(path)]
    cmd += [f"--scoring.{k}={v}" for k, v in options.items()] + ["--out", str(out)]
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    wall, rss_kb = proc.stderr.strip().splitlines()[-1].split()
    metrics = json.loads(out.read_text())["metrics"]
    return {"wall_s": float(wall), "peak_rss_mb": round(int(rss_kb) / 1024, 1), "metrics": metrics}


def phase_times(dataset, path: Path, options: dict[str, str]) -> dict[str, float]:
    """In-process seconds: reading the file, then each metric scored on its own."""
    start = time.perf_counter()
    preds = read_predictions(path)
    phases = {"read_s": time.perf_counter() - start}
    cfg = ScoringConfig(**options)
    for name in DATASET_METRICS["gyt"]:
        start = time.perf_counter()
        score_predictions(dataset, preds, cfg, metrics=(name,))
        phases[f"{name}_s"] = time.perf_counter() - start
    return {k: round(v, 3) for k, v in phases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="folder for the prediction files (default: a temp dir)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()

    dataset = load_gyt(shared_data_root() / "groundingyoutube" / "GoundingYouTubeBox.json")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_eval_"))
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for name, preds in prediction_sets(dataset, args.seed).items():
        for suffix in (".json", ".npz"):
            path = work / f"{name}{suffix}"
            write_predictions(preds, path)
            for options in OPTIONS.get(name, [{}]):
                run = timed_eval(path, options, work / f"{name}{suffix}.results.json")
                run.update(
                    set=name,
                    format=suffix[1:],
                    options=options,
                    file_mb=round(path.stat().st_size / 2**20, 1),
                    phases=phase_times(dataset, path, options),
                )
                print(
                    f"{name:28s} {suffix[1:]:4s} {json.dumps(options):36s} wall {run['wall_s']:5.1f} s  "
                    f"peak {run['peak_rss_mb']:6.0f} MB  {run['phases']}",
                    flush=True,
                )
                runs.append(run)
    result = {
        "benchmark": "gyt_all_metrics_prediction_sets",
        "videos": len(dataset.records),
        "seed": args.seed,
        "targets": TARGETS,
        "within_targets": all(
            r["wall_s"] <= TARGETS["wall_s"] and r["peak_rss_mb"] <= TARGETS["peak_rss_mb"] for r in runs
        ),
        "runs": runs,
        "host": platform.node(),
        "cpu_count": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(f"within targets: {result['within_targets']}" + (f"; wrote {args.out}" if args.out else ""))


if __name__ == "__main__":
    main()
