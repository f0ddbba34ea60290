"""`stg synth`: config, determinism, real-loader round trip, drawn GT boxes, distractors, captions."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from stg_lightning.errors import StgUserError
from stg_lightning.eval.loaders.gyt import load_gyt
from stg_lightning.eval.loaders.myt import load_class_dict, load_myt
from stg_lightning.eval.loaders.yc_inter import load_yc_inter
from stg_lightning.synth.cli import build_config, main
from stg_lightning.synth.config import PRESETS, SceneConfig, ScriptConfig, SynthConfig
from stg_lightning.synth.scene import HAND_COLOUR, SHAPES, TABLE_COLOUR, VERB_MOTIONS
from stg_lightning.synth.script import build_vocabulary, plan_video
from stg_lightning.synth.vocabulary import OBJECT_CATALOGUE, VERBS
from stg_lightning.synth.writer import plan_and_scene

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "synth"
# Short videos so the whole tiny split renders in about a second.
TINY = [
    "--train_videos=2",
    "--eval_videos=2",
    "--script.step_seconds=[2, 3]",
    "--script.gap_seconds=[1, 2]",
    "--script.edge_seconds=[1, 2]",
]


def _generate(out: Path, workers: int) -> Path:
    assert main(["--out", str(out), "--workers", str(workers), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("synth") / "a", workers=2)


def _tiny_cfg():
    return build_config(TINY)


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_presets_match_python_presets(name: str) -> None:
    path = str(CONFIGS / f"{name}.yaml")
    assert build_config(["--config", path]) == PRESETS[name]
    assert build_config(["--preset", name]) == PRESETS[name]
    assert build_config(["--preset", "paper", "--config", path]) == PRESETS[name]  # the file over the preset


def test_paper_yaml_loads_the_values_it_states() -> None:
    """configs/synth/paper.yaml read by hand: what differs from the dataclass defaults."""
    want = SynthConfig(
        fps=10,
        train_videos=2000,
        eval_videos=100,
        classes=30,
        tasks=12,
        scene=SceneConfig(
            frame_size=224,
            objects=("tomato", "lemon", "cucumber", "egg", "onion", "blueberry", "carrot", "mint"),
            verbs=("shake", "spin", "split", "press", "pour", "roll", "flip", "stir"),
        ),
        script=ScriptConfig(step_seconds=(5, 12), gap_seconds=(3, 10), edge_seconds=(3, 8)),
    )
    assert build_config(["--config", str(CONFIGS / "paper.yaml")]) == want
    assert build_config(["--config", str(CONFIGS / "demo.yaml")]) == SynthConfig()


def test_overrides_and_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = build_config(
        ["--seed=7", "--script.unnarrated_prob=0.5", "--scene.object_size", "[0.1, 0.2]", "--preset", "paper"]
    )
    assert (cfg.seed, cfg.script.unnarrated_prob, cfg.scene.object_size) == (7, 0.5, (0.1, 0.2))
    assert cfg.fps == 10  # the preset is the base whatever its position
    with pytest.raises(
        StgUserError, match=r"unknown key 'script.unnarated_prob'.*valid keys of script: .*unnarrated_prob"
    ):
        build_config(["--script.unnarated_prob=0.5"])
    with pytest.raises(StgUserError, match=r"scene\.objects_on_screen"):
        build_config(["--scene.objects_on_screen=[1, 5]"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"fps": "fast"}))
    with pytest.raises(StgUserError, match=r"bad.yaml: key 'fps': expected int, got 'fast'"):
        build_config(["--config", str(CONFIGS / "demo.yaml"), "--config", str(bad)])
    bad.write_text(yaml.safe_dump({"scene": {"frame_sise": 32}}))
    with pytest.raises(
        StgUserError, match=r"bad.yaml: unknown key 'scene.frame_sise'.*valid keys of scene: "
    ):
        build_config(["--config", str(bad)])
    assert main(["--out", str(tmp_path / "x"), "nonsense"]) == 2
    assert main(["--out", str(tmp_path / "x"), "train_videos=2"]) == 2  # old KEY=VALUE: says the new way
    assert "--train_videos=2" in capsys.readouterr().err
    assert main(["--train_videos=2"]) == 2 and "--out" in capsys.readouterr().err


def test_same_seed_same_bytes_other_seed_differs(tiny: Path, tmp_path: Path) -> None:
    again = _generate(tmp_path / "b", workers=1)  # in-process vs. worker processes: same bytes
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert len([f for f in files if f.suffix == ".mp4"]) == 8
    for f in files:
        assert (tiny / f).read_bytes() == (again / f).read_bytes(), f
    cfg = _tiny_cfg()
    other = build_config(["--seed=1", *TINY])
    plans = [plan_and_scene(c, build_vocabulary(c), "train", 0)[0] for c in (cfg, other)]
    assert plans[0].captions != plans[1].captions


def test_round_trip_through_real_loaders(tiny: Path) -> None:
    cfg = _tiny_cfg()
    vocab = build_vocabulary(cfg)
    meta = json.loads((tiny / "meta.json").read_text())
    size = tuple(meta["frame_size"])
    assert meta["counts"]["gyt"]["videos"] == 2 and len(meta["classes"]) == cfg.classes

    def expected(split: str) -> dict[str, list[tuple[str, float, float]]]:
        plans = [plan_and_scene(cfg, vocab, split, i)[0] for i in range(cfg.eval_videos)]
        return {p.video_id: [(s.cls.text, float(s.start), float(s.end)) for s in p.steps] for p in plans}

    gyt = load_gyt(tiny / "eval/gyt/GoundingYouTubeBox.json", frame_size=size)
    assert {r.video_id: [(s.query, s.start, s.end) for s in r.segments] for r in gyt.records} == expected(
        "gyt"
    )
    for r in gyt.records:
        assert sorted(r.boxes) == sorted(t for s in r.segments for t in s.frames())
    assert gyt.report.counts.get("zero_area", 0) == 0

    myt = load_myt(tiny / "eval/myt/annotations")
    assert {r.video_id: [(s.query, s.start, s.end) for s in r.segments] for r in myt.records} == expected(
        "myt"
    )
    assert load_class_dict(tiny / "eval/myt/weakYouTube_dict.txt") == [c.label for c in vocab.classes]

    yc_root = tiny / "eval/yc_inter"
    yc = load_yc_inter(
        yc_root / "final_dataset_segments.pkl",
        yc_root / "final_dataset_annotations.pkl",
        yc_root / "youcookii_annotations_trainval.json",
        frame_size=size,
    )
    want = {
        v: [(f"{t.split()[0]} the {t.split()[1]}", s, e) for t, s, e in steps]
        for v, steps in expected("yc_inter").items()
    }
    assert {r.video_id: [(s.query, s.start, s.end) for s in r.segments] for r in yc.records} == want
    assert yc.report.counts["outside_segments"] == 0
    for r in yc.records:
        assert sorted(r.boxes) == sorted(t for s in r.segments for t in s.frames())


def _palette_labels(frame: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Nearest drawn colour per pixel, allowing the brightness drift; names: objects, hand, table."""
    names = [*OBJECT_CATALOGUE, "hand", "table"]
    colours = np.array([s.colour for s in OBJECT_CATALOGUE.values()] + [HAND_COLOUR, TABLE_COLOUR], float)
    scaled = colours[None] * np.linspace(0.88, 1.12, 7)[:, None, None]  # [scale, colour, 3]
    dist = np.abs(frame[:, :, None, None, :].astype(float) - scaled[None, None]).sum(-1).min(2)
    labels = dist.argmin(-1)
    best, second = np.sort(dist, -1)[..., 0], np.sort(dist, -1)[..., 1]
    labels[
        (best > 60) | (second - best < 30)
    ] = -1  # markers and blended edges (chroma subsampling): no label
    return labels, names


def test_gt_boxes_contain_the_drawn_acting_object(tiny: Path) -> None:
    cfg = _tiny_cfg()
    data = json.loads((tiny / "eval/gyt/GoundingYouTubeBox.json").read_text())
    checked = 0
    for vid, seconds in data.items():
        frames = _decode(tiny / "eval/gyt/videos" / f"{vid}.mp4")
        for key, entry in seconds.items():
            x1, y1, x2, y2 = entry["box"]
            obj = entry["step"].split()[1]
            labels, names = _palette_labels(frames[int(key) * cfg.fps])
            ys, xs = np.nonzero(labels == names.index(obj))
            assert len(xs) >= 10, (vid, key)
            inside = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
            assert inside.mean() >= 0.95, (vid, key, inside.mean())
            assert (x2 - x1 + 1) * (y2 - y1 + 1) <= 0.3 * cfg.scene.frame_size**2
            checked += 1
    assert checked > 0


def test_distractors_move_during_every_step() -> None:
    cfg = _tiny_cfg()
    vocab = build_vocabulary(cfg)
    for i in range(3):
        plan, scene = plan_and_scene(cfg, vocab, "gyt", i)
        for step, acting in zip(plan.steps, plan.step_objects):
            movers = [m for m in plan.motions if m.start == step.start and m.obj != acting]
            assert movers and all(m.verb != step.cls.verb for m in movers)
            t0, t1 = step.start + 0.4, step.start + 0.6
            f0, boxes0 = scene.render(t0, plan.activities(t0))
            f1, boxes1 = scene.render(t1, plan.activities(t1))
            for m in movers:
                b0, b1 = boxes0[m.obj], boxes1[m.obj]
                x1, y1, x2, y2 = min(b0[0], b1[0]), min(b0[1], b1[1]), max(b0[2], b1[2]), max(b0[3], b1[3])
                diff = np.abs(f1[y1 : y2 + 1, x1 : x2 + 1].astype(int) - f0[y1 : y2 + 1, x1 : x2 + 1])
                assert diff.sum() > 0


def test_train_captions_shape(tiny: Path) -> None:
    captions = json.loads((tiny / "train/caption.json").read_text())
    assert sorted(captions) == ["train_00000", "train_00001"]
    assert sorted(p.stem for p in (tiny / "train/videos").glob("*.mp4")) == sorted(captions)
    for cap in captions.values():
        assert len(cap["start"]) == len(cap["end"]) == len(cap["text"])
        assert cap["start"] == sorted(cap["start"])
        assert all(0 <= s < e for s, e in zip(cap["start"], cap["end"]))
        assert all(isinstance(t, str) and t for t in cap["text"])


def test_narration_offsets_and_rates() -> None:
    vocab_cfg = build_config(["--script.filler_per_minute=0", "--script.mention_per_minute=0"])
    vocab = build_vocabulary(vocab_cfg)
    silent = build_config(
        ["--script.unnarrated_prob=1", "--script.filler_per_minute=0", "--script.mention_per_minute=0"]
    )
    assert plan_video(silent, vocab, np.random.default_rng(0), "v").captions == []

    exact = build_config(
        [
            "--script.unnarrated_prob=0",
            "--script.repeat_prob=0",
            "--script.filler_per_minute=0",
            "--script.mention_per_minute=0",
        ]
    )
    for seed in range(5):
        plan = plan_video(exact, vocab, np.random.default_rng(seed), "v")
        assert len(plan.captions) == len(plan.steps)
        for step in plan.steps:  # one sentence per step, within offset_max of its start (or clipped to 0)
            (cap,) = [c for c in plan.captions if f"{step.cls.verb} the {step.cls.obj}" in c.text]
            assert 1.0 <= cap.end - cap.start <= 3.0 + 1e-6
            assert cap.start == 0 or abs(cap.start - step.start) <= exact.script.offset_max + 0.01

    chatty = build_config(["--script.filler_per_minute=30", "--script.mention_per_minute=30"])
    plan = plan_video(chatty, vocab, np.random.default_rng(0), "v")
    step_texts = {f"{s.cls.verb} the {s.cls.obj}" for s in plan.steps}
    extra = [c.text for c in plan.captions if not any(t in c.text for t in step_texts)]
    assert len(extra) >= plan.duration / 60 * 30  # fillers + mentions at about 60 per minute in total
    for cap in plan.captions:  # mentioned objects are not acted on around the mention
        if cap.text.startswith("grab the "):
            obj = cap.text.removeprefix("grab the ")
            assert not any(
                s.cls.obj == obj and s.start - 2 < cap.end and cap.start < s.end + 2 for s in plan.steps
            )


def _box_sum(image: np.ndarray, k: int) -> np.ndarray:
    """Sum over the k x k window centred on each pixel (zero padding)."""
    c = np.pad(image, ((k // 2 + 1, k // 2), (k // 2 + 1, k // 2))).cumsum(0).cumsum(1)
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def test_motion_energy_points_no_better_than_a_random_object() -> None:
    """Text-blind baselines (docs/benchmark.md §1): argmax of 1-fps frame difference, random object."""
    cfg = PRESETS["demo"]
    vocab = build_vocabulary(cfg)
    rng = np.random.default_rng(0)
    motion, random_object = [], []
    for i in range(12):
        plan, scene = plan_and_scene(cfg, vocab, "gyt", i)
        for step, acting in zip(plan.steps, plan.step_objects):
            for t in range(step.start, step.end):
                frame, boxes = scene.render(t, plan.activities(t))
                before, _ = scene.render(t - 1, plan.activities(t - 1))
                x1, y1, x2, y2 = boxes[acting]
                energy = _box_sum(np.abs(frame.astype(float) - before).sum(-1), 5)
                y, x = np.unravel_index(np.argmax(energy), energy.shape)
                motion.append(x1 <= x <= x2 and y1 <= y <= y2)
                other = scene.placements[rng.integers(len(plan.objects))]
                ox, oy = scene.camera(t)
                random_object.append(x1 <= other.cx + ox <= x2 and y1 <= other.cy + oy <= y2)
    assert len(motion) > 200
    assert np.mean(motion) <= np.mean(random_object) + 0.08


def _imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at any depth of its code (function-level imports too)."""
    tree = ast.parse(path.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


def test_vocabulary_is_data_the_scene_draws_and_the_config_checks() -> None:
    assert tuple(VERB_MOTIONS) == VERBS  # every verb has a motion
    assert {spec.shape for spec in OBJECT_CATALOGUE.values()} <= set(SHAPES)  # every shape has a mask
    assert all(name == spec.name for name, spec in OBJECT_CATALOGUE.items())
    root = Path(__file__).resolve().parents[1] / "stg_lightning" / "synth"
    config_imports = _imported_modules(root / "config.py")
    assert "stg_lightning.synth.vocabulary" in config_imports
    assert "stg_lightning.synth.scene" not in config_imports  # no config <-> scene circle
    assert not {m for m in _imported_modules(root / "vocabulary.py") if m.startswith("stg_lightning")}
