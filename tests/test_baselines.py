"""Each training baseline of experiments/baselines/ trains one step on the tiny model; eval-only ones parse."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from eval_fixtures import save_tiny_checkpoint, write_tiny_split

from stg_lightning.cli import main
from stg_lightning.data.memory import DEFAULT_WORDS
from stg_lightning.eval.cli import build_config
from stg_lightning.eval.cli import main as eval_main
from stg_lightning.eval.combine import answers
from stg_lightning.eval.combine import main as combine_main
from stg_lightning.eval.predictions import read_predictions
from stg_lightning.eval.records import normalise_query
from stg_lightning.report.tables import main as tables_main

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = ROOT / "configs" / "defaults.yaml"
BASELINES = ROOT / "experiments" / "baselines"

# Shrinks any baseline to one CPU step of the tiny random-init model on in-memory clips.
TINY_RUN = {
    "trainer": {
        "accelerator": "cpu",
        "devices": 1,
        "strategy": "auto",
        "precision": "32-true",
        "max_steps": 1,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
        "enable_progress_bar": False,
    },
    "model": {
        "selection": {"num_frames": 2},
        "global_head": {"embed_dim": 16},
        "local_head": {"embed_dim": 16, "num_heads": 2},
        "optim": {"warmup_steps": 1},
    },
    "data": {
        "class_path": "stg_lightning.data.memory.MemoryDataModule",
        "init_args": {
            "num_frames": 4,
            "batch_size": 2,
            "train_size": 2,
            "val_size": 2,
            "num_workers": 0,
        },
    },
}
TINY_CLIP = {"model": {"backbone": {"model_name": "stg-tiny-vit", "pretrained": None, "image_size": 32}}}
# S3D has no small variant: a 64 px input (2×2 grid), 16 frames (2 time steps) and small text/embedding dims.
TINY_S3D = {
    "model": {
        "backbone": {
            "class_path": "stg_lightning.backbones.S3DConfig",
            "init_args": {
                "image_size": 64,
                "checkpoint": None,
                "dictionary": None,
                "vocabulary": list(DEFAULT_WORDS),
                "embed_dim": 16,
                "word_dim": 8,
                "text_hidden_dim": 24,  # != embed_dim, as in the real S3D (2048 vs 512)
            },
        }
    },
    "data": {"init_args": {"num_frames": 16}},
}


def is_eval_config(path: Path) -> bool:
    """Eval-only baselines are `stg eval` configs (EvalConfig keys), not `stg fit` experiments."""
    return "experiment" not in yaml.safe_load(path.read_text())


def _train_one_step(tmp_path: Path, experiment: Path, *overrides: dict) -> Path:
    files = []
    for i, override in enumerate((TINY_RUN, *overrides)):
        files.append(tmp_path / f"override_{i}.yaml")
        files[-1].write_text(yaml.safe_dump(override))
    args = ["fit", "--config", str(DEFAULTS), "--config", str(experiment)]
    args += [a for f in files for a in ("--config", str(f))]
    args += [f"--experiment.output_dir={tmp_path / 'runs'}", "--experiment.wandb=false"]
    assert main(args) == 0
    name = yaml.safe_load(experiment.read_text())["experiment"]["name"]
    return tmp_path / "runs" / name / "latest" / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("name", ["milnce_global_only", "comma_local_only"])
def test_clip_baseline_trains_one_step(tmp_path, name):
    assert _train_one_step(tmp_path, BASELINES / f"{name}.yaml", TINY_CLIP).is_file()


@pytest.mark.slow
def test_s3d_baseline_trains_one_step(tmp_path):
    assert _train_one_step(tmp_path, BASELINES / "s3d_word2vec.yaml", TINY_S3D).is_file()


@pytest.mark.parametrize("name", ["clip_zeroshot", "milnce_regionclip"])
def test_eval_only_baselines_are_eval_configs(name):
    path = BASELINES / f"{name}.yaml"
    assert is_eval_config(path)
    cfg = build_config(["--config", str(path)])
    assert cfg.dataset == "gyt" and cfg.out
    if name == "clip_zeroshot":
        assert cfg.inference.raw_features and cfg.inference.spatial == "patch_similarity"


@pytest.mark.slow
def test_two_model_route_end_to_end(tmp_path, capsys):
    """The documented MIL-NCE + RegionCLIP route on the tiny synthetic split: A's time, B's place, tables."""
    split = write_tiny_split(tmp_path / "synth")
    gyt = ["--annotations", str(split / "eval" / "gyt" / "GoundingYouTubeBox.json"), "--device", "cpu"]
    gyt += ["--videos", str(split / "eval" / "gyt" / "videos")]
    ckpt = save_tiny_checkpoint(tmp_path / "a.ckpt")
    a, b, c = (tmp_path / f"{x}.json" for x in "abc")
    results = {x: tmp_path / "results" / f"{x}.json" for x in ("milnce", "zeroshot", "combined")}
    temporal = ["--config", str(ROOT / "configs" / "eval" / "gyt.yaml"), "--ckpt", str(ckpt)]
    assert eval_main([*temporal, *gyt, "--save-predictions", str(a), "--out", str(results["milnce"])]) == 0
    spatial = ["--config", str(BASELINES / "clip_zeroshot.yaml"), "--zero-shot", "stg-tiny-vit"]
    assert eval_main([*spatial, *gyt, "--save-predictions", str(b), "--out", str(results["zeroshot"])]) == 0
    assert combine_main(["--temporal", str(a), "--spatial", str(b), "--out", str(c)]) == 0
    scored = ["--config", str(BASELINES / "milnce_regionclip.yaml"), "--predictions", str(c)]
    assert eval_main([*scored, *gyt[:2], "--out", str(results["combined"])]) == 0

    pa, pb, pc = (read_predictions(p) for p in (a, b, c))
    for vid, video in pc.items():
        assert [(p.t, p.label, p.score) for p in video.frames] == [
            (p.t, p.label, p.score) for p in pa[vid].frames
        ]
        places = answers(pb[vid])
        for p in [*video.frames, *video.grounding]:
            expected = places.get((p.t, normalise_query(p.label))) if p.label else None
            assert (p.heat is None) == (expected is None or expected.heat is None)
            if p.heat is not None:
                np.testing.assert_array_equal(p.heat, expected.heat)
    capsys.readouterr()
    assert tables_main([*map(str, results.values()), "--table", "2"]) == 0
    rows = [line.split(" | ")[0] for line in capsys.readouterr().out.splitlines()[4:]]
    assert rows == ["| milnce", "| zeroshot", "| combined"]
