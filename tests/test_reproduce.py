import json

import pytest

from stg_lightning.reproduce import ReproduceConfig, aggregate, write_aggregate_report


def _seed(full: float, zero_shot: float) -> dict:
    return {
        "gyt": {"full": {"pointing": full, "video_map": 0.5}, "zero_shot": {"pointing": zero_shot}},
        "labels": {"full": "full model", "zero_shot": "zero-shot"},
    }


def test_aggregate_gives_mean_and_population_std_per_row_and_metric():
    summary = aggregate({0: _seed(0.6, 0.4), 1: _seed(0.8, 0.4)})
    assert summary["seeds"] == [0, 1] and summary["labels"]["full"] == "full model"
    stats = summary["gyt"]["full"]["pointing"]
    assert stats["mean"] == pytest.approx(0.7) and stats["std"] == pytest.approx(0.1)
    assert stats["values"] == [0.6, 0.8]
    assert summary["gyt"]["zero_shot"]["pointing"]["std"] == 0.0


def test_aggregate_report_has_the_claims_over_seeds_and_mean_std_cells(tmp_path):
    cfg = ReproduceConfig(seeds=[0, 1], out=str(tmp_path / "runs"), report_dir=str(tmp_path / "rep"))
    report = write_aggregate_report(cfg, {0: _seed(0.6, 0.4), 1: _seed(0.8, 0.4)})
    text = report.read_text()
    assert "Paper claims (over seeds)" in text
    assert "| full model | 0.700 ± 0.100 |" in text  # the metrics table: GYT pointing first
    saved = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert saved["gyt"]["full"]["pointing"]["values"] == [0.6, 0.8] and saved["seeds"] == [0, 1]
