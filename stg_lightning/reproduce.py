"""`stg reproduce` (`make reproduce`): the demo with every ablation row, once per seed, then mean ± std.

Each seed draws its own videos, pretrains its own backbone and trains its own heads (`stg demo --seed S`
into `<out>/seed<S>`, report in `<report_dir>/seed<S>`; an interrupted run continues where it stopped).
The aggregate `<report_dir>/report.md` holds the paper-claims table over the seeds and the metrics table
as mean ± std; `<report_dir>/metrics.json` is `{split: {row: {metric: {mean, std, values}}}, seeds, labels}`.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stg_lightning.config import parse
from stg_lightning.errors import StgUserError


@dataclass
class ReproduceConfig:
    """seeds: one demo per seed. demo_configs: the demo config files (composed left to right) each seed
    runs. out / report_dir: parents of the per-seed folders and of the aggregate report."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    demo_configs: list[str] = field(default_factory=lambda: ["configs/demo.yaml", "configs/reproduce.yaml"])
    out: str = "runs/reproduce"
    report_dir: str = "reports/reproduce"


def seed_dirs(cfg: ReproduceConfig, seed: int) -> tuple[Path, Path]:
    return Path(cfg.out) / f"seed{seed}", Path(cfg.report_dir) / f"seed{seed}"


def aggregate(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per split, row and metric: mean, population std and the per-seed values (seeds missing a value
    are left out of that metric, and its `values` say which)."""
    out: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for results in per_seed.values():
        labels.update(results.get("labels", {}))
        for split, rows in results.items():
            if split == "labels":
                continue
            for row, metrics in rows.items():
                for metric, value in metrics.items():
                    if isinstance(value, (int, float)):
                        out.setdefault(split, {}).setdefault(row, {}).setdefault(metric, []).append(value)
    for rows in out.values():
        for metrics in rows.values():
            for metric, values in metrics.items():
                metrics[metric] = {
                    "mean": statistics.fmean(values),
                    "std": statistics.pstdev(values),
                    "values": values,
                }
    return {**out, "seeds": sorted(per_seed), "labels": labels}


def write_aggregate_report(cfg: ReproduceConfig, per_seed: dict[int, dict[str, Any]]) -> Path:
    from stg_lightning.demo_eval import COLUMNS, table_rows
    from stg_lightning.report.claims import claims_table, evaluate_claims, mean_std
    from stg_lightning.report.markdown import write_report

    summary = aggregate(per_seed)
    labels = summary["labels"]
    splits = {k: v for k, v in summary.items() if k not in ("seeds", "labels")}
    cells = {  # every cell as mean ± std
        split: {row: {m: mean_std(v["values"]) for m, v in metrics.items()} for row, metrics in rows.items()}
        for split, rows in splits.items()
    }
    table = table_rows(cells, labels)
    results = {seed: {s: rows for s, rows in r.items() if s != "labels"} for seed, r in per_seed.items()}
    claims = evaluate_claims(results)
    report_dir = Path(cfg.report_dir)
    seeds = ", ".join(map(str, summary["seeds"]))
    notes = [
        f"seeds {seeds}: each seed its own videos, backbone and heads; per-seed reports under "
        f"`{report_dir}/seed<S>/report.md`; cells are mean ± population std over the seeds",
        f"demo configs: {', '.join(f'`{c}`' for c in cfg.demo_configs)}",
    ]
    report = write_report(
        report_dir,
        f"stg-lightning reproduce: every row over seeds {seeds}",
        table,
        COLUMNS,
        {},
        notes,
        sections={"Paper claims (over seeds)": claims_table(claims, labels)},
    )
    (report_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    from stg_lightning.demo import main as demo_main

    args = sys.argv[1:] if argv is None else list(argv)
    cfg = parse(ReproduceConfig, args, prog="stg reproduce", description=__doc__.splitlines()[0]).config
    if not cfg.seeds:
        raise StgUserError("stg reproduce: --seeds is empty; give at least one seed, e.g. --seeds=[0,1,2]")
    start = time.perf_counter()
    per_seed = {}
    for seed in cfg.seeds:
        out, report_dir = seed_dirs(cfg, seed)
        print(f"[reproduce] seed {seed} → {out}", flush=True)
        demo_args = [a for c in cfg.demo_configs for a in ("--config", c)]
        demo_main([*demo_args, f"--seed={seed}", f"--out={out}", f"--report_dir={report_dir}"])
        per_seed[seed] = json.loads((report_dir / "metrics.json").read_text())
    report = write_aggregate_report(cfg, per_seed)
    print(
        f"[reproduce] {len(cfg.seeds)} seeds in {(time.perf_counter() - start) / 60:.1f} min; report: {report}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
