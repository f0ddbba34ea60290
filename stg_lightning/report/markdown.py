"""``report.md``: one metrics table (model, baselines, oracle), the figures and free-form notes."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from stg_lightning.errors import StgUserError

MISSING = "—"  # a metric the row does not measure or that does not apply to it
NAME_KEY = "name"  # the row label in each row dict
REPORT_FILE = "report.md"


def format_cell(value: object, digits: int = 3) -> str:
    """A table cell: numbers rounded, None/NaN as :data:`MISSING`, text with ``|`` escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:d}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def metrics_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | Mapping[str, str]) -> str:
    """A Markdown table: one line per row (``row[NAME_KEY]`` first), one column per metric key.

    ``columns`` lists metric keys, or maps them to header texts; a key absent from a row prints as "—".
    """
    headers = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    lines = [
        "| " + " | ".join(["", *headers.values()]) + " |",
        "|" + "---|" + "---:|" * len(headers),
    ]
    for row in rows:
        cells = [format_cell(row.get(NAME_KEY, "")), *(format_cell(row.get(key)) for key in headers)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    out_dir: str | Path,
    title: str,
    metrics_table_rows: Sequence[Mapping[str, object]],
    columns: Sequence[str] | Mapping[str, str],
    figures: Mapping[str, str | Path],
    notes: Sequence[str],
    sections: Mapping[str, str] | None = None,
) -> Path:
    """Write ``out_dir/report.md``: the ``sections`` (heading → Markdown) first, the table, each figure
    (caption → PNG, linked relative to ``out_dir``) and the notes as a list. Returns the file's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}"]
    for heading, body in (sections or {}).items():
        parts += [f"## {heading}", body]
    parts += ["## Metrics", metrics_table(metrics_table_rows, columns)]
    parts.append(f"{MISSING} = not measured by that row.")
    if figures:
        parts.append("## Figures")
    for i, (caption, png) in enumerate(figures.items(), start=1):
        png = Path(png)
        if not png.is_file():
            raise StgUserError(f"report figure {caption!r}: {png} does not exist (write the figure first)")
        link = Path(os.path.relpath(png.resolve(), out_dir.resolve())).as_posix()
        parts.append(f"**Figure {i}.** {caption}\n\n![{caption}]({link})")
    if notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {note}" for note in notes))
    path = out_dir / REPORT_FILE
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path
