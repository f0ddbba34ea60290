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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from stg_lightning.errors import StgUserError
from stg_lightning.eval.cli import load_model
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.inference import InferenceConfig, predict_dataset
from stg_lightning.eval.predictions import Predictions, write_predictions
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import ScoringConfig, oracle_predictions, score_predictions
from stg_lightning.lit_module import GroundingModule
from stg_lightning.report.baselines import (
    CHANCE_BY_AREA,
    MOTION_ENERGY,
    RANDOM_OBJECT,
    UNIFORM_SPLIT,
    text_blind_rows,
)
from stg_lightning.report.figures import (
    overlay_samples,
    plot_heatmap_overlays,
    plot_timelines,
    plot_training_curves,
)
from stg_lightning.report.markdown import write_report

if TYPE_CHECKING:
    from stg_lightning.demo import Stages

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


def untrained_model(trained: GroundingModule, backbone: Path, seed: int, aligned: bool) -> GroundingModule:
    """Same configuration and frozen pretrained backbone as `trained`, heads at initialisation: aligned
    (both sides' projections start equal, model/init.py: the backbone's zero-shot grounding) or plain
    independent random projections (text-blind in effect)."""
    hparams = {k: v for k, v in trained.hparams.items() if not k.startswith("_")}
    hparams["backbone"] = {**hparams["backbone"], "pretrained": str(backbone)}
    for head in ("global_head", "local_head"):
        hparams[head] = {**hparams[head], "aligned_init": aligned}
    torch.manual_seed(seed)
    return GroundingModule(**hparams).eval()


def load_models(stages: Stages) -> dict[str, GroundingModule]:
    """The three models the report scores, loaded once for all splits."""
    trained = load_model(stages.checkpoint("grounding"), "cpu")
    return {
        "trained": trained,
        "untrained": untrained_model(trained, stages.backbone, stages.cfg.seed, aligned=False),
        "zero_shot": untrained_model(trained, stages.backbone, stages.cfg.seed, aligned=True),
        "global_only": load_model(stages.checkpoint("global_only"), "cpu"),
    }


def eval_section(cls: type[T], section: dict[str, Any], name: str) -> T:
    """A config dataclass from a section of the demo config's `eval`, naming the bad key if any."""
    try:
        return cls(**section)
    except TypeError as err:
        raise StgUserError(f"demo config eval.{name}: {err}; keys are {cls.__name__} fields") from err


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
    stages: Stages, models: dict[str, GroundingModule], split: str, dataset: EvalDataset, videos: Path
) -> dict[str, Predictions]:
    """Every model row's predictions: the demo's readout for all models, plus the paper's for the trained one."""
    ev = stages.cfg.eval
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
    stages: Stages, models: dict[str, GroundingModule], split: str
) -> tuple[dict[str, dict[str, float]], EvalDataset, Predictions]:
    root = stages.synth_dir
    dataset = load_dataset(split, root / ANNOTATIONS[split])
    videos = root / "eval" / split / "videos"
    predictions = model_rows(stages, models, split, dataset, videos)
    scoring = eval_section(ScoringConfig, stages.cfg.eval.get("scoring", {}), "scoring")
    rows = {name: score_predictions(dataset, preds, scoring) for name, preds in predictions.items()}
    rows.update(text_blind_rows(dataset, videos_dir=videos, meta=root / "meta.json", scoring=scoring))
    out = stages.out / "eval"
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


def log_to_wandb(stages: Stages, rows: list[dict[str, Any]], figures: dict[str, Path]) -> None:
    """The report's table and figures as a W&B run (offline unless WANDB_MODE says otherwise)."""
    mode = os.environ.get("WANDB_MODE", "offline")
    if mode == "disabled":
        return
    import wandb

    run = wandb.init(
        project="stg-lightning", name="demo-report", group="demo", dir=str(stages.out), mode=mode
    )
    columns = ["name", *COLUMNS]
    run.log(
        {
            "demo/metrics": wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows]),
            **{f"demo/{caption}": wandb.Image(str(path)) for caption, path in figures.items()},
        }
    )
    run.finish()


def evaluate_and_report(stages: Stages) -> Path:
    results, datasets, trained = {}, {}, {}
    models = load_models(stages)
    for split in stages.cfg.eval["splits"]:
        print(f"[demo] evaluate {split} ...", flush=True)
        results[split], datasets[split], trained[split] = evaluate_split(stages, models, split)
    report_dir = Path(stages.cfg.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    runs = stages.out / "runs"
    figures = {
        "Training curves (grounding model and global-only ablation)": plot_training_curves(
            {name: runs / name / "metrics.csv" for name in ("grounding", "global_only")},
            report_dir / "training_curves.png",
        )
    }
    if "gyt" in datasets:
        gyt, videos = datasets["gyt"], stages.synth_dir / "eval" / "gyt" / "videos"
        samples = overlay_samples(gyt, trained["gyt"], videos, n=8, seed=stages.cfg.seed)
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
    probe = stages.backbone.with_suffix(stages.backbone.suffix + ".json")
    notes = [
        f"seed {stages.cfg.seed}; config `configs/demo.yaml`; outputs under `{stages.out}`",
        "stage timings (s, this invocation): " + ", ".join(f"{k} {v:.0f}" for k, v in stages.timings.items()),
        "text-blind rows fill only the columns they can answer; '—' elsewhere. Pointing = trimmed pointing "
        "game (GT seconds + GT step as query).",
        f"{UNTRAINED_ROW} = the trained model's configuration and frozen pretrained backbone, heads at a "
        "plain random initialisation (independent projections: text-blind in effect). "
        f"{ZERO_SHOT_ROW} = the same heads at the aligned initialisation training starts from "
        "(model/init.py): both modalities start in the backbone's joint space, so this row is the "
        "pretrained backbone's own zero-shot grounding (the paper's CLIP row), not a text-blind row.",
        "readouts: " + "; ".join(f"{k} = `{v}`" for k, v in readout_summary(stages.cfg.eval).items()),
    ]
    if probe.exists():
        notes.append(backbone_note(probe))
    report = write_report(
        report_dir, "stg-lightning demo: synthetic narrated benchmark", rows, COLUMNS, figures, notes
    )
    (report_dir / "metrics.json").write_text(json.dumps(results, indent=1))
    log_to_wandb(stages, rows, figures)
    return report
