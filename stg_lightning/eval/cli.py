"""`stg eval`: score a predictions file, or run a checkpoint (or zero-shot CLIP) on a dataset and score it.

    stg eval --config configs/eval/gyt.yaml --ckpt runs/x/checkpoints/last.ckpt --videos data/gyt/videos
    stg eval --dataset gyt --predictions glip.json --out reports/glip_gyt.json
    stg eval --dataset myt --annotations runs/synth/eval/myt/annotations --ckpt last.ckpt inference.theta=0.3

Settings come from the YAML (`--config`, keys of `EvalConfig` with `inference:` / `scoring:` sections),
then from `KEY=VALUE` overrides (e.g. `inference.median_window=5`), then from the flags. `--videos`
defaults to a `videos` folder next to the annotations (the synthetic layout); a synthetic split's frame
size is read from its `meta.json` (see `stg_lightning.eval.datasets`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from stg_lightning.backbones import BackboneConfig
from stg_lightning.errors import StgUserError
from stg_lightning.eval.datasets import DATASETS, load_dataset
from stg_lightning.eval.inference import InferenceConfig, predict_dataset, scored_dataset
from stg_lightning.eval.predictions import Predictions, PredictionsError, read_predictions, write_predictions
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import DATASET_METRICS, ScoringConfig, score_predictions, text_blind_baseline
from stg_lightning.lit_module import GroundingModule

# Counts, not metrics: kept in the JSON, left out of the table.
BOOKKEEPING = ("videos", "unknown_videos", "ignored_predictions")


@dataclass
class EvalConfig:
    """What `stg eval` evaluates; every field is a YAML key, most also a flag."""

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


def _dataclass_from(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise StgUserError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise StgUserError(f"{where}: {err}") from err


def build_config(config: str | None, overrides: list[str]) -> EvalConfig:
    """EvalConfig from an optional YAML file and `KEY=VALUE` overrides (dotted keys for sections)."""
    values: dict[str, Any] = {}
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise StgUserError(f"--config {path}: file not found")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise StgUserError(f"--config {path}: expected a mapping of EvalConfig keys")
    try:
        merged = OmegaConf.merge(OmegaConf.create(values), OmegaConf.from_dotlist(overrides))
    except OmegaConfBaseException as err:
        raise StgUserError(f"bad override in {overrides}: {err}") from err
    values = OmegaConf.to_container(merged)
    where = config or "overrides"
    sections = {"inference": InferenceConfig, "scoring": ScoringConfig}
    for key, cls in sections.items():
        section = values.pop(key, None) or {}
        if "video_thresholds" in section:
            section["video_thresholds"] = tuple(section["video_thresholds"])
        values[key] = _dataclass_from(cls, section, f"{where}: {key}")
    if values.get("frame_size") is not None:
        values["frame_size"] = tuple(values["frame_size"])
    return _dataclass_from(EvalConfig, values, where)


def load_model(ckpt: str | Path, device: str) -> GroundingModule:
    """A GroundingModule from a Lightning checkpoint; backbone weights come from the checkpoint itself
    (no pretrained download is attempted)."""
    path = Path(ckpt)
    if not path.is_file():
        raise StgUserError(f"--ckpt {path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        hparams = dict(checkpoint["hyper_parameters"])
        hparams["backbone"] = {**hparams.get("backbone", {}), "pretrained": None, "s3d_checkpoint": None}
        model = GroundingModule(**hparams)
        model.load_state_dict(checkpoint["state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError) as err:
        raise StgUserError(f"--ckpt {path}: not a GroundingModule checkpoint ({err})") from err
    return model.to(device).eval()


def zero_shot_model(spec: str, device: str) -> GroundingModule:
    """`MODEL[:TAG]` → a GroundingModule whose backbone is that open_clip model (heads unused)."""
    name, _, tag = spec.partition(":")
    return GroundingModule(backbone=BackboneConfig(model_name=name, pretrained=tag or None)).to(device).eval()


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
    return {"text_blind": text_blind_baseline(dataset, scoring)}


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


def _device(name: str) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def _predict(args: argparse.Namespace, cfg: EvalConfig, dataset: EvalDataset) -> Predictions:
    videos = resolve_videos(cfg, cfg.annotations or dataset.report.source)  # fail before loading the model
    device = _device(args.device)
    if args.zero_shot:
        model = zero_shot_model(args.zero_shot, device)
        cfg.inference.raw_features, cfg.inference.spatial = True, "patch_similarity"
    else:
        model = load_model(args.ckpt, device)
    predictions = predict_dataset(
        model, dataset, videos, cfg.inference, progress=sys.stderr.isatty(), lenient=cfg.lenient
    )
    if args.save_predictions:
        write_predictions(predictions, args.save_predictions)
        print(f"stg eval: wrote predictions to {args.save_predictions}")
    return predictions


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load, predict or read, score; returns the results dict (also written to `out` when set)."""
    cfg = build_config(args.config, args.overrides)
    for key in ("dataset", "annotations", "videos", "frame_size", "max_videos", "out"):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    cfg.lenient = cfg.lenient or args.lenient
    cfg.scoring.lenient = cfg.lenient
    if args.mode is not None:
        cfg.inference.mode = args.mode
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
    }
    print(format_table({"model": metrics, **results["baselines"]}))
    if cfg.out:
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"stg eval: wrote {out}")
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stg eval",
        description="Spatio-temporal grounding evaluation on GYT / MYT / YC-Inter (DESIGN §5).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="score this predictions file (.json/.npz) from any model")
    source.add_argument("--ckpt", help="run this GroundingModule checkpoint")
    source.add_argument(
        "--zero-shot", metavar="MODEL[:TAG]", help="raw open_clip model, e.g. ViT-B-32:openai"
    )
    parser.add_argument("--config", help="YAML with EvalConfig keys (configs/eval/<dataset>.yaml)")
    parser.add_argument("--dataset", choices=DATASETS)
    parser.add_argument("--annotations", help="annotation file/folder (default: the released files)")
    parser.add_argument("--frame-size", type=int, nargs=2, metavar=("W", "H"), dest="frame_size")
    parser.add_argument("--videos", help="folder of <video_id>.mp4 or <video_id>/<second>.jpg")
    parser.add_argument("--save-predictions", help="write the model's predictions here (.json/.npz)")
    parser.add_argument("--mode", choices=("untrimmed", "clip"), help="clip = Table 7 single-action clips")
    parser.add_argument("--lenient", action="store_true", help="skip and count bad entries / missing videos")
    parser.add_argument("--max-videos", type=int, dest="max_videos")
    parser.add_argument("--out", help="results JSON")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. inference.theta=0.3")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.save_predictions and args.predictions:
        print("stg eval: error: --save-predictions needs --ckpt or --zero-shot", file=sys.stderr)
        return 2
    try:
        run(args)
    except StgUserError as err:
        print(f"stg eval: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
