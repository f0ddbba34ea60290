"""Evaluation and report stage of `stg demo`: every row scored by the same code on the synthetic eval splits.

Model rows (keys of `metrics.json`): every training run of the demo config (`full`, `global_only`,
`local_only`, and in `make reproduce` the selection ablations `sel_topk`, `sel_none`, `sel_random`; the full
model is `sel_sinkhorn` there) read with the paper's readout (`eval.inference`: frame token under the global
head for *when*, local-head attention rollout for *where*); `zero_shot`, the frozen backbone's own tokens
(frame / patch cosines with the query's sentence token: the paper's CLIP row); `untrained`, the full model's
configuration with plain random heads; extra, labelled rows with other readouts (`eval.extra_rows`); the
text-blind rows (`chance_area`, `random_object`, `motion_energy`, `uniform_split`), the `oracle`, and the
query-swap test of the rows `eval.query_swap` names (`<row>_swapped_query`: GYT pointing asked another
step's query, eval/query_swap.py).

Where the settings go (`stg_lightning.eval.settings`): every trained checkpoint gets the paper readout and the
scoring of the headline rows (so `stg eval --ckpt` reads it the same way by default), the full model's saved
predictions carry theirs, and each `<out>/eval/<split>.json` holds every row's readout under `settings`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml

from stg_lightning.backbones.config import InputSpec
from stg_lightning.config import from_dict, to_dict
from stg_lightning.data.datamodule import ShardDataModule
from stg_lightning.data.prepare import PrepareConfig
from stg_lightning.eval.baselines.oracle import oracle_predictions
from stg_lightning.eval.baselines.random_object import load_object_boxes
from stg_lightning.eval.baselines.rows import TEXT_BLIND_LABELS, text_blind_rows
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.frames import FrameCache, FrameSource
from stg_lightning.eval.inference import predict_dataset
from stg_lightning.eval.models import load_model
from stg_lightning.eval.predictions import Predictions, write_predictions
from stg_lightning.eval.query_swap import swap_queries
from stg_lightning.eval.readout import InferenceConfig
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import BOOKKEEPING, ScoringConfig, score_predictions
from stg_lightning.eval.settings import eval_settings, store_in_checkpoint
from stg_lightning.model import GroundingModel
from stg_lightning.pretrain.data import load_synth_config
from stg_lightning.report.claims import claims_table, evaluate_claims
from stg_lightning.report.figures import (
    ReferenceLine,
    overlay_samples,
    plot_heatmap_comparison,
    plot_timelines,
    plot_training_curves,
    read_metrics_csv,
)
from stg_lightning.report.markdown import write_report
from stg_lightning.report.nce_oracles import (
    OracleClip,
    OracleConfig,
    TrainPlans,
    clip_mix,
    oracle_levels,
    random_batches,
    stack_batches,
)

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
    "gyt/named_share": "GYT named-object share",
}
T = TypeVar("T")
FULL = "full"
# Row key → the name the report prints; the order of the metrics table.
ROW_LABELS = {
    FULL: "full model (global + local heads, Sinkhorn selection)",
    "global_only": "global-only model (local loss off, Table 6)",
    "local_only": "local-only model (global loss off, Table 6)",
    "sel_sinkhorn": "Sinkhorn selection (= the full model, Tables 5, 9)",
    "sel_topk": "top-k selection (Table 9)",
    "sel_none": "no selection, all U frames (T = U, Table 9)",
    "sel_random": "random selection (Table 9)",
    "zero_shot": "backbone zero-shot (raw frame / patch tokens: the CLIP row, Tables 2-3)",
    "untrained": "untrained heads (plain random init: text-blind in effect)",
    **TEXT_BLIND_LABELS,
    "oracle": "oracle (ground truth as predictions)",
}
SELECTION_RUNS = ("sel_topk", "sel_none", "sel_random")
SWAPPED = "_swapped_query"  # suffix of the query-swap rows (`swapped_query_rows`)


@dataclass(frozen=True)
class ReportInputs:
    """Everything the evaluation and report stage reads; `stg demo` builds it from its stages."""

    out: Path  # the demo's working folder (results go to <out>/eval, the W&B run under it)
    synth_dir: Path  # the `stg synth` output: eval/<split>/ annotations, videos and objects.json
    backbone: Path  # the pretrained backbone; `stg pretrain` writes its summary to <backbone>.json
    checkpoints: dict[str, Path]  # training run (a row key, FULL first) → its last checkpoint
    metrics: dict[str, Path]  # training run → its metrics.csv (training curves)
    report_dir: Path
    seed: int
    eval: dict[str, Any]  # the demo config's `eval` section (readouts, scoring, splits, extra rows)
    prepare: PrepareConfig  # how the training clips were cut (the narration NCE's oracle levels)
    timings: dict[str, float]  # seconds per stage run in this invocation (a report note)


def untrained_model(trained: GroundingModel, backbone: Path, seed: int, aligned: bool) -> GroundingModel:
    """Same configuration and frozen pretrained backbone as `trained`, heads at initialisation: aligned
    (both sides' projections start equal, model/init.py) or plain independent random projections."""
    torch.manual_seed(seed)
    return GroundingModel(
        replace(trained.backbone_cfg, pretrained=str(backbone)),
        trained.selector.cfg,
        replace(trained.global_head.cfg, aligned_init=aligned),
        replace(trained.local_head.cfg, aligned_init=aligned),
    ).eval()


def load_models(inputs: ReportInputs) -> dict[str, GroundingModel]:
    """Every training run's model and the untrained one, loaded once for all splits."""
    if FULL not in inputs.checkpoints:
        raise ValueError(f"demo config train.runs needs a '{FULL}' run, got {sorted(inputs.checkpoints)}")
    models = {name: load_model(path, "cpu") for name, path in inputs.checkpoints.items()}
    models["untrained"] = untrained_model(models[FULL], inputs.backbone, inputs.seed, aligned=False)
    return models


def eval_section(cls: type[T], section: dict[str, Any], name: str) -> T:
    """A config dataclass from a section of the demo config's `eval` (checked by the one config loader,
    `stg_lightning.config`), naming the bad key if any."""
    return from_dict(cls, section, f"demo config eval.{name}")


def split_readouts(ev: dict[str, Any], split: str) -> tuple[InferenceConfig, dict[str, InferenceConfig]]:
    """The paper readout of the model rows on `split`, and each other row's (`zero_shot`, the extra rows)."""

    def readout(section: dict[str, Any], name: str) -> InferenceConfig:
        cfg = eval_section(InferenceConfig, section, name)
        return replace(cfg, heatmaps=False) if split == "myt" else cfg  # MYT is temporal only

    others = {"zero_shot": readout(ev["zero_shot_inference"], "zero_shot_inference")}
    for key, row in ev.get("extra_rows", {}).items():
        others[key] = readout(row["inference"], f"extra_rows.{key}.inference")
    return readout(ev["inference"], "inference"), others


def scoring_config(ev: dict[str, Any]) -> ScoringConfig:
    """The scoring of every row (`eval.scoring`)."""
    return eval_section(ScoringConfig, ev.get("scoring", {}), "scoring")


def checkpoint_readout(ev: dict[str, Any], run: str) -> dict[str, Any]:
    """What a trained run's checkpoint stores: the paper readout (`eval.inference`, split-independent) and
    the scoring of the headline rows, so `stg eval --ckpt` with no flags reads it as the report does."""
    paper = eval_section(InferenceConfig, ev["inference"], "inference")
    return eval_settings(paper, scoring_config(ev), written_by="stg demo", run=run)


def store_readouts(inputs: ReportInputs) -> None:
    """Every trained checkpoint gets its `checkpoint_readout` (eval/settings.py, rewritten atomically)."""
    for run, path in inputs.checkpoints.items():
        store_in_checkpoint(path, checkpoint_readout(inputs.eval, run))


def readout_summary(ev: dict[str, Any]) -> dict[str, str]:
    """The readouts and the scoring settings, as the report prints them."""
    short = ("temporal", "spatial", "normalise", "theta", "median_window", "raw_features")
    sections = {"model rows (paper readout)": ev["inference"], "zero_shot": ev["zero_shot_inference"]}
    sections.update({key: row["inference"] for key, row in ev.get("extra_rows", {}).items()})
    out = {
        name: ", ".join(f"{k}={section[k]}" for k in short if k in section)
        for name, section in sections.items()
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


Readouts = dict[str, tuple[GroundingModel, InferenceConfig]]  # model row → the model it reads, its readout


def row_readouts(inputs: ReportInputs, models: dict[str, GroundingModel], split: str) -> Readouts:
    """Every model row (see the module docstring) → the model it reads and its readout on `split`."""
    ev = inputs.eval
    paper, others = split_readouts(ev, split)
    rows = {name: (model, paper) for name, model in models.items()}
    rows["zero_shot"] = (models[FULL], others["zero_shot"])
    for key, row in ev.get("extra_rows", {}).items():
        rows[key] = (models[row.get("run", FULL)], others[key])
    return rows


def model_rows(
    readouts: Readouts, dataset: EvalDataset, videos: Path, read_frames: FrameSource
) -> dict[str, Predictions]:
    """Every model row's predictions (`readouts`: `row_readouts` of the split), keyed by row, and the oracle's."""
    rows = {
        name: predict_dataset(model, dataset, videos, cfg, read_frames=read_frames)
        for name, (model, cfg) in readouts.items()
    }
    rows["oracle"] = oracle_predictions(dataset)
    return rows


def swapped_query_rows(
    ev: dict[str, Any],
    readouts: Readouts,
    split: str,
    dataset: EvalDataset,
    videos: Path,
    scoring: ScoringConfig,
    read_frames: FrameSource,
) -> dict[str, dict[str, float]]:
    """The query-swap test (`ev["query_swap"]`, eval/query_swap.py) of the named rows on its split: their
    pointing game asked another step's query, as rows `<row>_swapped_query`; nothing on other splits."""
    swap = ev.get("query_swap")
    if not swap or swap["split"] != split:
        return {}
    unknown = [row for row in swap["rows"] if row not in readouts]
    if unknown:
        raise ValueError(
            f"demo config eval.query_swap.rows: {unknown} are not model rows ({sorted(readouts)})"
        )
    swapped = swap_queries(dataset)
    rows = {}
    for row in swap["rows"]:
        model, cfg = readouts[row]
        predictions = predict_dataset(model, swapped, videos, cfg, read_frames=read_frames)
        rows[row + SWAPPED] = score_predictions(swapped, predictions, scoring, metrics=("pointing",))
    return rows


def object_choice_rows(
    ev: dict[str, Any],
    split: str,
    dataset: EvalDataset,
    objects: Path,
    predictions: dict[str, Predictions],
    scoring: ScoringConfig,
) -> dict[str, dict[str, float]]:
    """Where each model row's pointing-game point lands (named object / another object / off the objects,
    eval/metrics/object_choice.py) on the splits `eval.object_choice` names; nothing on the others."""
    if split not in ev.get("object_choice", []):
        return {}
    boxes = load_object_boxes(dataset, objects)
    out = {}
    for name, preds in predictions.items():
        scores = score_predictions(dataset, preds, scoring, metrics=("object_choice",), object_boxes=boxes)
        out[name] = {k: v for k, v in scores.items() if k not in BOOKKEEPING}
    return out


def evaluate_split(
    inputs: ReportInputs, models: dict[str, GroundingModel], split: str
) -> tuple[dict[str, dict[str, float]], EvalDataset, dict[str, Predictions]]:
    root = inputs.synth_dir
    dataset = load_dataset(split, root / ANNOTATIONS[split])
    videos = root / "eval" / split / "videos"
    readouts = row_readouts(inputs, models, split)
    frames = FrameCache()  # every row reads the same videos: decode each once
    predictions = model_rows(readouts, dataset, videos, frames)
    scoring = scoring_config(inputs.eval)
    rows = {name: score_predictions(dataset, preds, scoring) for name, preds in predictions.items()}
    objects = root / "eval" / split / "objects.json"
    for name, choice in object_choice_rows(
        inputs.eval, split, dataset, objects, predictions, scoring
    ).items():
        rows[name].update(choice)
    if any(run in rows for run in SELECTION_RUNS):
        rows["sel_sinkhorn"] = dict(rows[FULL])  # every column of the full row, object choice included
    rows.update(text_blind_rows(dataset, videos_dir=videos, objects=objects, scoring=scoring))
    rows.update(swapped_query_rows(inputs.eval, readouts, split, dataset, videos, scoring, frames))
    out = inputs.out / "eval"
    out.mkdir(parents=True, exist_ok=True)
    paper, others = split_readouts(inputs.eval, split)
    checkpoints = {run: str(path) for run, path in inputs.checkpoints.items()}
    full = {"dataset": split, "checkpoint": checkpoints.get(FULL), "written_by": "stg demo", "run": FULL}
    write_predictions(
        predictions[FULL], out / f"{split}_full_predictions.json", eval_settings(paper, scoring, **full)
    )
    settings = eval_settings(
        paper,  # the model rows' (the training runs and `untrained`)
        scoring,  # every row's
        dataset=split,
        checkpoints=checkpoints,
        written_by="stg demo",
        row_inference={key: to_dict(cfg) for key, cfg in others.items()},  # rows with their own readout
    )
    (out / f"{split}.json").write_text(
        json.dumps({"dataset": split, "rows": rows, "settings": settings}, indent=1)
    )
    return rows, dataset, predictions


ORACLE_LINES = {
    "object_on_screen": "oracle: perfect object detector",
    "action_acted": "oracle: perfect action detector",
}


@dataclass(frozen=True)
class NarrationOracles:
    """Where oracle scorers' narration NCE sits (report/nce_oracles.py): on random training batches of the
    full run's size, and on its held-out batches (None, with `held_out_note` saying why, when they cannot
    be rebuilt)."""

    batch_size: int
    train: dict[str, float]
    held_out: dict[str, float] | None
    held_out_note: str
    mix: dict[str, float]  # the training clips' shares of steps, mentions and fillers
    losses: dict[str, float]  # the run's last held-out losses (val/loss_global, val/loss_local)


def held_out_batches(config: dict[str, Any], plans: TrainPlans) -> tuple[list[list[OracleClip]] | None, str]:
    """The validation batches of the run with this config.yaml as its data module loads them (at most
    `trainer.limit_val_batches` of them), as oracle clips; or None and why."""
    data = config["data"]
    if not data["class_path"].endswith(".ShardDataModule"):
        return None, f"the run's data module {data['class_path']} is not the shard one"
    limit = (config.get("trainer") or {}).get("limit_val_batches")
    # 1.0 (Lightning's default) is every batch; a whole number of batches otherwise.
    if limit is not None and limit != 1.0 and float(limit) != int(limit):
        return None, f"trainer.limit_val_batches={limit} is a fraction of batches"
    module = ShardDataModule(**data["init_args"], inputs=InputSpec(tokenizer=None))
    if not module.shard_lists()[1]:
        return None, "the run held out no shards"
    take = None if limit in (None, 1.0) else int(limit)
    stream = islice(module.val_dataset(rank=0, world_size=1, num_workers=0), take)
    return [plans.batch_clips(batch) for batch in stream], ""


def last_logged(metrics_csv: Path, columns: tuple[str, ...]) -> dict[str, float]:
    """The last logged value of each column of a metrics.csv that has one."""
    out = {}
    for row in read_metrics_csv(metrics_csv):
        out.update({c: row[c] for c in columns if c in row})
    return out


def narration_oracles(inputs: ReportInputs) -> NarrationOracles:
    """The oracle levels of the full run (settings `eval.nce_oracles`). The held-out levels are kept only
    when their chance is the one the run logged for its held-out batches (`val/chance_loss_*`)."""
    config = yaml.safe_load((inputs.metrics[FULL].parent / "config.yaml").read_text())
    batch = int(config["data"]["init_args"]["batch_size"])
    plans = TrainPlans(load_synth_config(str(inputs.synth_dir / "meta.json")))
    cfg = eval_section(OracleConfig, inputs.eval.get("nce_oracles", {}), "nce_oracles")
    p = inputs.prepare
    clips = plans.training_clips(p.fps, p.num_frames, p.min_time)
    train = oracle_levels(clips, random_batches(len(clips), batch, cfg), cfg)
    loaded, note = held_out_batches(config, plans)
    held_out = None
    columns = ("val/loss_global", "val/loss_local", "val/chance_loss_global", "val/chance_loss_local")
    last = last_logged(inputs.metrics[FULL], columns)
    if loaded:
        held_out = oracle_levels(*stack_batches(loaded), cfg)
        logged = {c: v for c, v in last.items() if "/chance_" in c}
        mismatch = [c for c, v in logged.items() if abs(v - held_out["chance"]) > 1e-3]
        sizes = ", ".join(str(len(b)) for b in loaded)
        note = f"its {sum(map(len, loaded))} held-out clips in batches of {sizes}"
        if not logged or mismatch:
            logged_text = ", ".join(f"{c} {v:.3f}" for c, v in logged.items()) or "none"
            note = (
                f"{note} give chance {held_out['chance']:.3f} but the run logged {logged_text}: "
                "not the batches it scored"
            )
            held_out = None
    losses = {c: v for c, v in last.items() if "/chance_" not in c}
    return NarrationOracles(batch, train, held_out, note or "no held-out batches", clip_mix(clips), losses)


def oracle_references(oracles: NarrationOracles) -> dict[str, list[ReferenceLine]]:
    """The training curves' oracle lines: two oracles, on training and on held-out batches."""
    lines = []
    for is_val, levels in ((False, oracles.train), (True, oracles.held_out)):
        stage = "val" if is_val else "train"
        if levels is not None:
            lines += [
                ReferenceLine(f"{label} ({stage})", levels[k], is_val) for k, label in ORACLE_LINES.items()
            ]
    return {"loss_global": lines, "loss_local": lines}


def _share(value: float) -> str:
    return f"{round(value, 2) + 0.0:.0%}"  # + 0.0: a loss a hair above chance prints 0 %, not -0 %


def _levels_text(levels: dict[str, float]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {value:.2f}" for name, value in levels.items())


def oracles_note(oracles: NarrationOracles) -> str:
    """The report's line on where the narration loss of a model with a named skill would sit, and where
    the full run's last held-out losses sit between chance and the action detector."""
    train, mix = oracles.train, oracles.mix
    gap = {name: train["chance"] - train[name] for name in ("object_on_screen", "action_acted")}
    text = (
        f"narration NCE of oracle scorers that read the videos' plans (report/nce_oracles.py; either head; "
        f"dash-dot in the training curves). On random training batches of {oracles.batch_size}: "
        f"{_levels_text(train)}. Of the training clips {mix['steps']:.0%} narrate a step, "
        f"{mix['mentions']:.0%} mention an object not acted on and {mix['fillers']:.0%} are fillers; "
        f"a perfect object detector sits {gap['object_on_screen']:.2f} nat below chance and a perfect "
        f"action detector {gap['action_acted']:.2f}: read the heads' losses against these levels, not 0. "
    )
    held = oracles.held_out
    if held is None:
        return text + f"Held-out levels: not computed ({oracles.held_out_note})"
    text += f"On the full run's held-out batches ({oracles.held_out_note}): {_levels_text(held)}"
    span = held["chance"] - held["action_acted"]
    shares = [
        f"{column.split('_', 1)[1]} head {value:.2f}"
        # Held-out batches without a matchable action leave no span to measure against.
        + (
            f" ({_share((held['chance'] - value) / span)} of the way from chance to it)"
            if span > 1e-6
            else ""
        )
        for column, value in oracles.losses.items()
    ]
    last = "; the full run's last held-out loss, against the action detector: "
    return text + (last + ", ".join(shares) if shares else "")


def row_labels(inputs: ReportInputs) -> dict[str, str]:
    """Row key → printed name: the fixed rows, then the config's extra rows."""
    extra = {key: row.get("label", key) for key, row in inputs.eval.get("extra_rows", {}).items()}
    labels = {**ROW_LABELS, **extra}
    swapped = {
        row + SWAPPED: f"{labels.get(row, row)}, asked another step's query (query-swap test)"
        for row in inputs.eval.get("query_swap", {}).get("rows", ())
    }
    return {**labels, **swapped}


def table_rows(
    results: dict[str, dict[str, dict[str, float]]], labels: dict[str, str]
) -> list[dict[str, Any]]:
    """The metrics table: one row per row key present in any split, in `labels` order."""
    present = {name for rows in results.values() for name in rows}
    keys = [k for k in labels if k in present] + sorted(present - set(labels))
    table = []
    for key in keys:
        row: dict[str, Any] = {"name": labels.get(key, key), "key": key}
        for column in COLUMNS:
            split, metric = column.split("/")
            value = results.get(split, {}).get(key, {}).get(metric)
            if value is not None:
                row[column] = value
        table.append(row)
    return table


def chance_note(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """The named-object share's chance level on GYT, as the report states it."""
    chance = results.get("gyt", {}).get(FULL, {}).get("named_share_chance")
    return "—" if chance is None else f"{chance:.3f} here"


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
            # Keyed by file name: W&B names the media file after the key, and captions run long.
            **{
                f"demo/{path.stem}": wandb.Image(str(path), caption=caption)
                for caption, path in figures.items()
            },
        }
    )
    run.finish()


def evaluate_and_report(inputs: ReportInputs) -> Path:
    results, datasets, predictions = {}, {}, {}
    models = load_models(inputs)
    store_readouts(inputs)
    for split in inputs.eval["splits"]:
        print(f"[demo] evaluate {split} ...", flush=True)
        results[split], datasets[split], predictions[split] = evaluate_split(inputs, models, split)
    report_dir = inputs.report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    labels = row_labels(inputs)
    oracles = narration_oracles(inputs)
    figures = {
        "Training curves of every run: train loss per step, held-out loss and clip↔sentence retrieval "
        "every N steps; each batch's chance level dashed (train) and dotted (val), two oracle scorers' "
        "levels on training and on held-out batches dash-dot": plot_training_curves(
            dict(inputs.metrics),
            report_dir / "training_curves.png",
            references=oracle_references(oracles),
        )
    }
    if "gyt" in datasets:
        gyt, videos = datasets["gyt"], inputs.synth_dir / "eval" / "gyt" / "videos"
        short = {"zero_shot": "backbone zero-shot", FULL: "full model"}
        compared = {name: predictions["gyt"][k] for k, name in short.items()}
        samples = {
            name: overlay_samples(gyt, p, videos, n=6, seed=inputs.seed) for name, p in compared.items()
        }
        figures["GYT: the same frames' heat maps from the backbone zero-shot and from the full model"] = (
            plot_heatmap_comparison(samples, report_dir / "heatmaps_gyt.png")
        )
        ids = [r.video_id for r in gyt.records[:4]]
        figures["GYT-format timelines: GT steps vs the full model's steps"] = plot_timelines(
            gyt, predictions["gyt"][FULL], ids, report_dir / "timelines_gyt.png"
        )
    if "myt" in datasets:
        myt = datasets["myt"]
        figures["MYT-format timelines: GT vs the Viterbi alignment of the full model"] = plot_timelines(
            myt,
            predictions["myt"][FULL],
            [r.video_id for r in myt.records[:4]],
            report_dir / "timelines_myt.png",
            aligned=True,
        )
    rows = table_rows(results, labels)
    probe = inputs.backbone.with_suffix(inputs.backbone.suffix + ".json")
    notes = [
        f"seed {inputs.seed}; outputs under `{inputs.out}`; every number in this report is in "
        f"`{report_dir / 'metrics.json'}` (row keys as in the claims table)",
        "stage timings (s, this invocation): " + ", ".join(f"{k} {v:.0f}" for k, v in inputs.timings.items()),
        "text-blind rows fill only the columns they can answer; '—' elsewhere. Pointing = trimmed pointing "
        "game (GT seconds + GT step as query). Rows '…, asked another step's query' (`<row>_swapped_query`):"
        " the same pointing game with each boxed second asked another step of its video that names a "
        "different object, scored against the shown step's box; a heat map that follows the query falls "
        "there, a text-blind one does not (`eval/query_swap.py`). GYT named-object share: of the points "
        "that land on an on-screen object, the share on the object the query names (eval/metrics/"
        "object_choice.py); a text-blind object seeker scores the chance level, 1 / objects on screen = "
        + chance_note(results)
        + ".",
        oracles_note(oracles),
        "readouts: " + "; ".join(f"{k} = `{v}`" for k, v in readout_summary(inputs.eval).items()),
    ]
    if probe.exists():
        notes.append(backbone_note(probe))
    claims = evaluate_claims({inputs.seed: results})
    report = write_report(
        report_dir,
        "stg-lightning demo: synthetic narrated benchmark",
        rows,
        COLUMNS,
        figures,
        notes,
        sections={"Paper claims (this seed)": claims_table(claims, labels)},
    )
    (report_dir / "metrics.json").write_text(json.dumps({**results, "labels": labels}, indent=1))
    log_to_wandb(inputs, rows, figures)
    return report
