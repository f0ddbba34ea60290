"""`stg readme` (`make readme`): the README's result tables, rendered from the report files they quote.

A table sits between `<!-- table FILE -->` and `<!-- end table -->`; FILE is a `metrics.json` written by
`stg demo` or `stg reproduce` (`{split: {row: {metric: value | {mean, std, values}}}}`). Running the tool
rewrites every such block from its file; `tests/test_report_readme.py` checks that the README's blocks are
what their files render, so no number in them is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from stg_lightning.errors import StgUserError
from stg_lightning.report.claims import mean_std
from stg_lightning.report.markdown import MISSING, format_cell

BLOCK = re.compile(r"(<!-- table (\S+) -->\n)(.*?)(<!-- end table -->)", re.S)
# Columns of the README's table: (split, metric, header).
README_COLUMNS = (
    ("gyt", "pointing", "GYT pointing"),
    ("gyt", "video_map", "GYT vmAP mean"),
    ("gyt", "video_map@0.3", "GYT vmAP@0.3"),
    ("yc_inter", "pointing", "YC-Inter pointing"),
    ("myt", "temporal_iou", "MYT IoU"),
    ("gyt", "named_share", "GYT named-object share"),
)


def cell(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, dict):
        return mean_std(value["values"])
    return format_cell(value)


def render_table(metrics: dict[str, Any]) -> str:
    """One row per row key (in the order of the file's `labels`, then as the splits first name them), one
    column per README column."""
    splits = {k: v for k, v in metrics.items() if k not in ("labels", "seeds")}
    rows = [r for r in metrics.get("labels", {}) if any(r in split_rows for split_rows in splits.values())]
    for split_rows in splits.values():
        rows += [r for r in split_rows if r not in rows]
    lines = ["| row (`metrics.json` key) | " + " | ".join(h for *_, h in README_COLUMNS) + " |"]
    lines.append("|---|" + "---:|" * len(README_COLUMNS))
    for row in rows:
        values = [cell(splits.get(split, {}).get(row, {}).get(metric)) for split, metric, _ in README_COLUMNS]
        lines.append(f"| `{row}` | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def render_readme(text: str, root: Path) -> str:
    """`text` with every table block rendered from its file (paths relative to `root`)."""

    def replace(match: re.Match) -> str:
        path = root / match[2]
        if not path.is_file():
            raise StgUserError(
                f"README table block names {match[2]}, which does not exist (run the stage that writes it)"
            )
        return match[1] + render_table(json.loads(path.read_text())) + match[4]

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stg readme", description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--check", action="store_true", help="exit 1 if a block differs from its file")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    rendered = render_readme(text, args.readme.resolve().parent)
    if args.check:
        if rendered != text:
            print(
                f"stg readme: {args.readme} tables differ from their report files (run `make readme`)",
                file=sys.stderr,
            )
            return 1
        return 0
    args.readme.write_text(rendered)
    print(f"stg readme: {len(BLOCK.findall(text))} table(s) rendered in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
