"""Evaluation and report stage of `stg demo`: every row scored by the same code on the synthetic eval splits.

Rows: the trained model (heat = attention rollout of its local head, the paper's inference; and again
with the heat read from its global head's patch similarity), chance by area, random object, motion
energy (text-blind), the untrained model (same frozen backbone, random heads), the global-only model
(local loss off; its "where" is the patch similarity under the global head, since its local head never
trained), and the oracle (ground truth as predictions). MYT's text-blind row is the uniform split.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

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
PATCH_SIMILARITY_ROW = "trained model, patch-similarity heat"
ROW_ORDER = [
    "trained model",
    PATCH_SIMILARITY_ROW,
    CHANCE_BY_AREA,
    RANDOM_OBJECT,
    MOTION_ENERGY,
    UNIFORM_SPLIT,
    "untrained model",
    "global-only model",
    "oracle",
]


def untrained_model(trained: GroundingModule, backbone: Path, seed: int) -> GroundingModule:
    """Same configuration and frozen pretrained backbone as `trained`, heads at their random init."""
    hparams = {k: v for k, v in trained.hparams.items() if not k.startswith("_")}
    hparams["backbone"] = {**hparams["backbone"], "pretrained": str(backbone)}
    torch.manual_seed(seed)
    return GroundingModule(**hparams).eval()


def load_models(stages: Stages) -> dict[str, GroundingModule]:
    """The three models the report scores, loaded once for all splits."""
    trained = load_model(stages.checkpoint("grounding"), "cpu")
    return {
        "trained": trained,
        "untrained": untrained_model(trained, stages.backbone, stages.cfg.seed),
        "global_only": load_model(stages.checkpoint("global_only"), "cpu"),
    }


def model_rows(
    stages: Stages, models: dict[str, GroundingModule], split: str, dataset: EvalDataset, videos: Path
) -> dict[str, Predictions]:
    ev = stages.cfg.eval
    cfg = InferenceConfig(theta=ev["theta"], normalise=ev["normalise"], median_window=ev["median_window"])
    if split == "myt":
        cfg.heatmaps = False
    trained = models["trained"]
    global_cfg = InferenceConfig(**{**cfg.__dict__, "spatial": "patch_similarity"})
    rows = {"trained model": predict_dataset(trained, dataset, videos, cfg)}
    if cfg.heatmaps:  # the same model's "where" from its global head instead of the local head's rollout
        rows[PATCH_SIMILARITY_ROW] = predict_dataset(trained, dataset, videos, global_cfg)
    return {
        **rows,
        "untrained model": predict_dataset(models["untrained"], dataset, videos, cfg),
        "global-only model": predict_dataset(models["global_only"], dataset, videos, global_cfg),
        "oracle": oracle_predictions(dataset),
    }


def evaluate_split(
    stages: Stages, models: dict[str, GroundingModule], split: str
) -> tuple[dict[str, dict[str, float]], EvalDataset, Predictions]:
    root = stages.synth_dir
    dataset = load_dataset(split, root / ANNOTATIONS[split])
    videos = root / "eval" / split / "videos"
    predictions = model_rows(stages, models, split, dataset, videos)
    scoring = ScoringConfig()
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
        "untrained model = the same configuration with the heads at initialisation on the same frozen "
        "pretrained backbone; with aligned initialisation (model/init.py) both modalities start in the "
        "backbone's joint space, so this row is the backbone's zero-shot grounding, not a text-blind row.",
    ]
    if probe.exists():
        notes.append(f"backbone pretraining summary: `{probe}`")
    report = write_report(
        report_dir, "stg-lightning demo: synthetic narrated benchmark", rows, COLUMNS, figures, notes
    )
    (report_dir / "metrics.json").write_text(json.dumps(results, indent=1))
    log_to_wandb(stages, rows, figures)
    return report
