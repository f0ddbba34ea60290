"""`stg demo` (`make demo`): the whole loop on the embedded synthetic benchmark, with an honest report.

generate videos (stg synth) → shards (stg prepare) → pretrain the tiny backbone image–text at frame level
(stg pretrain) → cache its tokens of every clip once → train the grounding heads with Sinkhorn selection on
the frozen backbone (stg fit): the full model and each ablation of `train.runs` → evaluate every row with the
same readout and scoring code (GYT-format spatio-temporal, MYT-format temporal, YC-Inter-format pointing) →
reports/demo/report.md with the paper-claims table, the metrics table and figures.

Each stage leaves its output under `out/` and is skipped when that output exists, so an interrupted demo
continues where it stopped (training resumes from its last checkpoint). `out/stage_fingerprints.json` records
what each output was made from (its flags, the bytes of its config files, the earlier stages' fingerprints):
an output made from other settings stops the demo, naming what to delete, instead of being reused.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from stg_lightning.config import parse, to_argv
from stg_lightning.errors import StgUserError

if TYPE_CHECKING:
    from stg_lightning.backbones import BackboneConfig
    from stg_lightning.demo_eval import ReportInputs


DEFAULT_CONFIG = "configs/demo.yaml"
# Keys of a stage section that name where its config comes from; the demo's own flags go after them and
# the section's other keys after those (so `seed: 3` in a section beats the demo's --seed).
HEAD_KEYS = ("preset", "config")


@dataclass
class DemoConfig:
    """See configs/demo.yaml for the meaning of each section. synth / prepare / pretrain are handed to those
    tools as flags (`stg_lightning.config.to_argv`: `config` → --config FILE, `a: {b: 1}` → --a.b=1), so
    they take exactly the tools' keys; train names `stg fit` config files; eval feeds demo_eval."""

    seed: int = 0
    out: str = "runs/demo"
    report_dir: str = "reports/demo"
    workers: int = 2
    synth: dict[str, Any] = field(default_factory=dict)
    prepare: dict[str, Any] = field(default_factory=dict)
    pretrain: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> DemoConfig:
    """DemoConfig from --config files (configs/demo.yaml when none is given) and --key=value flags."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not any(a == "--config" or a.startswith("--config=") for a in args):
        args = ["--config", DEFAULT_CONFIG, *args]
    return parse(DemoConfig, args, prog="stg demo", description=__doc__.splitlines()[0]).config


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as err:
        raise StgUserError(f"demo config train.configs: cannot read {path} ({err})") from err


def load_demo_config(path: str | Path) -> DemoConfig:
    return parse_args(["--config", str(path)])


def stage_argv(section: dict[str, Any], own: list[str]) -> list[str]:
    """A stage's flags: the section's preset/config, then the demo's `own` flags, then the section's keys."""
    head = {k: v for k, v in section.items() if k in HEAD_KEYS}
    return to_argv(head) + own + to_argv({k: v for k, v in section.items() if k not in HEAD_KEYS})


def run_fingerprint(args: list[str]) -> str:
    """What a stage's output was made from: its flags and the bytes of every --config file they name (so an
    edited experiment file counts as a change, not only a renamed one)."""
    digest = hashlib.sha256()
    for arg, nxt in zip(args, [*args[1:], None]):
        digest.update(arg.encode() + b"\0")
        if arg == "--config" and nxt is not None:
            digest.update(Path(nxt).read_bytes() + b"\0")
    return digest.hexdigest()


FINGERPRINTS = "stage_fingerprints.json"


class Stages:
    """Runs the demo's stages in order, timing each and skipping the ones whose output exists. Each stage's
    fingerprint chains the one before (`chain`), so new videos make the shards, backbone, tokens and runs
    built from the old ones stale."""

    def __init__(self, cfg: DemoConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.timings: dict[str, float] = {}
        self.chain = ""  # fingerprint of the last data stage (synth → prepare → pretrain → cache)

    def fingerprint(self, settings: list[str]) -> str:
        """`settings` (a stage's flags) and the earlier stages', with this out folder's paths as `<out>` (a
        moved or copied out folder keeps its fingerprints) and `--workers` left out (it changes no output)."""
        relative = [a.replace(str(self.out), "<out>") for a in settings if not a.startswith("--workers=")]
        return run_fingerprint([self.chain, *relative])

    def recorded(self) -> dict[str, str]:
        path = self.out / FINGERPRINTS
        return json.loads(path.read_text()) if path.exists() else {}

    def record(self, name: str, fingerprint: str) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / FINGERPRINTS).write_text(json.dumps({**self.recorded(), name: fingerprint}, indent=1))

    def check_settings(self, name: str, output: Path, fingerprint: str) -> bool:
        """An existing `output` (finished or not) made from other settings stops the demo: its numbers would
        not be this config's. True when `output` predates fingerprints (it is then reused as it is)."""
        recorded = self.recorded().get(name)
        if not output.exists():
            return False
        if recorded is not None and recorded != fingerprint:
            raise StgUserError(
                f"demo stage '{name}': {output} was made with other settings (a config file, a flag or an "
                f"earlier stage changed since); delete {output} to make it again, or give the demo another --out"
            )
        return recorded is None

    def run(
        self, name: str, done: Path, fn: Any, settings: list[str] | None = None, output: Path | None = None
    ) -> str:
        """Run stage `name` unless `done` exists; `output` (default `done`) is what `settings` made. Returns
        the stage's fingerprint."""
        fingerprint = self.fingerprint(settings or [])
        unfingerprinted = self.check_settings(name, output or done, fingerprint)
        if done.exists():
            note = ", made before settings fingerprints: reusing it" if unfingerprinted else ", skipping"
            print(f"[demo] {name}: done already ({done}){note}", flush=True)
            return fingerprint
        self.record(name, fingerprint)  # before it runs: a half-made output is this config's too
        print(f"[demo] {name} ...", flush=True)
        start = time.perf_counter()
        code = fn()
        if code not in (0, None):
            raise StgUserError(f"demo stage '{name}' failed (exit code {code}); see the messages above")
        self.timings[name] = time.perf_counter() - start
        print(f"[demo] {name}: {self.timings[name]:.0f} s", flush=True)
        return fingerprint

    @property
    def synth_dir(self) -> Path:
        return self.out / "synth"

    def synth_argv(self) -> list[str]:
        own = [f"--out={self.synth_dir}", f"--seed={self.cfg.seed}", f"--workers={self.cfg.workers}"]
        return stage_argv(self.cfg.synth, own)

    def synth(self) -> None:
        from stg_lightning.synth.cli import main as synth_main

        args = self.synth_argv()
        done = self.synth_dir / "meta.json"
        self.chain = self.run(
            "generate synthetic videos", done, lambda: synth_main(args), args, self.synth_dir
        )

    @property
    def shards(self) -> Path:
        return self.out / "shards"

    def prepare_argv(self) -> list[str]:
        train = self.synth_dir / "train"
        own = [f"--videos={train / 'videos'}", f"--captions={train / 'caption.json'}"]
        own += [f"--out={self.shards}", f"--workers={self.cfg.workers}"]
        return stage_argv(self.cfg.prepare, own)

    def prepare(self) -> None:
        from stg_lightning.data.prepare import main as prepare_main

        args = self.prepare_argv()
        done = self.shards / "summary.json"
        self.chain = self.run("prepare shards", done, lambda: prepare_main(args), args, self.shards)

    @property
    def backbone(self) -> Path:
        return self.out / "backbone.pt"

    def pretrain_argv(self) -> list[str]:
        own = [f"--out={self.backbone}", f"--seed={self.cfg.seed}"]
        own += [f"--data.synth_config={self.synth_dir / 'meta.json'}"]
        return stage_argv(self.cfg.pretrain, own)

    def pretrain(self) -> None:
        from stg_lightning.pretrain.cli import main as pretrain_main

        args = self.pretrain_argv()
        self.chain = self.run(
            "pretrain backbone (image-text)", self.backbone, lambda: pretrain_main(args), args
        )

    @property
    def tokens(self) -> Path:
        return self.out / "tokens"

    @property
    def cached_tokens(self) -> bool:
        """Whether the heads train on cached backbone tokens (`train.cached_tokens`)."""
        return bool(self.cfg.train.get("cached_tokens", False))

    def train_backbone(self) -> BackboneConfig:
        """The backbone section of the training configs (later files win), with the pretrained weights."""
        from stg_lightning.backbones import backbone_config

        section: dict[str, Any] = {}
        for path in self.cfg.train["configs"]:
            section.update(((read_yaml(path).get("model") or {}).get("backbone")) or {})
        return replace(backbone_config(section), pretrained=str(self.backbone))

    def cache(self) -> None:
        """The frozen backbone's tokens of every training clip, once: the heads then train without it."""
        if not self.cached_tokens:
            return
        from stg_lightning.backbones import build_backbone
        from stg_lightning.data.cache_tokens import cache_tokens
        from stg_lightning.data.shards import SUMMARY_NAME

        backbone = self.train_backbone()

        def run() -> None:
            shards = sorted(self.shards.glob("*.tar"))
            cache_tokens(shards, self.tokens, build_backbone(backbone), progress=False)

        settings = [json.dumps(asdict(backbone), sort_keys=True)]
        self.chain = self.run("cache backbone tokens", self.tokens / SUMMARY_NAME, run, settings, self.tokens)

    def check(self) -> None:
        """Parse every stage's flags before anything runs: a bad key in a section fails now, naming it."""
        from stg_lightning.data.prepare import parse_config as prepare_args
        from stg_lightning.pretrain.cli import parse_args as pretrain_args
        from stg_lightning.synth.cli import parse_args as synth_args

        stages = (
            ("synth", synth_args, self.synth_argv),
            ("prepare", prepare_args, self.prepare_argv),
            ("pretrain", pretrain_args, self.pretrain_argv),
        )
        for name, parse_stage, argv in stages:
            try:
                parse_stage(argv())
            except StgUserError as err:
                raise StgUserError(f"demo config {name}: {err}") from None

    def checkpoint(self, run_name: str) -> Path:
        return self.out / "runs" / run_name / "latest" / "checkpoints" / "last.ckpt"

    def train(self, run_name: str, extra_configs: list[str]) -> None:
        from stg_lightning.cli import main as stg_main

        run_dir = self.out / "runs" / run_name
        configs = [*self.cfg.train["configs"], *extra_configs]
        args = ["fit", *[a for c in configs for a in ("--config", c)]]
        cached = self.cached_tokens
        shards = self.tokens if cached else self.shards
        args += [
            f"--seed_everything={self.cfg.seed}",
            f"--model.backbone.pretrained={self.backbone}",
            f"--data.init_args.train_shards={shards}/clips-*.tar",
            f"--data.init_args.use_cached_tokens={str(cached).lower()}",
            f"--data.init_args.seed={self.cfg.seed}",
            f"--experiment.output_dir={self.out / 'runs'}",
            f"--experiment.name={run_name}",
        ]
        done = run_dir / "finished"
        last = self.checkpoint(run_name)
        # An interrupted run continues from its last checkpoint, in its run folder (the settings checked first).
        resume = ["--ckpt_path=last"] if last.exists() else []

        def fit() -> int:
            code = stg_main(args + resume)
            if code == 0:
                done.write_text("ok\n")
            return code

        self.run(f"train {run_name}", done, fit, args, run_dir)

    def report_inputs(self) -> ReportInputs:
        """What the evaluation and report stage reads (the training runs' outputs, the config's `eval`)."""
        from stg_lightning.data.prepare import parse_config as prepare_config
        from stg_lightning.demo_eval import ReportInputs

        return ReportInputs(
            out=self.out,
            synth_dir=self.synth_dir,
            backbone=self.backbone,
            checkpoints={name: self.checkpoint(name) for name in self.cfg.train["runs"]},
            metrics={
                name: self.checkpoint(name).parent.parent / "metrics.csv" for name in self.cfg.train["runs"]
            },
            report_dir=Path(self.cfg.report_dir),
            seed=self.cfg.seed,
            eval=self.cfg.eval,
            prepare=prepare_config(self.prepare_argv()),
            timings=dict(self.timings),
        )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)  # e.g. --out=runs/demo2 --seed=1 --report_dir=reports/demo2
    start = time.perf_counter()
    stages = Stages(cfg)
    stages.check()
    stages.synth()
    stages.prepare()
    stages.pretrain()
    stages.cache()
    for name, extra in cfg.train["runs"].items():
        stages.train(name, list(extra))
    from stg_lightning.demo_eval import evaluate_and_report

    report = evaluate_and_report(stages.report_inputs())
    total = time.perf_counter() - start
    print(f"[demo] finished in {total / 60:.1f} min; report: {report}")
    (Path(cfg.out) / "demo_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
