"""Run folders: every `stg fit/validate/test/predict` writes into a folder of its own.

    <output_dir>/<experiment.name>/v<N>/   config.yaml, run.json, metrics.csv, checkpoints/, wandb/, ...
    <output_dir>/<experiment.name>/latest  → the newest training (fit) run of that name

A new run takes the next free version (created with mkdir, so two runs started at once never share one); a
resumed training (`--ckpt_path last`, or a checkpoint inside one of the name's run folders) writes into the
run it resumes. Nothing here deletes or overwrites a file of another run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stg_lightning.errors import StgUserError

RUN_FILE = "run.json"
LATEST = "latest"
RUN_DIR_ENV = "STG_RUN_DIR"
_VERSION = re.compile(r"v(\d+)")


@dataclass(frozen=True)
class Run:
    """Where a run writes; `resumed` when it continues an earlier training in the same folder."""

    dir: Path
    resumed: bool
    info: dict[str, Any]

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"


def code_version() -> str:
    """The git commit of the code (with `+dirty` when the tree has changes), or the package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"stg-lightning {version('stg-lightning')}"
        except PackageNotFoundError:
            return "unknown"


def versions(root: Path) -> list[int]:
    """The version numbers of the run folders under `root`, ascending."""
    if not root.is_dir():
        return []
    found = (_VERSION.fullmatch(p.name) for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    return sorted(int(m[1]) for m in found if m)


def new_run(root: Path, command: str, **info: Any) -> Run:
    """A fresh `root/v<N>` with its run.json (command, start time, code version, a W&B run id)."""
    number = (versions(root) or [0])[-1] + 1
    root.mkdir(parents=True, exist_ok=True)
    while True:
        path = root / f"v{number}"
        try:
            path.mkdir()
            break
        except FileExistsError:  # another run took it in the meantime
            number += 1
    record = {
        "command": command,
        "version": number,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "code_version": code_version(),
        "wandb_id": uuid.uuid4().hex[:12],
        **info,
    }
    (path / RUN_FILE).write_text(json.dumps(record, indent=1))
    if command == "fit":
        point_latest(root, path)
    return Run(path, resumed=False, info=record)


def point_latest(root: Path, run_dir: Path) -> None:
    """`root/latest` → `run_dir`, replaced atomically."""
    tmp = root / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, root / LATEST)


def open_run(path: Path) -> Run:
    """The run in folder `path` (to resume it)."""
    return Run(path, resumed=True, info=json.loads((path / RUN_FILE).read_text()))


def run_of_checkpoint(ckpt: Path, root: Path) -> Path | None:
    """The run folder under `root` that holds `ckpt` (`<run>/checkpoints/x.ckpt`), else None."""
    run_dir = ckpt.resolve().parent.parent
    inside = ckpt.resolve().parent.name == "checkpoints" and run_dir.parent == root.resolve()
    return run_dir if inside and (run_dir / RUN_FILE).is_file() else None


def latest_checkpoint(root: Path) -> Path:
    """`root/latest/checkpoints/last.ckpt`; a one-line error when there is none."""
    last = root / LATEST / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise StgUserError(
            f"--ckpt_path last: no {last} to resume from (drop --ckpt_path to start a new run, "
            "or give a checkpoint's path)"
        )
    return last


def resolve_run(root: Path, command: str, ckpt_path: str | None) -> tuple[Run, str | None]:
    """The folder a `command` run writes to, and the checkpoint path to hand Lightning.

    `fit` resumes into the run its checkpoint belongs to (`last`: the latest run); every other case is a new
    version. `last` for validate/test/predict means the latest training run's last checkpoint too.
    """
    if not is_first_process():  # DDP/SLURM rank > 0: rank 0's folder (only rank 0 writes there)
        return Run(Path(os.environ.get(RUN_DIR_ENV, root / "rank-gt-0")), resumed=False, info={}), (
            str(latest_checkpoint(root)) if ckpt_path == "last" else ckpt_path
        )
    if ckpt_path == "last":
        ckpt_path = str(latest_checkpoint(root))
    if command == "fit" and ckpt_path is not None:
        run_dir = run_of_checkpoint(Path(ckpt_path), root)
        if run_dir is not None:
            os.environ[RUN_DIR_ENV] = str(run_dir)
            return open_run(run_dir), ckpt_path
    extra = {"ckpt_path": str(Path(ckpt_path).resolve())} if ckpt_path else {}
    run = new_run(root, command, **extra)
    os.environ[RUN_DIR_ENV] = str(run.dir)  # for the rank processes Lightning starts from this one
    return run, ckpt_path


def is_first_process() -> bool:
    """False in the processes of ranks > 0 (Lightning's DDP children, torchrun, SLURM tasks)."""
    return all(os.environ.get(var, "0") == "0" for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))
