"""`stg` command line: Lightning fit/validate/test/predict plus the project tools (prepare, synth, eval, ...).

A dispatcher: each command's module is imported when it runs (`stg_lightning.training_cli` for the
Lightning commands), so a tool such as `stg eval --predictions` starts without torch or Lightning.
"""

from __future__ import annotations

import importlib
import sys

from stg_lightning.errors import StgUserError, user_message

# Tools that are not Lightning subcommands: name → ("module:function" taking argv and returning an exit
# code, what it does for `stg --help`).
TOOLS = {
    "prepare": ("stg_lightning.data.prepare:main", "narrated videos + captions → WebDataset clip shards"),
    "prepare-merge": (
        "stg_lightning.data.prepare_merge:main",
        "join the parts of `stg prepare --part I/N`: merged summary + shard list",
    ),
    "synth": ("stg_lightning.synth.cli:main", "generate the synthetic narrated benchmark"),
    "pretrain": ("stg_lightning.pretrain.cli:main", "pretrain the tiny stand-in backbone image–text"),
    "eval": ("stg_lightning.eval.cli:main", "predict and score GYT / MYT / YC-Inter"),
    "combine": (
        "stg_lightning.eval.combine:main",
        "*when* from one predictions file, *where* from another",
    ),
    "ground": (
        "stg_lightning.ground.cli:ground_main",
        "a model on your own video + queries → predictions, timeline, overlay video, HTML viewer",
    ),
    "view": ("stg_lightning.ground.cli:view_main", "an HTML viewer page per video of any predictions file"),
    "tables": ("stg_lightning.report.tables:main", "the paper's results tables from evaluation JSON files"),
    "readme": (
        "stg_lightning.report.readme:main",
        "the README's result tables from the report files they quote",
    ),
    "sweep": ("stg_lightning.sweep:main", "run a W&B sweep file's grid locally, one run after another"),
    "demo": ("stg_lightning.demo:main", "the whole loop on the synthetic benchmark (make demo)"),
    "reproduce": (
        "stg_lightning.reproduce:main",
        "the demo with every ablation over seeds 0, 1, 2 (make reproduce)",
    ),
}
LIGHTNING_COMMANDS = {
    "fit": "train (LightningCLI: --config configs/defaults.yaml --config experiments/X.yaml)",
    "validate": "one pass over the held-out clips",
    "test": "the held-out clips' losses",
    "predict": "per-clip selection and scores → <run>/predictions.jsonl",
}


def usage() -> str:
    """`stg --help`: every command, Lightning's and the project's tools."""
    width = max(map(len, [*TOOLS, *LIGHTNING_COMMANDS]))
    lines = ["usage: stg COMMAND [--config FILE ...] [--key=value ...]", "", "training (Lightning):"]
    lines += [f"  {name:<{width}}  {text}" for name, text in LIGHTNING_COMMANDS.items()]
    lines += ["", "tools:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in TOOLS.items()]
    lines += ["", "`stg COMMAND --help` lists a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    try:
        if args[0] in TOOLS:
            module_name, function = TOOLS[args[0]][0].split(":")
            return getattr(importlib.import_module(module_name), function)(args[1:]) or 0
        from stg_lightning.training_cli import run_lightning_cli

        # None lets LightningCLI read sys.argv itself (it warns when given both).
        run_lightning_cli(argv)
    except StgUserError as err:
        print(f"stg: error: {user_message(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
