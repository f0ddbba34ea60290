"""`stg prepare-merge --config C --parts N`: the N parts of `stg prepare --part I/N` as one dataset.

Checks that every part 1..N in `out` finished, with the settings of the given config (the one the parts
ran with), cut from the same list of videos, with its shards intact; then writes `<out>/summary.json` (totals
over the parts, every skip, every shard) and `<out>/shards.txt`, one shard a line relative to the file, in
the order of a whole run's clips: `data.train_shards: <out>/shards.txt`. A part that is missing or
unfinished stops the merge with one line naming it; rerunning that part resumes it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from jsonargparse import ArgumentParser

from stg_lightning.config import parse
from stg_lightning.data.prepare import (
    STATE_NAME,
    PrepareConfig,
    PrepareState,
    damaged_shard,
    other_settings,
    output_settings,
    part_folder,
    shard_pattern,
)
from stg_lightning.data.shards import SUMMARY_NAME
from stg_lightning.errors import StgUserError

SHARD_LIST_NAME = "shards.txt"


def _part_problem(
    folder: Path, state: PrepareState | None, config: dict, partition: str | None
) -> str | None:
    """Why the part in `folder` cannot be merged with the others (whose video list has digest `partition`)."""
    if state is None:
        return "missing"
    if not state.done or not (folder / SUMMARY_NAME).is_file():
        return "unfinished (still running, or stopped)"
    if state.inputs.get("partition") != partition:
        return "was cut from another list of videos than the first part (the videos changed between parts)"
    return other_settings(state, config) or damaged_shard(folder, state)


def merge_parts(cfg: PrepareConfig, parts: int) -> dict:
    """Check the `parts` parts of `cfg.out` and write the merged summary.json and shards.txt; returns the
    summary. StgUserError naming every part that is missing, unfinished, stale or damaged."""
    if parts < 1:
        raise StgUserError(f"prepare-merge: --parts must be the N of the parts' --part I/N, got {parts}")
    out = Path(cfg.out)
    if (out / STATE_NAME).is_file():  # its summary.json would be overwritten
        raise StgUserError(f"{out} holds a whole (not --part) run: merge parts into their own --out folder")
    config = output_settings(cfg)
    folders = [part_folder(out, i, parts) for i in range(1, parts + 1)]
    states = [
        PrepareState(**json.loads((f / STATE_NAME).read_text())) if (f / STATE_NAME).is_file() else None
        for f in folders
    ]
    partition = next((s.inputs.get("partition") for s in states if s is not None), None)
    problems = [
        f"part {i}/{parts} {problem}"
        for i, (folder, state) in enumerate(zip(folders, states), start=1)
        if (problem := _part_problem(folder, state, config, partition))
    ]
    if problems:
        raise StgUserError(
            f"{out}: cannot merge: {'; '.join(problems)}. Run (or rerun: it resumes) `stg prepare"
            f" --config ... --part I/{parts}` for those parts, then merge again with the same --config"
        )
    summaries = [json.loads((f / SUMMARY_NAME).read_text()) for f in folders]
    skipped_counts: Counter = Counter()
    for summary in summaries:
        skipped_counts.update(summary["skipped_counts"])
    shards = {
        f"{f.name}/{name}": n for f, s in zip(folders, summaries) for name, n in sorted(s["shards"].items())
    }
    (out / SHARD_LIST_NAME).write_text("".join(f"{name}\n" for name in shards))
    merged = {
        "parts": parts,
        "config": config,
        **{k: sum(s[k] for s in summaries) for k in ("videos_total", "videos_read", "sentences_written")},
        # Every part counts these over the whole caption file and video list.
        "captioned_videos_without_file": summaries[0]["captioned_videos_without_file"],
        "skipped_counts": dict(sorted(skipped_counts.items())),
        "skipped": [item for s in summaries for item in s["skipped"]],
        "shards": shards,
        "pattern": "::".join(  # one brace pattern a part: parts hold different numbers of shards
            shard_pattern(cfg.shard_prefix, len(s["shards"]), f)
            for f, s in zip(folders, summaries)
            if s["shards"]
        ),
        "shard_list": str(out / SHARD_LIST_NAME),
    }
    (out / SUMMARY_NAME).write_text(json.dumps(merged, indent=1))
    return merged


def _flags(parser: ArgumentParser) -> None:
    parser.add_argument("--parts", type=int, default=0, help="N of the parts' --part I/N (required)")


def main(argv: list[str] | None = None) -> int:
    parsed = parse(
        PrepareConfig, argv, prog="stg prepare-merge", description=__doc__.split("\n\n")[0], extra=_flags
    )
    summary = merge_parts(parsed.config, parsed.args.parts)
    print(
        f"stg prepare-merge: {summary['sentences_written']} clips from {summary['videos_read']} videos in "
        f"{len(summary['shards'])} shards of {summary['parts']} parts; skipped {summary['skipped_counts']};"
        f" shard list {summary['shard_list']}"
    )
    return 0
