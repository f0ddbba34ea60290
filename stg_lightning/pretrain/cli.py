"""`stg pretrain`: image–text pretraining of a tiny open_clip backbone on synthetic frames (docs/method.md §7).

Writes an open_clip state dict that `OpenClipConfig(model_name=..., pretrained=<file>)` loads frozen, like
real CLIP weights, plus `<file>.json` (backbone settings, run summary, probe results), and prints the
zero-shot probe of the untrained and the pretrained backbone next to text-blind references.

    stg pretrain --config configs/pretrain/demo.yaml --out runs/demo/backbone.pt [--max_steps=200 ...]

Keys are `PretrainConfig` fields (`stg_lightning.config`: the same syntax as `stg fit`).
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import lightning as L
import torch
from jsonargparse import ArgumentParser
from torch.utils.data import DataLoader

from stg_lightning.backbones import build_backbone
from stg_lightning.backbones.config import OpenClipConfig
from stg_lightning.config import Parsed, parse
from stg_lightning.errors import StgUserError
from stg_lightning.pretrain.data import PretrainDataConfig, TokenizedPairs, draw_pairs, load_synth_config
from stg_lightning.pretrain.module import PretrainLossConfig, PretrainModule, PretrainOptimConfig
from stg_lightning.pretrain.probe import ProbeConfig, draw_pointing_set, format_table, probe


def _default_backbone() -> OpenClipConfig:
    return OpenClipConfig(model_name="stg-tiny-rn", pretrained=None, finetune=True)


@dataclass
class PretrainConfig:
    """A pretraining run. max_time_s caps the training loop's wall-clock time (None: max_steps only);
    num_threads sets torch's CPU threads (None: torch's default); baseline also probes the untrained
    backbone. backbone.pretrained (None = random init) may name weights to continue from."""

    seed: int = 0
    max_steps: int = 300
    max_time_s: float | None = None
    batch_size: int = 256
    num_threads: int | None = 2
    precision: str = "32-true"
    accelerator: str = "auto"
    baseline: bool = True
    backbone: OpenClipConfig = field(default_factory=_default_backbone)
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    loss: PretrainLossConfig = field(default_factory=PretrainLossConfig)
    optim: PretrainOptimConfig = field(default_factory=PretrainOptimConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 2:
            raise StgUserError("pretrain config: max_steps must be >= 1 and batch_size >= 2")


def _flags(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=str | None, default=None, help="path of the .pt state dict to write (required)"
    )


def parse_args(argv: list[str] | None = None) -> Parsed:
    """(PretrainConfig: defaults, --config files (configs/pretrain/*.yaml), --key=value flags; out)."""
    return parse(
        PretrainConfig,
        argv,
        prog="stg pretrain",
        description="Pretrain a tiny open_clip backbone image–text on synthetic frames (loads via pretrained=).",
        extra=_flags,
    )


def build_config(argv: list[str] | None = None) -> PretrainConfig:
    """The PretrainConfig `stg pretrain` would use for these arguments (e.g. ["--config", FILE, "--seed=5"])."""
    return parse_args(argv or []).config


def pretrain(cfg: PretrainConfig, out: str | Path, progress: bool = False) -> dict:
    """Train, write the weights to `out` (+ `out`.json), reload them frozen and probe. Returns the summary."""
    out = Path(out)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    L.seed_everything(cfg.seed, verbose=False)
    clock = time.perf_counter()
    synth = load_synth_config(cfg.data.synth_config)
    train = draw_pairs(synth, cfg.data, cfg.data.train_pairs, cfg.seed, "train")
    val = draw_pairs(synth, cfg.data, cfg.data.val_pairs, cfg.seed, "val")
    pointing = draw_pointing_set(synth, cfg.probe)
    if len(train) < cfg.batch_size:
        raise StgUserError(f"data.train_pairs={len(train)} is smaller than batch_size={cfg.batch_size}")
    module = PretrainModule(
        cfg.backbone,
        cfg.loss,
        cfg.optim,
        num_action_keys=int(train.keys.action_mask().sum()),
        total_steps=cfg.max_steps,
    )
    dataset = TokenizedPairs(train, module.backbone.tokenize)
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    data_s = time.perf_counter() - clock
    rows = {}
    if cfg.baseline:
        rows["untrained"] = probe(module.backbone, pointing, val, cfg.probe.batch_size)

    clock = time.perf_counter()
    trainer = L.Trainer(
        max_steps=cfg.max_steps,
        max_epochs=-1,
        max_time=datetime.timedelta(seconds=cfg.max_time_s) if cfg.max_time_s else None,
        accelerator=cfg.accelerator,
        devices=1,
        precision=cfg.precision,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        log_every_n_steps=10,
    )
    trainer.fit(module, loader)
    train_s = time.perf_counter() - clock
    if trainer.global_step < cfg.max_steps:
        # Steps then depend on the machine's speed: numbers are not comparable with another run's.
        print(
            f"stg pretrain: warning: stopped by max_time_s={cfg.max_time_s:g} at step {trainer.global_step} "
            f"of max_steps={cfg.max_steps}; results depend on this machine's speed",
            file=sys.stderr,
        )
    final_loss = {k.removeprefix("train/"): float(v) for k, v in trainer.callback_metrics.items()}

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.open_clip_state_dict(), out)
    frozen_cfg = replace(cfg.backbone, pretrained=str(out), finetune=False)
    frozen = build_backbone(frozen_cfg)
    rows["pretrained"] = probe(frozen, pointing, val, cfg.probe.batch_size)
    summary = {
        "backbone": {k: v for k, v in asdict(frozen_cfg).items() if not k.startswith("s3d_")},
        "steps": trainer.global_step,
        "stopped_by_time_cap": trainer.global_step < cfg.max_steps,
        "data_seconds": round(data_s, 1),
        "train_seconds": round(train_s, 1),
        "final": final_loss,
        "probe": rows,
        "text_blind": pointing.baselines(),
        "verb_choice_chance": 1 / len(pointing.verb_texts[0]),
        "config": asdict(cfg),
    }
    out.with_suffix(out.suffix + ".json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def report(summary: dict) -> str:
    """The probe table: trained/untrained backbone rows, then text-blind pointing references."""
    rows = dict(summary["probe"])
    rows |= {
        name: {"pointing": value, "verb_choice": "-", "retrieval": "-"}
        for name, value in summary["text_blind"].items()
    }
    name = summary["backbone"]["model_name"]
    head = (
        f"stg pretrain: {name}, {summary['steps']} steps in {summary['train_seconds']} s "
        f"(data {summary['data_seconds']} s); zero-shot pointing and verb choice (chance "
        f"{summary['verb_choice_chance']:.2f}) on held-out benchmark frames, frame→caption retrieval on "
        "held-out pairs:"
    )
    return head + "\n" + format_table(rows)


def main(argv: list[str] | None = None) -> int:
    try:
        cfg, args = parse_args(argv)
        if not args.out:
            raise StgUserError("--out FILE is required (the .pt state dict to write)")
        summary = pretrain(cfg, args.out, progress=sys.stderr.isatty())
    except (StgUserError, ValueError, FileNotFoundError) as err:
        print(f"stg pretrain: error: {err}", file=sys.stderr)
        return 2
    print(report(summary))
    print(f"stg pretrain: wrote {args.out} (load with --model.backbone.pretrained={args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
