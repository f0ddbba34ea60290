"""`stg sweep FILE`: run a W&B sweep definition's grid locally, one run after another, without a W&B server.

The file is a regular W&B sweep YAML (`wandb sweep FILE` works on it too). Its `command` uses the
`stg fit --config ... ${args}` interface; each grid point becomes `--key=value` overrides, plus its own
`--experiment.name` (so every run gets its own log folder with its resolved `config.yaml`) and
`--experiment.group` (the sweep's name, so runs line up in a dashboard).
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from stg_lightning.errors import StgUserError


def load_sweep(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StgUserError(f"sweep file {path} not found; sweeps live in experiments/sweeps/<name>.yaml")
    spec = yaml.safe_load(path.read_text())
    for key in ("method", "parameters", "command"):
        if key not in spec:
            raise StgUserError(f"{path}: missing key '{key}' (a W&B sweep needs method, parameters, command)")
    if spec["method"] != "grid":
        raise StgUserError(f"{path}: local sweeps run grids only (method: grid), got '{spec['method']}'")
    return spec


def grid_points(parameters: dict[str, dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Cartesian product of every parameter's `values` (or single `value`), in file order."""
    names, choices = [], []
    for name, spec in parameters.items():
        if "values" in spec:
            choices.append(list(spec["values"]))
        elif "value" in spec:
            choices.append([spec["value"]])
        else:
            raise StgUserError(f"{path}: parameter '{name}' needs 'values' or 'value' for a grid sweep")
        names.append(name)
    return [dict(zip(names, combo)) for combo in itertools.product(*choices)]


def format_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def build_command(spec: dict[str, Any], point: dict[str, Any], run_name: str, group: str) -> list[str]:
    """Expand the W&B macros of `command` for one grid point; `stg` runs through this interpreter."""
    args = [f"--{k}={format_value(v)}" for k, v in point.items()]
    args += [f"--experiment.name={run_name}", f"--experiment.group={group}"]
    command: list[str] = []
    for token in spec["command"]:
        if token == "${env}":
            continue
        if token in ("${program}", "stg"):
            command += [sys.executable, "-m", "stg_lightning"]
        elif token == "${interpreter}":
            command.append(sys.executable)
        elif token == "${args}":
            command += args
        elif token == "${args_no_hyphens}":
            command += [a.removeprefix("--") for a in args]
        else:
            command.append(str(token))
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stg sweep", description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweep", type=Path, help="W&B sweep YAML, e.g. experiments/sweeps/table5_similarity.yaml"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    parser.add_argument(
        "--keep_going",
        action="store_true",
        help="run the remaining points after a failed run (default: stop at the first failure)",
    )
    parser.add_argument(
        "extra", nargs="*", help="overrides appended to every run, e.g. --trainer.max_steps=5"
    )
    args, unknown = parser.parse_known_args(argv)
    spec = load_sweep(args.sweep)
    group = spec.get("name", args.sweep.stem)
    points = grid_points(spec["parameters"], args.sweep)
    failed = []
    for index, point in enumerate(points):
        run_name = f"{group}-{index:02d}"
        command = build_command(spec, point, run_name, group) + args.extra + unknown
        print(f"[{index + 1}/{len(points)}] {run_name}: {point}", flush=True)
        if args.dry_run:
            print("  " + " ".join(command))
            continue
        code = subprocess.run(command, check=False).returncode
        if code != 0:
            failed.append(run_name)
            if not args.keep_going:
                # A config or data error fails every later point the same way: stop, say what is left.
                left = len(points) - index - 1
                print(
                    f"stg sweep: {run_name} failed (exit {code}); stopped with {left} of {len(points)} runs "
                    "not started (--keep_going runs them anyway)",
                    file=sys.stderr,
                )
                return 1
    if failed:
        print(f"{len(failed)} of {len(points)} runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
