import json
from pathlib import Path

import pytest

from stg_lightning.demo import Stages, load_demo_config
from stg_lightning.demo_eval import COLUMNS, backbone_note, eval_section, readout_summary, table_rows
from stg_lightning.errors import StgUserError
from stg_lightning.eval.inference import InferenceConfig
from stg_lightning.eval.scoring import ScoringConfig

ROOT = Path(__file__).resolve().parents[1]


def test_demo_config_names_files_that_exist():
    cfg = load_demo_config(ROOT / "configs" / "demo.yaml")
    paths = [cfg.synth["config"], cfg.pretrain["config"], *cfg.train["configs"], cfg.train["global_only"]]
    assert all((ROOT / p).is_file() for p in paths), paths
    assert set(cfg.eval["splits"]) == {"gyt", "myt", "yc_inter"}


def test_demo_readouts_are_inference_and_scoring_configs():
    ev = load_demo_config(ROOT / "configs" / "demo.yaml").eval
    demo = eval_section(InferenceConfig, ev["inference"], "inference")
    paper = eval_section(InferenceConfig, ev["paper_inference"], "paper_inference")
    assert (demo.temporal, demo.spatial) == ("patch_pool", "patch_similarity")
    assert (paper.temporal, paper.spatial) == ("global", "rollout")  # DESIGN §4
    assert eval_section(ScoringConfig, ev["scoring"], "scoring").relative_tau
    assert "temporal=patch_pool" in readout_summary(ev)["trained model"]
    with pytest.raises(StgUserError, match=r"eval\.inference: .*temporl.*InferenceConfig fields"):
        eval_section(InferenceConfig, {"temporl": "global"}, "inference")
    with pytest.raises(ValueError, match="temporal must be"):
        eval_section(InferenceConfig, {"temporal": "cls"}, "inference")


def test_unknown_demo_key_fails_clearly(tmp_path):
    bad = tmp_path / "demo.yaml"
    bad.write_text("seed: 1\nepochs: 3\n")
    with pytest.raises(StgUserError, match="unknown keys \\['epochs'\\]"):
        load_demo_config(bad)


def test_stages_skip_finished_outputs_and_stop_on_failure(tmp_path):
    stages = Stages(load_demo_config(ROOT / "configs" / "demo.yaml"))
    calls = []
    done = tmp_path / "done"
    done.write_text("ok")
    stages.run("finished stage", done, lambda: calls.append("ran"))
    assert calls == [] and "finished stage" not in stages.timings
    stages.run("new stage", tmp_path / "missing", lambda: calls.append("ran"))
    assert calls == ["ran"] and "new stage" in stages.timings
    with pytest.raises(StgUserError, match="failed"):
        stages.run("broken stage", tmp_path / "missing", lambda: 2)


def test_table_rows_follow_the_report_order_and_leave_gaps():
    results = {
        "gyt": {"oracle": {"pointing": 1.0}, "trained model": {"pointing": 0.5, "video_map": 0.25}},
        "myt": {"trained model": {"temporal_iou": 0.4}},
    }
    rows = table_rows(results)
    assert [r["name"] for r in rows] == ["trained model", "oracle"]
    assert rows[0] == {
        "name": "trained model",
        "gyt/pointing": 0.5,
        "gyt/video_map": 0.25,
        "myt/temporal_iou": 0.4,
    }
    assert set(rows[0]) - {"name"} <= set(COLUMNS)


def test_backbone_note_reads_the_pretraining_summary(tmp_path):
    summary = {
        "steps": 1100,
        "train_seconds": 299.6,
        "probe": {"pretrained": {"pointing": 0.8, "verb_choice": 0.6, "retrieval": 0.5}},
        "verb_choice_chance": 0.2,
    }
    path = tmp_path / "backbone.pt.json"
    path.write_text(json.dumps(summary))
    assert backbone_note(path) == (
        f"backbone pretraining (`{path}`): 1100 steps in 300 s, zero-shot pointing 0.800, "
        "zero-shot verb choice 0.600, zero-shot retrieval 0.500, verb choice chance 0.20"
    )
