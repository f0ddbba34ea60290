"""`stg synth`: generate the synthetic narrated benchmark from a preset, YAML configs and overrides.

    stg synth --out DIR [--preset demo|paper] [--config FILE ...] [--seed=1] [--script.unnarrated_prob=0.3]

Keys are `SynthConfig` fields (`stg_lightning.config`: the same syntax as `stg fit`).
"""

from __future__ import annotations

import sys
import time

from jsonargparse import ArgumentParser

from stg_lightning.config import Parsed, parse
from stg_lightning.errors import StgUserError
from stg_lightning.synth.config import PRESETS, SynthConfig
from stg_lightning.synth.writer import generate


def _flags(parser: ArgumentParser) -> None:
    parser.add_argument("--out", type=str | None, default=None, help="output directory (required)")
    parser.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")


def parse_args(argv: list[str] | None = None) -> Parsed:
    """(SynthConfig: the preset (default: demo = the defaults), --config files over it, then --key=value
    flags; the other flags: out, workers)."""
    return parse(
        SynthConfig,
        argv,
        prog="stg synth",
        description="Generate narrated synthetic recipe videos with GYT / MYT / YC-Inter ground truth.",
        presets=PRESETS,
        extra=_flags,
    )


def build_config(argv: list[str] | None = None) -> SynthConfig:
    """The SynthConfig `stg synth` would use for these arguments (e.g. ["--preset", "paper", "--seed=1"])."""
    return parse_args(argv or []).config


def main(argv: list[str] | None = None) -> int:
    try:
        cfg, args = parse_args(argv)
        if not args.out:
            raise StgUserError("--out DIR is required (the benchmark's output folder)")
        start = time.perf_counter()
        counts = generate(cfg, args.out, workers=args.workers, progress=sys.stderr.isatty())
    except StgUserError as err:
        print(f"stg synth: error: {err}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{split}: {c['videos']} videos" for split, c in counts.items())
    print(f"stg synth: wrote {summary} to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
