"""Evaluation settings stored beside their numbers: in checkpoints, predictions files and results JSON, and
`stg eval` starting from them (defaults < stored < --config files < flags)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from stg_lightning.config import to_dict
from stg_lightning.data.prepare import PrepareConfig
from stg_lightning.demo_eval import (
    FULL,
    ReportInputs,
    evaluate_split,
    scoring_config,
    split_readouts,
    store_readouts,
)
from stg_lightning.errors import StgUserError
from stg_lightning.eval.cli import build_config, main, parse_args
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.models import load_model
from stg_lightning.eval.predictions import (
    FramePrediction,
    VideoPredictions,
    read_predictions,
    read_predictions_settings,
    write_predictions,
)
from stg_lightning.eval.readout import InferenceConfig
from stg_lightning.eval.scoring import ScoringConfig, score_predictions
from stg_lightning.eval.settings import (
    CHECKPOINT_KEY,
    base_config,
    checkpoint_settings,
    eval_settings,
    store_in_checkpoint,
)
from stg_lightning.runs import code_version

ROOT = Path(__file__).resolve().parents[1]
# A readout that changes MYT's numbers on the tiny split (min-max against the raw cosines), and a scoring
# setting that changes its result keys.
STORED_INFERENCE = InferenceConfig(normalise="minmax", heatmaps=False)
STORED_SCORING = ScoringConfig(temporal_thresholds=(0.2, 0.4))


@pytest.fixture(scope="module")
def stored_ckpt(ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint carrying STORED_INFERENCE / STORED_SCORING."""
    path = tmp_path_factory.mktemp("stored") / "stored.ckpt"
    shutil.copy(ckpt, path)
    store_in_checkpoint(path, eval_settings(STORED_INFERENCE, STORED_SCORING, written_by="test"))
    return path


def _myt(split: Path) -> list[str]:
    return [
        "--dataset",
        "myt",
        "--annotations",
        str(split / "eval" / "myt" / "annotations"),
        "--device",
        "cpu",
    ]


def _gyt(split: Path) -> list[str]:
    ann = split / "eval" / "gyt" / "GoundingYouTubeBox.json"
    return ["--dataset", "gyt", "--annotations", str(ann), "--device", "cpu"]


def _results(argv: list[str], out: Path) -> dict[str, Any]:
    assert main([*argv, "--out", str(out)]) == 0
    return json.loads(out.read_text())


def _same(a: Any, b: Any) -> bool:
    """Equal nested checkpoint contents (tensors by value)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_settings_round_trip_through_a_checkpoint(ckpt, tmp_path):
    path = tmp_path / "run" / "last.ckpt"
    path.parent.mkdir()
    shutil.copy(ckpt, path)
    before = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint_settings(path) is None
    settings = eval_settings(STORED_INFERENCE, STORED_SCORING, written_by="test", run="full")
    assert settings["inference"] == to_dict(STORED_INFERENCE) and settings["scoring"] == to_dict(
        STORED_SCORING
    )
    assert settings["code_version"] == code_version() and settings["written_by"] == "test"
    assert json.loads(json.dumps(settings)) == settings  # plain values

    store_in_checkpoint(path, settings)
    after = torch.load(path, map_location="cpu", weights_only=True)  # still loads with weights_only
    assert set(after) == {*before, CHECKPOINT_KEY}
    assert all(_same(before[k], after[k]) for k in before)  # every other entry untouched
    assert after[CHECKPOINT_KEY] == settings == checkpoint_settings(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no .tmp left behind
    load_model(path, "cpu")  # still a GroundingModule checkpoint

    again = eval_settings(InferenceConfig(theta=0.3), ScoringConfig())
    store_in_checkpoint(path, again)  # replaces the record
    assert checkpoint_settings(path) == again

    link = tmp_path / "link.ckpt"
    link.symlink_to(path)
    store_in_checkpoint(link, settings)  # through a `last.ckpt` link: its target gets them
    assert link.is_symlink() and checkpoint_settings(path) == settings

    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    assert checkpoint_settings(tmp_path / "junk.ckpt") is None
    assert checkpoint_settings(tmp_path / "missing.ckpt") is None
    with pytest.raises(StgUserError, match=r"junk\.ckpt: cannot store evaluation settings"):
        store_in_checkpoint(tmp_path / "junk.ckpt", settings)


def test_ckpt_defaults_to_its_stored_settings(split, ckpt, stored_ckpt, tmp_path, capsys):
    stored = _results([*_myt(split), "--ckpt", str(stored_ckpt)], tmp_path / "stored.json")
    line = "using the inference and scoring settings stored in --ckpt"
    assert line in capsys.readouterr().out
    explicit = [
        "--inference.normalise=minmax",
        "--inference.heatmaps=false",
        "--scoring.temporal_thresholds=[0.2,0.4]",
    ]
    given = _results([*_myt(split), "--ckpt", str(ckpt), *explicit], tmp_path / "explicit.json")
    assert line not in capsys.readouterr().out
    defaults = _results([*_myt(split), "--ckpt", str(ckpt)], tmp_path / "defaults.json")

    assert stored["metrics"] == given["metrics"]  # the stored settings, as if given explicitly
    assert stored["metrics"]["temporal_iou"] != pytest.approx(defaults["metrics"]["temporal_iou"])
    assert stored["metrics"]["temporal_mof"] != pytest.approx(defaults["metrics"]["temporal_mof"])
    assert "temporal_iou@0.2" in stored["metrics"] and "temporal_iou@0.2" not in defaults["metrics"]

    settings = stored["settings"]
    assert settings["inference"] == to_dict(STORED_INFERENCE) == given["settings"]["inference"]
    assert settings["scoring"] == to_dict(STORED_SCORING) == given["settings"]["scoring"]
    assert settings["inference"] == json.loads(json.dumps(stored["config"]["inference"]))
    assert (settings["dataset"], settings["checkpoint"]) == ("myt", str(stored_ckpt))
    assert settings["code_version"] == code_version()
    assert (settings["stored_settings"], given["settings"]["stored_settings"]) == (True, False)
    assert defaults["settings"]["inference"] == to_dict(InferenceConfig())


def test_config_files_and_flags_override_stored_settings(split, ckpt, stored_ckpt, tmp_path, capsys):
    source = ["--ckpt", str(stored_ckpt)]
    assert build_config(source).inference == STORED_INFERENCE
    assert build_config(source).scoring == STORED_SCORING
    flagged = build_config([*source, "--inference.theta=0.3"]).inference
    assert (flagged.normalise, flagged.heatmaps, flagged.theta) == ("minmax", False, 0.3)
    none, query = tmp_path / "none.yaml", tmp_path / "query.yaml"
    none.write_text("inference:\n  normalise: none\n")
    query.write_text("inference:\n  normalise: query_minmax\n")
    from_file = build_config([*source, "--config", str(none)]).inference
    assert (from_file.normalise, from_file.heatmaps) == ("none", False)  # the file's key only
    assert build_config(
        ["--config", str(query), *source, "--inference.normalise=none"]
    ).inference.normalise == ("none")

    # A flag back to the default gives the plain checkpoint's numbers, and the printed line names it.
    argv = [*_myt(split), *source, "--inference.normalise=none"]
    overridden = _results(argv, tmp_path / "overridden.json")
    assert "overridden here: inference.normalise=none (stored minmax)" in capsys.readouterr().out
    defaults = _results([*_myt(split), "--ckpt", str(ckpt)], tmp_path / "defaults.json")
    for key in ("temporal_iou", "temporal_iod", "temporal_mof"):
        assert overridden["metrics"][key] == defaults["metrics"][key]

    with pytest.raises(SystemExit):
        parse_args([*source, "--print_config"])
    assert "normalise: minmax" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_predictions_carry_their_settings_and_are_scored_with_them(split, ckpt, tmp_path, capsys, suffix):
    preds = tmp_path / f"preds{suffix}"
    scoring = ["--scoring.tau=0.5", "--scoring.relative_tau=true"]
    argv = [*_gyt(split), "--ckpt", str(ckpt), *scoring, "--save_predictions", str(preds)]
    made = _results(argv, tmp_path / "made.json")
    carried = read_predictions_settings(preds)
    assert carried is not None
    assert (carried["scoring"]["tau"], carried["scoring"]["relative_tau"]) == (0.5, True)
    assert carried["inference"] == made["settings"]["inference"] == to_dict(InferenceConfig())
    assert (carried["checkpoint"], carried["dataset"], carried["code_version"]) == (
        str(ckpt),
        "gyt",
        code_version(),
    )

    scored = _results([*_gyt(split), "--predictions", str(preds)], tmp_path / "scored.json")
    assert "settings stored in --predictions" in capsys.readouterr().out
    assert scored["metrics"] == made["metrics"]
    assert scored["settings"]["scoring"] == made["settings"]["scoring"]
    assert scored["settings"]["predictions"] == str(preds)
    plain = ["--scoring.tau=0.01", "--scoring.relative_tau=false"]
    absolute = _results([*_gyt(split), "--predictions", str(preds), *plain], tmp_path / "absolute.json")

    # Known answers: the same file scored by the library with each ScoringConfig.
    dataset = load_dataset("gyt", split / "eval" / "gyt" / "GoundingYouTubeBox.json")
    read = read_predictions(preds)
    assert scored["metrics"] == score_predictions(dataset, read, ScoringConfig(tau=0.5, relative_tau=True))
    assert absolute["metrics"] == score_predictions(dataset, read, ScoringConfig())
    assert scored["metrics"]["spatial_map"] != pytest.approx(absolute["metrics"]["spatial_map"])


def test_predictions_settings_are_read_from_the_file_head(tmp_path):
    preds = {"v1": VideoPredictions(frames=[FramePrediction(0, "a", 0.5, heat=np.ones((2, 2), np.float32))])}
    settings = eval_settings(InferenceConfig(mode="clip"), ScoringConfig(tau=0.2), dataset="gyt")
    for suffix in (".json", ".npz"):
        path = tmp_path / f"p{suffix}"
        write_predictions(preds, path, settings)
        assert read_predictions_settings(path) == settings
        back = read_predictions(path)["v1"].frames[0]
        assert (back.t, back.label, back.score) == (0, "a", 0.5)
        write_predictions(preds, path)
        assert read_predictions_settings(path) is None
    head = json.loads((tmp_path / "p.json").read_text())
    (tmp_path / "late.json").write_text(json.dumps({**head, "settings": settings}))  # after "videos"
    assert read_predictions_settings(tmp_path / "late.json") is None  # documented: the head only
    (tmp_path / "bad.json").write_text("[1, 2")
    for name in ("bad.json", "missing.json", "p.txt"):
        assert read_predictions_settings(tmp_path / name) is None


def test_stored_settings_are_checked_and_unknown_keys_left_out():
    base, warnings = base_config({"inference": {"theta": 0.3, "old_key": 1}, "code_version": "x"}, "--ckpt X")
    assert base == {"inference": to_dict(InferenceConfig(theta=0.3))}
    assert warnings == ["--ckpt X: stored inference keys old_key are not InferenceConfig keys (ignored)"]
    with pytest.raises(
        StgUserError, match=r"--ckpt X: stored inference settings: .*median_window must be odd"
    ):
        base_config({"inference": {"median_window": 2}}, "--ckpt X")
    with pytest.raises(StgUserError, match=r"--ckpt X: stored scoring settings: expected a mapping"):
        base_config({"scoring": 3}, "--ckpt X")


def test_the_demo_checkpoint_and_predictions_reproduce_the_report_rows(split, ckpt, tmp_path, capsys):
    """The bug report's case: `stg eval` with no settings on the demo's checkpoint or saved predictions gives
    the demo's number."""
    demo_ckpt = tmp_path / "runs" / "full" / "last.ckpt"
    demo_ckpt.parent.mkdir(parents=True)
    shutil.copy(ckpt, demo_ckpt)
    ev = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())["eval"]
    inputs = ReportInputs(
        out=tmp_path / "out",
        synth_dir=split,
        backbone=tmp_path / "backbone.pt",
        checkpoints={FULL: demo_ckpt},
        metrics={},
        report_dir=tmp_path / "report",
        seed=0,
        eval=ev,
        prepare=PrepareConfig(),
        timings={},
    )
    store_readouts(inputs)
    stored = checkpoint_settings(demo_ckpt)
    paper, others = split_readouts(ev, "gyt")
    assert stored is not None and stored["inference"] == to_dict(paper)
    assert stored["scoring"] == to_dict(scoring_config(ev)) and stored["scoring"]["relative_tau"]

    rows, _, _ = evaluate_split(inputs, {FULL: load_model(demo_ckpt, "cpu")}, "myt")
    written = json.loads((inputs.out / "eval" / "myt.json").read_text())
    assert written["rows"] == json.loads(json.dumps(rows))
    settings = written["settings"]
    myt_paper, myt_others = split_readouts(ev, "myt")
    assert settings["inference"] == to_dict(myt_paper) and not myt_paper.heatmaps  # MYT: temporal only
    assert settings["scoring"] == stored["scoring"] and settings["code_version"] == code_version()
    assert settings["row_inference"] == {key: to_dict(cfg) for key, cfg in myt_others.items()}
    assert set(settings["row_inference"]) == set(others) == {"zero_shot", "full_patch_readout"}
    assert settings["checkpoints"] == {FULL: str(demo_ckpt)}

    from_ckpt = _results([*_myt(split), "--ckpt", str(demo_ckpt)], tmp_path / "ckpt.json")
    saved = inputs.out / "eval" / "myt_full_predictions.json"
    from_file = _results([*_myt(split), "--predictions", str(saved)], tmp_path / "file.json")
    assert from_ckpt["metrics"] == rows[FULL] == from_file["metrics"]
    before = _results([*_myt(split), "--ckpt", str(ckpt)], tmp_path / "before.json")  # no stored settings
    assert before["metrics"]["temporal_iou"] != pytest.approx(rows[FULL]["temporal_iou"])
