"""README tables are rendered from report files: a known-answer rendering, and the README's own blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stg_lightning.errors import StgUserError
from stg_lightning.report.readme import BLOCK, main, render_readme, render_table

ROOT = Path(__file__).resolve().parents[1]


def test_a_table_renders_single_values_and_seed_means():
    metrics = {
        "gyt": {
            "full": {"pointing": 0.5, "video_map": 0.25, "video_map@0.3": 0.125},
            "chance_area": {"pointing": 0.09},
        },
        "myt": {"full": {"temporal_iou": {"mean": 0.3, "std": 0.1, "values": [0.2, 0.4]}}},
        "seeds": [0, 1],
        "labels": {"full": "full model"},
    }
    assert render_table(metrics).splitlines() == [
        "| row (`metrics.json` key) | GYT pointing | GYT vmAP mean | GYT vmAP@0.3 | YC-Inter pointing | MYT IoU "
        "| GYT named-object share |",
        "|---|---:|---:|---:|---:|---:|---:|",
        "| `full` | 0.500 | 0.250 | 0.125 | — | 0.300 ± 0.100 | — |",
        "| `chance_area` | 0.090 | — | — | — | — | — |",
    ]


def test_blocks_are_rewritten_from_their_files_and_check_catches_hand_edits(tmp_path, capsys):
    (tmp_path / "m.json").write_text(json.dumps({"gyt": {"full": {"pointing": 0.5}}}))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table m.json -->\n| typed by hand |\n<!-- end table -->\nafter\n")
    assert main(["--readme", str(readme), "--check"]) == 1
    assert main(["--readme", str(readme)]) == 0
    assert "| `full` | 0.500 | — |" in readme.read_text() and readme.read_text().endswith("after\n")
    assert main(["--readme", str(readme), "--check"]) == 0
    with pytest.raises(StgUserError, match=r"missing\.json, which does not exist"):
        render_readme("<!-- table missing.json -->\n<!-- end table -->", tmp_path)


def test_the_readme_tables_are_what_their_report_files_render():
    text = (ROOT / "README.md").read_text()
    assert BLOCK.findall(text), "the README quotes its results through table blocks"
    assert render_readme(text, ROOT) == text, (
        "README tables differ from their report files: run `make readme`"
    )
