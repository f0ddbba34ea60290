"""`stg eval`: score a predictions file, or run a checkpoint (or zero-shot CLIP) on a dataset and score it.

    stg eval --config configs/eval/gyt.yaml --ckpt runs/x/latest/checkpoints/last.ckpt --videos data/gyt/videos
    stg eval --dataset gyt --predictions glip.json --out reports/glip_gyt.json
    stg eval --dataset myt --annotations runs/synth/eval/myt/annotations --ckpt last.ckpt --inference.theta=0.3

Settings are `EvalConfig` keys (`inference:` / `scoring:` sections), loaded like every tool's
(`stg_lightning.config`, the syntax of `stg fit`): defaults, then `--config` files left to right, then
`--key=value` flags (`--frame_size=[640,480]`, `--inference.median_window=5`). `--predictions`, `--ckpt`,
`--zero_shot`, `--save_predictions`, `--device` and `--mode` (= `--inference.mode`) are flags of the run,
not config. `--videos` defaults to a `videos` folder next to the annotations (the synthetic layout); a
synthetic split's frame size is read from its `meta.json` (see `stg_lightning.eval.datasets`).

Stored settings (`stg_lightning.eval.settings`): a checkpoint (`--ckpt`) or predictions file
(`--predictions`) that carries the `inference` / `scoring` settings its numbers were made with starts from
them: dataclass defaults < the stored settings < `--config` files < `--key=value` flags. `stg eval` prints a
line when it does, naming any stored value a config file or flag changed. Every results JSON and every
`--save_predictions` file records the settings used (`settings`: both sections, dataset, source,
code_version).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ArgumentParser, Namespace

from stg_lightning.config import Parsed, parse
from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.rows import uniform_split_row
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.predictions import (
    Predictions,
    PredictionsError,
    read_predictions,
    write_predictions,
)
from stg_lightning.eval.readout import InferenceConfig, scored_dataset, zero_shot_readout
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import BOOKKEEPING, DATASET_METRICS, ScoringConfig, score_predictions
from stg_lightning.eval.settings import SECTIONS, SOURCES, describe_stored, eval_settings, parse_over_stored

# Counts, not metrics: kept in the JSON, left out of the table.


@dataclass
class EvalConfig:
    """What `stg eval` evaluates; every field is a YAML key and a flag (`--max_videos=5`)."""

    dataset: str = "gyt"
    annotations: str | None = None  # None = the released files under shared_data_root()
    videos: str | None = None  # None = <annotations folder>/videos when it exists
    frame_size: tuple[int, int] | None = (
        None  # (w, h); None = meta.json of a synthetic split, else the dataset's
    )
    lenient: bool = False
    clip_to_frame: bool = False
    max_videos: int | None = None  # first N videos only (quick looks)
    out: str | None = None  # results JSON
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)


def _flags(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--predictions", type=str | None, default=None, help="score this predictions file (.json/.npz)"
    )
    parser.add_argument("--ckpt", type=str | None, default=None, help="run this GroundingModule checkpoint")
    parser.add_argument(
        "--zero_shot",
        type=str | None,
        default=None,
        help="raw open_clip model MODEL[:TAG], e.g. ViT-B-32:openai",
    )
    parser.add_argument(
        "--save_predictions", type=str | None, default=None, help="write the model's predictions (.json/.npz)"
    )
    parser.add_argument("--device", type=str, default="auto", help="auto | cpu | cuda | cuda:1 ...")
    parser.add_argument(
        "--mode",
        type=Literal["untrimmed", "clip"] | None,
        default=None,
        help="= --inference.mode (clip = Table 7 single-action clips)",
    )


def _parse(argv: list[str]) -> Parsed:
    return parse(
        EvalConfig,
        argv,
        prog="stg eval",
        description="Spatio-temporal grounding evaluation on GYT / MYT / YC-Inter (docs/evaluation.md §5). "
        "Give one of --predictions, --ckpt, --zero_shot. A checkpoint's or predictions file's stored "
        "inference/scoring settings are the defaults; --config files and flags override them.",
        extra=_flags,
    )


def parse_args(argv: list[str] | None = None) -> Parsed:
    """(EvalConfig: defaults, the source's stored settings, --config files, --key=value flags; the run's
    flags: predictions, ckpt, zero_shot, save_predictions, device, mode, and `stored`: the
    `StoredSettings` used, or None)."""
    return parse_over_stored(_parse, sys.argv[1:] if argv is None else argv, SECTIONS)


def build_config(argv: list[str] | None = None) -> EvalConfig:
    """The EvalConfig `stg eval` would use for these arguments (e.g. ["--config", FILE, "--inference.theta=0.3"])."""
    return parse_args(argv or []).config


def resolve_videos(cfg: EvalConfig, annotations: str | None) -> Path:
    """`--videos`, or `<annotations folder>/videos` / `<annotations parent>/videos` when present."""
    if cfg.videos is not None:
        path = Path(cfg.videos)
        if not path.is_dir():
            raise StgUserError(f"--videos {path}: folder not found (videos or <second>.jpg frame folders)")
        return path
    if annotations is not None:
        ann = Path(annotations)
        for candidate in ([ann / "videos"] if ann.is_dir() else []) + [ann.parent / "videos"]:
            if candidate.is_dir():
                return candidate
    raise StgUserError(
        "--videos is required to run a model (folder of <video_id>.mp4 or <video_id>/<second>.jpg)"
    )


def baselines(dataset: EvalDataset, scoring: ScoringConfig) -> dict[str, dict[str, float]]:
    """Text-blind rows for context (the temporal uniform split where the dataset is scored temporally)."""
    if "temporal" not in DATASET_METRICS.get(dataset.name, ()):
        return {}
    return {"text_blind": uniform_split_row(dataset, scoring)}


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """Rows (model, baselines) × metric columns, '-' where a row lacks a metric."""
    columns = list(dict.fromkeys(k for row in rows.values() for k in row if k not in BOOKKEEPING))
    width = max(len(name) for name in rows)
    lines = [" ".join([" " * width, *(f"{c:>{max(len(c), 8)}}" for c in columns)])]
    for name, row in rows.items():
        cells = [
            f"{row[c]:>{max(len(c), 8)}.4f}" if c in row else f"{'-':>{max(len(c), 8)}}" for c in columns
        ]
        lines.append(" ".join([f"{name:<{width}}", *cells]))
    return "\n".join(lines)


def input_warnings(metrics: dict[str, float]) -> list[str]:
    """What the scored file did not cover, one line each (the counts are in the results JSON too)."""
    count = {k: int(metrics.get(k, 0)) for k in BOOKKEEPING}
    lines = []
    if count["videos_without_predictions"]:
        lines.append(
            f"{count['videos_without_predictions']} of {count['videos']} videos have no predictions "
            "(scored as all background)"
        )
    if count["length_mismatch_videos"]:
        lines.append(
            f"{count['length_mismatch_videos']} videos' num_frames differ from the annotation "
            "(the annotated length is scored; missing seconds are background)"
        )
    if count["ignored_predictions"]:
        lines.append(f"{count['ignored_predictions']} frames entries lie past their video's end (ignored)")
    if count["trimmed_unanswered"]:
        lines.append(
            f"{count['trimmed_unanswered']} of {count['trimmed_seconds']} trimmed seconds have no answer for "
            "their GT query (no grounding entry, no frames entry of that label) and score as misses; "
            "--scoring.trimmed_fallback=any_label reads the frames entry whatever its label"
        )
    return lines


def run_settings(cfg: EvalConfig, args: Namespace) -> dict[str, Any]:
    """The settings record of this run (eval/settings.py): both sections as used, the dataset, the source,
    whether they started from the source's stored settings, the code version."""
    if args.ckpt:
        source = {"checkpoint": args.ckpt}
    elif args.predictions:
        source = {"predictions": args.predictions}
    else:
        source = {"zero_shot": args.zero_shot}
    stored = getattr(args, "stored", None) is not None
    return eval_settings(cfg.inference, cfg.scoring, dataset=cfg.dataset, **source, stored_settings=stored)


def _predict(args: Namespace, cfg: EvalConfig, dataset: EvalDataset) -> Predictions:
    """Run a model on the dataset's videos (the model stack is imported here: scoring a file never needs it)."""
    from stg_lightning.eval.inference import PartialPredictionsError, predict_dataset
    from stg_lightning.eval.models import load_model, resolve_device, zero_shot_model

    videos = resolve_videos(cfg, cfg.annotations or dataset.report.source)  # fail before loading the model
    device = resolve_device(args.device)
    if args.zero_shot:
        model = zero_shot_model(args.zero_shot, device)
        cfg.inference = zero_shot_readout(cfg.inference)
    else:
        model = load_model(args.ckpt, device)
    try:
        predictions = predict_dataset(
            model, dataset, videos, cfg.inference, progress=True, lenient=cfg.lenient
        )
    except PartialPredictionsError as err:
        if args.save_predictions and err.predictions:  # keep what was predicted before the failure
            path = Path(args.save_predictions)
            partial = path.with_name(f"{path.stem}.partial{path.suffix}")
            write_predictions(err.predictions, partial, run_settings(cfg, args))
            raise StgUserError(f"{err} (those predictions are in {partial})") from err
        raise
    if args.save_predictions:
        write_predictions(predictions, args.save_predictions, run_settings(cfg, args))
        print(f"stg eval: wrote predictions to {args.save_predictions}")
    return predictions


def run(cfg: EvalConfig, args: Namespace) -> dict[str, Any]:
    """Load, predict or read, score; returns the results dict (also written to `out` when set)."""
    cfg.scoring.lenient = cfg.lenient
    if args.mode is not None:
        cfg.inference.mode = args.mode
    stored = getattr(args, "stored", None)
    if stored is not None:
        for line in stored.warnings:
            print(f"stg eval: warning: {line}", file=sys.stderr)
        print(f"stg eval: {describe_stored(stored, cfg, '--inference.*/--scoring.*')}")
    dataset = load_dataset(cfg.dataset, cfg.annotations, cfg.frame_size, cfg.lenient, cfg.clip_to_frame)
    if cfg.max_videos is not None:
        dataset.records = dataset.records[: cfg.max_videos]
    start = time.perf_counter()
    try:
        predictions = read_predictions(args.predictions) if args.predictions else _predict(args, cfg, dataset)
        target = scored_dataset(dataset, cfg.inference.mode)
        metrics = score_predictions(target, predictions, cfg.scoring)
    except PredictionsError as err:
        raise StgUserError(str(err)) from err
    results = {
        "dataset": cfg.dataset,
        "mode": cfg.inference.mode,
        "annotations": dataset.report.source,
        "model": args.predictions or args.ckpt or f"zero-shot {args.zero_shot}",
        "metrics": metrics,
        "baselines": baselines(target, cfg.scoring),
        "dataset_report": dataset.report.counts,
        "seconds": time.perf_counter() - start,
        "config": asdict(cfg),
        "settings": run_settings(cfg, args),
    }
    print(format_table({"model": metrics, **results["baselines"]}))
    for line in input_warnings(metrics):
        print(f"stg eval: warning: {line}", file=sys.stderr)
    if cfg.out:
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"stg eval: wrote {out}")
    return results


def main(argv: list[str] | None = None) -> int:
    try:
        cfg, args = parse_args(argv)
        given = [f"--{name}" for name in SOURCES if getattr(args, name)]
        if len(given) != 1:
            raise StgUserError(
                f"give exactly one of --predictions, --ckpt, --zero_shot (got {', '.join(given) or 'none'})"
            )
        if args.save_predictions and args.predictions:
            raise StgUserError("--save_predictions needs --ckpt or --zero_shot")
        run(cfg, args)
    except StgUserError as err:
        print(f"stg eval: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
