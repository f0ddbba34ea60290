"""Evaluation and report stage of `stg demo`: every row scored by the same code on the synthetic eval splits.

Rows: the trained model read out two ways (the demo's readout, `eval.inference` in configs/demo.yaml, and
the paper's, `eval.paper_inference`: frame token under the global head for *when*, local-head attention
rollout for *where*), chance by area, random object, motion energy (text-blind), the untrained model (same
frozen backbone, plain random heads), the backbone's zero-shot grounding (heads at the aligned
initialisation training starts from), the global-only model (local loss off), and the oracle (ground
truth as predictions). MYT's text-blind row is the uniform split. Every model row but the paper readout
uses the demo's readout, so rows differ only in their weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import torch

from stg_lightning.config import from_dict
from stg_lightning.eval.baselines.oracle import oracle_predictions
from stg_lightning.eval.baselines.rows import (
    CHANCE_BY_AREA,
    MOTION_ENERGY,
    RANDOM_OBJECT,
    UNIFORM_SPLIT,
    text_blind_rows,
)
from stg_lightning.eval.cli import load_model
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.inference import InferenceConfig, predict_dataset
from stg_lightning.eval.predictions import Predictions, write_predictions
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import ScoringConfig, score_predictions
from stg_lightning.model import GroundingModel
from stg_lightning.report.figures import (
    overlay_samples,
    plot_heatmap_overlays,
    plot_timelines,
    plot_training_curves,
)
from stg_lightning.report.markdown import write_report

ANNOTATIONS = {
    "gyt": "eval/gyt/GoundingYouTubeBox.json",
    "myt": "eval/myt/annotations",
    "yc_inter": "eval/yc_inter",
}
# Report columns: (split, metric key) → header.
COLUMNS = {
    "gyt/pointing": "GYT pointing",
    "gyt/iou_pointing": "GYT IoU+Pointing",
    "gyt/video_map@0.3": "GYT vmAP@0.3",
    "gyt/video_map": "GYT vmAP mean",
    "yc_inter/pointing": "YC-Inter pointing",
    "myt/temporal_iou": "MYT IoU",
    "myt/temporal_iod": "MYT IoD",
    "myt/temporal_mof": "MYT MoF",
}
T = TypeVar("T")
TRAINING_RUNS = ("grounding", "global_only")
PAPER_READOUT_ROW = "trained model, paper readout (frame token + rollout)"
UNTRAINED_ROW = "untrained model (random-init heads)"
ZERO_SHOT_ROW = "backbone zero-shot (untrained aligned heads)"
ROW_ORDER = [
    "trained model",
    PAPER_READOUT_ROW,
    CHANCE_BY_AREA,
    RANDOM_OBJECT,
    MOTION_ENERGY,
    UNIFORM_SPLIT,
    UNTRAINED_ROW,
    ZERO_SHOT_ROW,
    "global-only model",
    "oracle",
]


@dataclass(frozen=True)
class ReportInputs:
    """Everything the evaluation and report stage reads; `stg demo` builds it from its stages."""

    out: Path  # the demo's working folder (results go to <out>/eval, the W&B run under it)
    synth_dir: Path  # the `stg synth` output: eval/<split>/ annotations, videos and objects.json
    backbone: Path  # the pretrained backbone; `stg pretrain` writes its summary to <backbone>.json
    checkpoints: dict[str, Path]  # training run (TRAINING_RUNS) → its last checkpoint
    metrics: dict[str, Path]  # training run → its metrics.csv (training curves)
    report_dir: Path
    seed: int
    eval: dict[str, Any]  # the demo config's `eval` section (readouts, scoring, splits)
    timings: dict[str, float]  # seconds per stage run in this invocation (a report note)


def untrained_model(trained: GroundingModel, backbone: Path, seed: int, aligned: bool) -> GroundingModel:
    """Same configuration and frozen pretrained backbone as `trained`, heads at initialisation: aligned
    (both sides' projections start equal, model/init.py: the backbone's zero-shot grounding) or plain
    independent random projections (text-blind in effect)."""
    torch.manual_seed(seed)
    return GroundingModel(
        replace(trained.backbone_cfg, pretrained=str(backbone)),
        trained.selector.cfg,
        replace(trained.global_head.cfg, aligned_init=aligned),
        replace(trained.local_head.cfg, aligned_init=aligned),
    ).eval()


def load_models(inputs: ReportInputs) -> dict[str, GroundingModel]:
    """The three models the report scores, loaded once for all splits."""
    trained = load_model(inputs.checkpoints["grounding"], "cpu")
    return {
        "trained": trained,
        "untrained": untrained_model(trained, inputs.backbone, inputs.seed, aligned=False),
        "zero_shot": untrained_model(trained, inputs.backbone, inputs.seed, aligned=True),
        "global_only": load_model(inputs.checkpoints["global_only"], "cpu"),
    }


def eval_section(cls: type[T], section: dict[str, Any], name: str) -> T:
    """A config dataclass from a section of the demo config's `eval` (checked by the one config loader,
    `stg_lightning.config`), naming the bad key if any."""
    return from_dict(cls, section, f"demo config eval.{name}")


def readout_summary(ev: dict[str, Any]) -> dict[str, str]:
    """The two readouts and the scoring settings, as the report prints them."""
    short = ("temporal", "spatial", "normalise", "theta", "median_window")
    out = {
        name: ", ".join(f"{k}={ev[key][k]}" for k in short if k in ev[key])
        for name, key in (("trained model", "inference"), ("paper readout", "paper_inference"))
    }
    out["scoring"] = ", ".join(f"{k}={v}" for k, v in ev.get("scoring", {}).items())
    return out


def backbone_note(summary_file: Path) -> str:
    """One report line on the pretrained backbone from the summary `stg pretrain` wrote next to it."""
    summary = json.loads(summary_file.read_text())
    probe = summary["probe"]["pretrained"]
    parts = [f"{summary['steps']} steps in {summary['train_seconds']:.0f} s"]
    parts += [f"zero-shot {k.replace('_', ' ')} {v:.3f}" for k, v in probe.items()]
    if "verb_choice_chance" in summary:
        parts.append(f"verb choice chance {summary['verb_choice_chance']:.2f}")
    return f"backbone pretraining (`{summary_file}`): " + ", ".join(parts)


def model_rows(
    inputs: ReportInputs, models: dict[str, GroundingModel], split: str, dataset: EvalDataset, videos: Path
) -> dict[str, Predictions]:
    """Every model row's predictions: the demo's readout for all models, plus the paper's for the trained one."""
    ev = inputs.eval
    readouts = {
        "demo": eval_section(InferenceConfig, ev["inference"], "inference"),
        "paper": eval_section(InferenceConfig, ev["paper_inference"], "paper_inference"),
    }
    if split == "myt":  # temporal only
        readouts = {k: replace(v, heatmaps=False) for k, v in readouts.items()}
    return {
        "trained model": predict_dataset(models["trained"], dataset, videos, readouts["demo"]),
        PAPER_READOUT_ROW: predict_dataset(models["trained"], dataset, videos, readouts["paper"]),
        UNTRAINED_ROW: predict_dataset(models["untrained"], dataset, videos, readouts["demo"]),
        ZERO_SHOT_ROW: predict_dataset(models["zero_shot"], dataset, videos, readouts["demo"]),
        "global-only model": predict_dataset(models["global_only"], dataset, videos, readouts["demo"]),
        "oracle": oracle_predictions(dataset),
    }


def evaluate_split(
    inputs: ReportInputs, models: dict[str, GroundingModel], split: str
) -> tuple[dict[str, dict[str, float]], EvalDataset, Predictions]:
    root = inputs.synth_dir
    dataset = load_dataset(split, root / ANNOTATIONS[split])
    videos = root / "eval" / split / "videos"
    predictions = model_rows(inputs, models, split, dataset, videos)
    scoring = eval_section(ScoringConfig, inputs.eval.get("scoring", {}), "scoring")
    rows = {name: score_predictions(dataset, preds, scoring) for name, preds in predictions.items()}
    objects = root / "eval" / split / "objects.json"
    rows.update(text_blind_rows(dataset, videos_dir=videos, objects=objects, scoring=scoring))
    out = inputs.out / "eval"
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(predictions["trained model"], out / f"{split}_trained_predictions.json")
    (out / f"{split}.json").write_text(json.dumps({"dataset": split, "rows": rows}, indent=1))
    return rows, dataset, predictions["trained model"]


def table_rows(results: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    names = [n for n in ROW_ORDER if any(n in rows for rows in results.values())]
    table = []
    for name in names:
        row: dict[str, Any] = {"name": name}
        for column in COLUMNS:
            split, metric = column.split("/")
            value = results.get(split, {}).get(name, {}).get(metric)
            if value is not None:
                row[column] = value
        table.append(row)
    return table


def log_to_wandb(inputs: ReportInputs, rows: list[dict[str, Any]], figures: dict[str, Path]) -> None:
    """The report's table and figures as a W&B run (offline unless WANDB_MODE says otherwise)."""
    mode = os.environ.get("WANDB_MODE", "offline")
    if mode == "disabled":
        return
    import wandb

    run = wandb.init(
        project="stg-lightning", name="demo-report", group="demo", dir=str(inputs.out), mode=mode
    )
    columns = ["name", *COLUMNS]
    run.log(
        {
            "demo/metrics": wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows]),
            **{f"demo/{caption}": wandb.Image(str(path)) for caption, path in figures.items()},
        }
    )
    run.finish()


def evaluate_and_report(inputs: ReportInputs) -> Path:
    results, datasets, trained = {}, {}, {}
    models = load_models(inputs)
    for split in inputs.eval["splits"]:
        print(f"[demo] evaluate {split} ...", flush=True)
        results[split], datasets[split], trained[split] = evaluate_split(inputs, models, split)
    report_dir = inputs.report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "Training curves (grounding model and global-only ablation)": plot_training_curves(
            {name: inputs.metrics[name] for name in TRAINING_RUNS},
            report_dir / "training_curves.png",
        )
    }
    if "gyt" in datasets:
        gyt, videos = datasets["gyt"], inputs.synth_dir / "eval" / "gyt" / "videos"
        samples = overlay_samples(gyt, trained["gyt"], videos, n=8, seed=inputs.seed)
        figures["Heatmaps of the trained model (GT box green, predicted point)"] = plot_heatmap_overlays(
            samples, report_dir / "heatmaps_gyt.png"
        )
        ids = [r.video_id for r in gyt.records[:4]]
        figures["GYT-format timelines: GT steps vs predicted steps"] = plot_timelines(
            gyt, trained["gyt"], ids, report_dir / "timelines_gyt.png"
        )
    if "myt" in datasets:
        myt = datasets["myt"]
        figures["MYT-format timelines: GT vs Viterbi alignment of the trained model"] = plot_timelines(
            myt,
            trained["myt"],
            [r.video_id for r in myt.records[:4]],
            report_dir / "timelines_myt.png",
            aligned=True,
        )
    rows = table_rows(results)
    probe = inputs.backbone.with_suffix(inputs.backbone.suffix + ".json")
    notes = [
        f"seed {inputs.seed}; config `configs/demo.yaml`; outputs under `{inputs.out}`",
        "stage timings (s, this invocation): " + ", ".join(f"{k} {v:.0f}" for k, v in inputs.timings.items()),
        "text-blind rows fill only the columns they can answer; '—' elsewhere. Pointing = trimmed pointing "
        "game (GT seconds + GT step as query).",
        f"{UNTRAINED_ROW} = the trained model's configuration and frozen pretrained backbone, heads at a "
        "plain random initialisation (independent projections: text-blind in effect). "
        f"{ZERO_SHOT_ROW} = the same heads at the aligned initialisation training starts from "
        "(model/init.py): both modalities start in the backbone's joint space, so this row is the "
        "pretrained backbone's own zero-shot grounding (the paper's CLIP row), not a text-blind row.",
        "readouts: " + "; ".join(f"{k} = `{v}`" for k, v in readout_summary(inputs.eval).items()),
    ]
    if probe.exists():
        notes.append(backbone_note(probe))
    report = write_report(
        report_dir, "stg-lightning demo: synthetic narrated benchmark", rows, COLUMNS, figures, notes
    )
    (report_dir / "metrics.json").write_text(json.dumps(results, indent=1))
    log_to_wandb(inputs, rows, figures)
    return report
