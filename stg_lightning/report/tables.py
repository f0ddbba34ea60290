"""The paper's results tables (2, 3, 4, 7 and 12) in Markdown from evaluation JSON files: ``stg tables``.

    stg tables reports/eval/*.json --table 2 --table 3 --out reports/tables.md

Each file holds one run's results on one dataset, in one of these forms:

* ``{"name": str, "dataset": str, "metrics": {metric: value}}`` (optionally ``"mode": "clip"``);
* what ``stg eval --out`` writes (the same keys without ``name``, plus ``"baselines": {row: {metric: value}}``);
* a bare metrics dict as ``score_predictions`` returns it; its dataset follows from its keys
  (``temporal_*`` → myt, ``iou_pointing``/``video_map`` → gyt; pointing alone is ambiguous: wrap it);
* the ``metrics.json`` of ``make demo`` / ``make reproduce`` (every row on every dataset; reproduce cells
  as their mean over seeds).

Without ``name`` the run is the file stem, or its folder when the stem is the dataset (``reports/<run>/gyt.json``).
Rows are runs in order of first appearance (a run's files for several datasets share its row), then the
baselines found in eval results (text-blind rows), each once per dataset. Metrics are fractions, printed
as percentages; "—" marks a metric a run lacks and the paper's columns we do not evaluate (V-HICO, Daly).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.rows import CHANCE_BY_AREA, MOTION_ENERGY, RANDOM_OBJECT, UNIFORM_SPLIT
from stg_lightning.eval.metrics.video_map import DEFAULT_THRESHOLDS
from stg_lightning.jsonfile import read_json_object

MISSING = "—"
# Rows of the demo's report that are references, not models (printed after the runs).
REFERENCE_ROWS = (CHANCE_BY_AREA, RANDOM_OBJECT, MOTION_ENERGY, UNIFORM_SPLIT, "oracle")
TAU_SWEEP = (0.001, 0.005, 0.01, 0.05, 0.1)  # Table 12's columns


@dataclass
class Result:
    """One run's metrics on one dataset (``mode`` "untrimmed", or "clip" for Table 7)."""

    name: str
    dataset: str
    metrics: dict[str, float]
    mode: str = "untrimmed"
    source: str = ""


@dataclass(frozen=True)
class Column:
    """A table column: ``metric`` of the run's ``dataset`` result; both None for a column we cannot fill."""

    header: str
    dataset: str | None = None
    metric: str | None = None


@dataclass(frozen=True)
class Table:
    number: int
    title: str
    columns: tuple[Column, ...]
    mode: str = "untrimmed"
    datasets: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", frozenset(c.dataset for c in self.columns if c.dataset))


_VIDEO_MAP = (
    Column("IoU+Pointing", "gyt", "iou_pointing"),
    *(Column(f"mAP@{t:g}", "gyt", f"video_map@{t:g}") for t in DEFAULT_THRESHOLDS),
    Column("mAP mean", "gyt", "video_map"),
)
TABLES = {
    2: Table(2, "GroundingYouTube, untrimmed spatio-temporal grounding", _VIDEO_MAP),
    3: Table(
        3,
        "Spatial grounding, pointing game accuracy",
        (
            Column("YC-Inter", "yc_inter", "pointing"),
            Column("GYT", "gyt", "pointing"),
            Column("V-HICO"),
            Column("Daly"),
        ),
    ),
    4: Table(
        4,
        "MiningYouTube, temporal grounding",
        (
            Column("IoU", "myt", "temporal_iou"),
            Column("IoD", "myt", "temporal_iod"),
            Column("MoF", "myt", "temporal_mof"),
        ),
    ),
    7: Table(7, "GroundingYouTube, single-action clips (spatio-temporal)", _VIDEO_MAP, mode="clip"),
    12: Table(
        12,
        "GroundingYouTube, video mAP mean by the 3-D mask threshold τ (stg eval --scoring.tau_sweep=[...])",
        tuple(Column(f"τ={t:g}", "gyt", f"video_map|tau={t:g}") for t in TAU_SWEEP),
    ),
}


def infer_dataset(metrics: dict[str, object], where: str) -> str:
    """Dataset of a bare metrics dict, from the metrics only that dataset has."""
    if any(k.startswith("temporal_") for k in metrics):
        return "myt"
    if "iou_pointing" in metrics or "video_map" in metrics:
        return "gyt"
    raise StgUserError(
        f"{where}: cannot tell the dataset of a bare metrics dict with keys {sorted(metrics)[:6]}; "
        'wrap it as {"name": ..., "dataset": "gyt|yc_inter|myt", "metrics": {...}}'
    )


def _run_name(path: Path, dataset: str) -> str:
    return path.parent.name if path.stem == dataset and path.parent.name else path.stem


def read_results(path: str | Path) -> tuple[list[Result], list[Result]]:
    """(runs, baseline rows) of one JSON file (forms in the module docstring)."""
    path = Path(path)
    data = read_json_object(
        path, "results", "expected an object (a metrics dict or one with 'metrics')", StgUserError
    )
    if "labels" in data and "metrics" not in data:
        return _report_results(path, data)
    if "metrics" not in data:
        data = {"metrics": data, "dataset": infer_dataset(data, str(path))}
    metrics, dataset = data["metrics"], data.get("dataset")
    if not isinstance(metrics, dict):
        raise StgUserError(f"{path}: key 'metrics' must map metric names to numbers")
    if not isinstance(dataset, str):
        dataset = infer_dataset(metrics, str(path))
    name = data.get("name") or _run_name(path, dataset)
    mode = data.get("mode", "untrimmed")
    baselines = []
    for row, values in (data.get("baselines") or {}).items():
        if not isinstance(values, dict):
            raise StgUserError(f"{path}: baselines[{row!r}] must map metric names to numbers")
        baselines.append(Result(str(row), dataset, values, mode, f"{path} (baseline)"))
    return [Result(str(name), dataset, metrics, mode, str(path))], baselines


def _report_results(path: Path, data: dict) -> tuple[list[Result], list[Result]]:
    """The demo's / reproduce's ``metrics.json``: ``{dataset: {row: {metric: value | {mean, ...}}}, labels}``.

    Rows are named by their label; the text-blind and oracle rows are baselines; a reproduce cell is its mean.
    """
    runs, baselines = [], []
    for dataset, rows in data.items():
        if dataset in ("labels", "seeds") or not isinstance(rows, dict):
            continue
        for key, values in rows.items():
            metrics = {m: v["mean"] if isinstance(v, dict) else v for m, v in values.items()}
            name = str(data["labels"].get(key, key))
            kind = baselines if key in REFERENCE_ROWS else runs
            kind.append(Result(name, dataset, metrics, "untrimmed", f"{path} ({key})"))
    return runs, baselines


def load_results(paths: Sequence[str | Path]) -> tuple[list[Result], list[Result]]:
    """(runs, baselines) of all files; a run may appear once per (dataset, mode), a baseline's first copy wins."""
    runs: dict[tuple[str, str, str], Result] = {}
    baselines: dict[tuple[str, str, str], Result] = {}
    for path in paths:
        file_runs, rows = read_results(path)
        for run in file_runs:
            key = (run.name, run.dataset, run.mode)
            if key in runs:
                raise StgUserError(
                    f"{path}: run {run.name!r} already has {run.dataset} ({run.mode}) results from "
                    f"{runs[key].source}; give one of them another 'name'"
                )
            runs[key] = run
        for row in rows:
            baselines.setdefault((row.name, row.dataset, row.mode), row)
    return list(runs.values()), list(baselines.values())


def _cell(result: Result | None, column: Column) -> str:
    if result is None or column.metric is None or column.metric not in result.metrics:
        return MISSING
    value = result.metrics[column.metric]
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise StgUserError(
            f"{result.source}: metric {column.metric!r} must be a finite number, got {value!r}"
        )
    return f"{100 * value:.2f}"


def table_rows(results: Sequence[Result], table: Table) -> list[list[str]]:
    """[name, cells...] for each name (in order of appearance) with at least one filled cell."""
    by_name: dict[str, dict[str, Result]] = {}
    for r in results:
        if r.mode == table.mode and r.dataset in table.datasets:
            by_name.setdefault(r.name, {})[r.dataset] = r
    rows = []
    for name, per_dataset in by_name.items():
        cells = [_cell(per_dataset.get(c.dataset), c) for c in table.columns]
        if any(cell != MISSING for cell in cells):
            rows.append([name, *cells])
    return rows


def render_table(runs: Sequence[Result], table: int, baselines: Sequence[Result] = ()) -> str:
    """Markdown of paper Table ``table``: runs, then baseline rows; empty string when no row applies."""
    if table not in TABLES:
        raise StgUserError(f"no layout for Table {table}; choose one of {sorted(TABLES)}")
    spec = TABLES[table]
    rows = table_rows(runs, spec) + table_rows(baselines, spec)
    if not rows:
        return ""
    header = ["Method", *(c.header for c in spec.columns)]
    lines = [
        f"**Table {spec.number}.** {spec.title} (%).",
        "",
        "| " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * len(spec.columns),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stg tables", description="Paper Tables 2, 3, 4, 7, 12 in Markdown from evaluation JSON files."
    )
    parser.add_argument("results", nargs="+", help="results JSON files (stg eval --out, or metrics dicts)")
    parser.add_argument(
        "--table", type=int, action="append", choices=sorted(TABLES), help="repeatable; default: every table"
    )
    parser.add_argument("--out", help="also write the Markdown here")
    args = parser.parse_args(argv)
    try:
        runs, baselines = load_results(args.results)
        rendered = [render_table(runs, n, baselines) for n in args.table or sorted(TABLES)]
    except StgUserError as err:
        print(f"stg tables: error: {err}", file=sys.stderr)
        return 2
    text = "\n\n".join(t for t in rendered if t)
    if not text:
        print("stg tables: error: no result file has the metrics of the requested tables", file=sys.stderr)
        return 2
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
