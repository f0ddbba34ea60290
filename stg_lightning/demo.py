"""`stg demo` (`make demo`): the whole loop on the embedded synthetic benchmark, with an honest report.

generate videos (stg synth) → shards (stg prepare) → pretrain the tiny backbone image–text (stg pretrain) →
train the grounding heads with Sinkhorn selection, frozen backbone (stg fit), plus the global-only ablation →
evaluate every row with the same scoring code (GYT-format spatio-temporal, MYT-format temporal, YC-Inter-format
pointing) → reports/demo/report.md with tables and figures.

Each stage leaves its output under `out/` and is skipped when that output exists, so an interrupted demo
continues where it stopped (training resumes from its last checkpoint).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stg_lightning.errors import StgUserError


@dataclass
class DemoConfig:
    """See configs/demo.yaml for the meaning of each section."""

    seed: int = 0
    out: str = "runs/demo"
    report_dir: str = "reports/demo"
    workers: int = 2
    synth: dict[str, Any] = field(default_factory=dict)
    prepare: dict[str, Any] = field(default_factory=dict)
    pretrain: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)


def load_demo_config(path: str | Path) -> DemoConfig:
    file = Path(path)
    if not file.is_file():
        raise StgUserError(f"demo config {file} not found (the default is configs/demo.yaml)")
    values = yaml.safe_load(file.read_text()) or {}
    unknown = set(values) - set(DemoConfig.__dataclass_fields__)
    if unknown:
        raise StgUserError(
            f"{file}: unknown keys {sorted(unknown)}; valid: {sorted(DemoConfig.__dataclass_fields__)}"
        )
    return DemoConfig(**values)


class Stages:
    """Runs the demo's stages in order, timing each and skipping the ones whose output exists."""

    def __init__(self, cfg: DemoConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.timings: dict[str, float] = {}

    def run(self, name: str, done: Path, fn: Any) -> None:
        if done.exists():
            print(f"[demo] {name}: done already ({done}), skipping", flush=True)
            return
        print(f"[demo] {name} ...", flush=True)
        start = time.perf_counter()
        code = fn()
        if code not in (0, None):
            raise StgUserError(f"demo stage '{name}' failed (exit code {code}); see the messages above")
        self.timings[name] = time.perf_counter() - start
        print(f"[demo] {name}: {self.timings[name]:.0f} s", flush=True)

    @property
    def synth_dir(self) -> Path:
        return self.out / "synth"

    def synth(self) -> None:
        from stg_lightning.synth.cli import main as synth_main

        s = self.cfg.synth
        args = [
            "--preset",
            s.get("preset", "demo"),
            "--out",
            str(self.synth_dir),
            "--seed",
            str(self.cfg.seed),
        ]
        args += ["--workers", str(self.cfg.workers)]
        if s.get("config"):
            args += ["--config", s["config"]]
        self.run(
            "generate synthetic videos",
            self.synth_dir / "meta.json",
            lambda: synth_main(args + list(s.get("overrides", []))),
        )

    def prepare(self) -> None:
        from stg_lightning.data.prepare import main as prepare_main

        shards = self.out / "shards"
        args = [
            "--videos",
            str(self.synth_dir / "train" / "videos"),
            "--captions",
            str(self.synth_dir / "train" / "caption.json"),
            "--out",
            str(shards),
            "--workers",
            str(self.cfg.workers),
        ]
        for key, value in self.cfg.prepare.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.run("prepare shards", shards / "summary.json", lambda: prepare_main(args))

    @property
    def backbone(self) -> Path:
        return self.out / "backbone.pt"

    def pretrain(self) -> None:
        from stg_lightning.pretrain.cli import main as pretrain_main

        args = [
            "--config",
            self.cfg.pretrain["config"],
            "--out",
            str(self.backbone),
            "--seed",
            str(self.cfg.seed),
        ]
        args += [f"data.synth_config={self.synth_dir / 'meta.json'}"]
        self.run("pretrain backbone (image-text)", self.backbone, lambda: pretrain_main(args))

    def checkpoint(self, run_name: str) -> Path:
        return self.out / "runs" / run_name / "checkpoints" / "last.ckpt"

    def train(self, run_name: str, extra_configs: list[str]) -> None:
        from stg_lightning.cli import main as stg_main

        run_dir = self.out / "runs" / run_name
        configs = [*self.cfg.train["configs"], *extra_configs]
        args = ["fit", *[a for c in configs for a in ("--config", c)]]
        args += [
            f"--seed_everything={self.cfg.seed}",
            f"--model.backbone.pretrained={self.backbone}",
            f"--data.init_args.train_shards={self.out / 'shards'}/clips-*.tar",
            f"--data.init_args.seed={self.cfg.seed}",
            f"--experiment.output_dir={self.out / 'runs'}",
            f"--experiment.name={run_name}",
        ]
        last = self.checkpoint(run_name)
        if last.exists():  # an interrupted run continues from its last checkpoint
            args.append(f"--ckpt_path={last}")
        done = run_dir / "finished"

        def fit() -> int:
            code = stg_main(args)
            if code == 0:
                done.write_text("ok\n")
            return code

        self.run(f"train {run_name}", done, fit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stg demo", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml", help="demo pipeline YAML")
    parser.add_argument("--out", help="working folder (default: the config's `out`)")
    parser.add_argument("--report-dir", help="report folder (default: the config's `report_dir`)")
    parser.add_argument("--seed", type=int, help="seed of data, pretraining and training")
    args = parser.parse_args(argv)
    cfg = load_demo_config(args.config)
    cfg.seed = cfg.seed if args.seed is None else args.seed
    cfg.out = args.out or cfg.out
    cfg.report_dir = args.report_dir or cfg.report_dir
    start = time.perf_counter()
    stages = Stages(cfg)
    stages.synth()
    stages.prepare()
    stages.pretrain()
    stages.train("grounding", [])
    stages.train("global_only", [cfg.train["global_only"]])
    from stg_lightning.demo_eval import evaluate_and_report

    report = evaluate_and_report(stages)
    total = time.perf_counter() - start
    print(f"[demo] finished in {total / 60:.1f} min; report: {report}")
    (Path(cfg.out) / "demo_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
