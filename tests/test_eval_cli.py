"""`stg eval`: oracle predictions score 1.0, a checkpoint runs end to end, user errors name the flag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.oracle import oracle_predictions
from stg_lightning.eval.cli import EvalConfig, build_config, input_warnings, main
from stg_lightning.eval.datasets import load_dataset, synthetic_frame_size
from stg_lightning.eval.predictions import read_predictions, write_predictions
from stg_lightning.eval.readout import InferenceConfig, scored_dataset
from stg_lightning.eval.scoring import BOOKKEEPING, ScoringConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "eval"


def _annotations(split: Path, name: str) -> Path:
    return {
        "gyt": split / "eval" / "gyt" / "GoundingYouTubeBox.json",
        "myt": split / "eval" / "myt" / "annotations",
        "yc_inter": split / "eval" / "yc_inter",
    }[name]


@pytest.mark.parametrize(
    ("name", "mode"), [("gyt", "untrimmed"), ("gyt", "clip"), ("myt", "untrimmed"), ("yc_inter", "untrimmed")]
)
def test_oracle_predictions_score_one(split, tmp_path, name, mode):
    ann = _annotations(split, name)
    dataset = scored_dataset(load_dataset(name, ann), mode)
    write_predictions(oracle_predictions(dataset), tmp_path / "oracle.json")
    out = tmp_path / "results.json"
    argv = ["--dataset", name, "--annotations", str(ann), "--predictions", str(tmp_path / "oracle.json")]
    assert main([*argv, "--mode", mode, "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    metrics = {k: v for k, v in results["metrics"].items() if k not in BOOKKEEPING}
    assert metrics and all(v == 1.0 for v in metrics.values()), metrics
    assert ("text_blind" in results["baselines"]) == (name == "myt")


def test_synthetic_frame_size_comes_from_meta_json(split):
    assert synthetic_frame_size(_annotations(split, "gyt")) == (64, 64)
    assert load_dataset("gyt", _annotations(split, "gyt")).records[0].frame_size == (64, 64)


def test_ckpt_end_to_end_writes_results_and_predictions(split, ckpt, tmp_path, capsys):
    out, preds = tmp_path / "results.json", tmp_path / "preds.json"
    argv = [
        "--config", str(CONFIGS / "gyt.yaml"), "--annotations", str(_annotations(split, "gyt")),
        "--videos", str(split / "eval" / "gyt" / "videos"), "--ckpt", str(ckpt), "--device", "cpu",
        "--save-predictions", str(preds), "--out", str(out), "--inference.normalise=minmax",
    ]  # fmt: skip
    assert main(argv) == 0
    results = json.loads(out.read_text())
    assert results["config"]["inference"]["normalise"] == "minmax"
    assert {"pointing", "iou_pointing", "spatial_map", "video_map"} <= set(results["metrics"])
    assert set(read_predictions(preds)) == {
        r.video_id for r in load_dataset("gyt", _annotations(split, "gyt")).records
    }
    assert "pointing" in capsys.readouterr().out  # the printed table


def test_an_undecodable_video_saves_the_partial_predictions(split, ckpt, tmp_path, capsys):
    videos = tmp_path / "videos"
    shutil.copytree(split / "eval" / "gyt" / "videos", videos)
    records = load_dataset("gyt", _annotations(split, "gyt")).records
    (videos / f"{records[1].video_id}.mp4").write_bytes(b"not a video" * 100)
    preds = tmp_path / "preds.json"
    argv = [
        "--config", str(CONFIGS / "gyt.yaml"), "--annotations", str(_annotations(split, "gyt")),
        "--videos", str(videos), "--ckpt", str(ckpt), "--device", "cpu", "--save-predictions", str(preds),
        "--inference.heatmaps=false",
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{records[1].video_id}.mp4: cannot decode" in err and "preds.partial.json" in err
    assert set(read_predictions(tmp_path / "preds.partial.json")) == {records[0].video_id}


def test_myt_ckpt_uses_default_videos_folder_and_prints_baseline(split, ckpt, tmp_path, capsys):
    argv = [
        "--config",
        str(CONFIGS / "myt.yaml"),
        "--videos=null",
        "--annotations",
        str(_annotations(split, "myt")),
    ]
    assert main([*argv, "--ckpt", str(ckpt), "--device", "cpu", "--out", str(tmp_path / "r.json")]) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert 0.0 <= results["metrics"]["temporal_mof"] <= 1.0
    assert "text_blind" in capsys.readouterr().out


def test_user_errors_name_the_flag(split, ckpt, tmp_path, capsys):
    base = ["--dataset", "gyt", "--annotations", str(_annotations(split, "gyt"))]
    assert main([*base, "--ckpt", str(ckpt), "--videos", str(tmp_path / "nope")]) == 2
    assert "--videos" in capsys.readouterr().err
    assert main([*base, "--ckpt", str(tmp_path / "missing.ckpt"), "--videos", str(tmp_path)]) == 2
    assert "--ckpt" in capsys.readouterr().err
    assert (
        main(["--dataset", "gyt", "--annotations", str(tmp_path / "x.json"), "--predictions", "p.json"]) == 2
    )
    assert "--annotations" in capsys.readouterr().err


def test_config_files_load_the_values_they_state():
    """configs/eval/*.yaml read by hand: every key they set, the rest stay the dataclass defaults."""
    untrimmed = dict(mode="untrimmed", theta=0.5, normalise="none", median_window=1, chunk_size=32, fps=1.0)
    spatial = ScoringConfig(tau=0.01, relative_tau=False, spatial_iou=0.3)
    want = {
        "gyt": EvalConfig(
            dataset="gyt",
            annotations=None,
            videos="data/groundingyoutube/videos",
            frame_size=None,
            clip_to_frame=False,
            out="reports/eval/gyt.json",
            inference=InferenceConfig(**untrimmed, spatial="rollout", heatmaps=True, step_scores=False),
            scoring=ScoringConfig(
                tau=0.01, relative_tau=False, spatial_iou=0.3, video_thresholds=(0.1, 0.2, 0.3, 0.4, 0.5)
            ),
        ),
        "myt": EvalConfig(
            dataset="myt",
            annotations=None,
            videos="data/miningyoutube/videos",
            out="reports/eval/myt.json",
            inference=InferenceConfig(**untrimmed, heatmaps=False, step_scores=True),
            scoring=ScoringConfig(background_score=0.5),
        ),
        "yc_inter": EvalConfig(
            dataset="yc_inter",
            annotations=None,
            videos="data/youcook2_interactions/videos",
            frame_size=None,
            out="reports/eval/yc_inter.json",
            inference=InferenceConfig(**untrimmed, spatial="rollout", heatmaps=True, step_scores=False),
            scoring=spatial,
        ),
    }
    for name, expected in want.items():
        assert build_config(["--config", str(CONFIGS / f"{name}.yaml")]) == expected, name


def test_config_flags_and_errors(tmp_path, capsys):
    gyt = ["--config", str(CONFIGS / "gyt.yaml")]
    cfg = build_config([*gyt, "--inference.theta=0.3", "--frame-size", "640", "480", "--max-videos", "2"])
    assert (cfg.inference.theta, cfg.frame_size, cfg.max_videos) == (0.3, (640, 480), 2)
    assert build_config(["--frame_size=[320,240]", "--lenient"]).frame_size == (320, 240)
    with pytest.raises(
        StgUserError, match=r"unknown key 'inference.thetaa'.*valid keys of inference: .*theta"
    ):
        build_config([*gyt, "--inference.thetaa=1"])
    with pytest.raises(StgUserError, match=r"key 'inference.theta': expected float, got 'high'"):
        build_config([*gyt, "--inference.theta=high"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("scoring:\n  tau: [1]\n")
    with pytest.raises(StgUserError, match=r"bad.yaml: key 'scoring.tau': expected float"):
        build_config([*gyt, "--config", str(bad)])
    with pytest.raises(StgUserError, match="median_window must be odd"):
        build_config(["--inference.median_window=2"])
    assert main(["--dataset", "gyt"]) == 2
    assert "exactly one of --predictions, --ckpt, --zero_shot" in capsys.readouterr().err
    assert main(["--predictions", "p.json", "--save-predictions", "q.json"]) == 2
    assert "--save_predictions needs --ckpt" in capsys.readouterr().err


def test_input_warnings_name_what_the_file_did_not_cover():
    counts = dict.fromkeys(BOOKKEEPING, 0.0) | {"videos": 4.0, "videos_without_predictions": 1.0}
    counts |= {"trimmed_seconds": 10.0, "trimmed_unanswered": 3.0}
    lines = input_warnings(counts)
    assert len(lines) == 2
    assert lines[0].startswith("1 of 4 videos have no predictions")
    assert "3 of 10 trimmed seconds" in lines[1] and "trimmed_fallback=any_label" in lines[1]
    assert input_warnings(dict.fromkeys(BOOKKEEPING, 0.0)) == []


def test_s3d_eval_config_sets_windowed_inference():
    cfg = build_config(["--config", "configs/eval/gyt.yaml", "--config", "configs/eval/s3d_word2vec.yaml"])
    assert (cfg.dataset, cfg.inference.fps, cfg.inference.window_frames) == ("gyt", 5, 16)
