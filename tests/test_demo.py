import ast
import dataclasses
import json
import math
import tarfile
from pathlib import Path

import pytest
import yaml
from eval_fixtures import tiny_gyt

from stg_lightning.data.prepare import PrepareConfig, parse_config, write_shards
from stg_lightning.demo import (
    DemoConfig,
    Stages,
    load_demo_config,
    parse_args,
)
from stg_lightning.demo_eval import (
    COLUMNS,
    FULL,
    ROW_LABELS,
    ReportInputs,
    backbone_note,
    eval_section,
    narration_oracles,
    object_choice_rows,
    oracle_references,
    oracles_note,
    readout_summary,
    row_labels,
    row_readouts,
    swapped_query_rows,
    table_rows,
)
from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.oracle import oracle_predictions
from stg_lightning.eval.frames import FrameCache
from stg_lightning.eval.inference import InferenceConfig
from stg_lightning.eval.scoring import ScoringConfig
from stg_lightning.synth import PRESETS, ScriptConfig, generate

ROOT = Path(__file__).resolve().parents[1]


def test_demo_config_names_files_that_exist():
    cfg = load_demo_config(ROOT / "configs" / "demo.yaml")
    reproduce = parse_args(["--config", "configs/demo.yaml", "--config", "configs/reproduce.yaml"])
    runs = [p for c in (cfg, reproduce) for extra in c.train["runs"].values() for p in extra]
    paths = [cfg.synth["config"], cfg.pretrain["config"], *cfg.train["configs"], *runs]
    assert all((ROOT / p).is_file() for p in paths), paths
    assert set(cfg.eval["splits"]) == {"gyt", "myt", "yc_inter"}
    # The report's model rows are the runs; reproduce adds the selection ablations (Tables 5, 9).
    assert list(cfg.train["runs"]) == ["full", "global_only", "local_only"]
    assert list(reproduce.train["runs"]) == [*cfg.train["runs"], "sel_topk", "sel_none", "sel_random"]
    assert set(reproduce.train["runs"]) <= set(ROW_LABELS)


def test_demo_readouts_are_inference_and_scoring_configs():
    ev = load_demo_config(ROOT / "configs" / "demo.yaml").eval
    paper = eval_section(InferenceConfig, ev["inference"], "inference")
    zero_shot = eval_section(InferenceConfig, ev["zero_shot_inference"], "zero_shot_inference")
    extra = eval_section(InferenceConfig, ev["extra_rows"]["full_patch_readout"]["inference"], "x")
    assert (paper.temporal, paper.spatial, paper.raw_features) == ("global", "rollout", False)  # §1
    assert (zero_shot.temporal, zero_shot.spatial, zero_shot.raw_features) == (
        "global",
        "patch_similarity",
        True,
    )
    assert (extra.temporal, extra.spatial) == ("patch_pool", "patch_similarity")
    assert eval_section(ScoringConfig, ev["scoring"], "scoring").relative_tau
    summary = readout_summary(ev)
    assert "temporal=global, spatial=rollout" in summary["model rows (paper readout)"]
    assert (
        "raw_features=True" in summary["zero_shot"] and "temporal=patch_pool" in summary["full_patch_readout"]
    )
    with pytest.raises(
        StgUserError, match=r"demo config eval\.inference: unknown key 'temporl'.*: .*temporal"
    ):
        eval_section(InferenceConfig, {"temporl": "global"}, "inference")
    with pytest.raises(
        StgUserError, match=r"eval\.inference: key 'temporal': expected .*'global'.*got 'cls'"
    ):
        eval_section(InferenceConfig, {"temporal": "cls"}, "inference")
    with pytest.raises(StgUserError, match=r"eval\.inference: .*median_window must be odd"):
        eval_section(InferenceConfig, {"median_window": 2}, "inference")


def test_unknown_demo_key_fails_clearly(tmp_path):
    bad = tmp_path / "demo.yaml"
    bad.write_text("seed: 1\nepochs: 3\n")
    with pytest.raises(StgUserError, match=r"demo.yaml: unknown key 'epochs'; valid keys: .*report_dir"):
        load_demo_config(bad)
    with pytest.raises(StgUserError, match=r"key 'seed': expected int, got 'one'"):
        parse_args(["--config", str(ROOT / "configs" / "demo.yaml"), "--seed=one"])


def test_demo_yaml_and_the_stages_flags_give_the_values_they_state(tmp_path):
    """configs/demo.yaml read by hand, and what each stage tool parses from its section."""
    demo = ROOT / "configs" / "demo.yaml"
    cfg = parse_args(["--config", str(demo), "--seed=3", f"--out={tmp_path}", "--report-dir", "r"])
    assert (cfg.seed, cfg.out, cfg.report_dir, cfg.workers) == (3, str(tmp_path), "r", 2)
    assert cfg.synth == {"preset": "demo", "config": "configs/synth/demo.yaml"}
    assert cfg.prepare == {
        "fps": 1.0,
        "num_frames": 10,
        "min_time": 10.0,
        "short_side": 64,
        "shard_size": 500,
    }
    assert cfg.pretrain == {"config": "configs/pretrain/demo.yaml"}
    assert cfg.train["configs"] == ["configs/defaults.yaml", "experiments/demo.yaml"]
    stages = Stages(cfg)
    stages.check()
    train = tmp_path / "synth" / "train"
    assert parse_config(stages.prepare_argv()) == PrepareConfig(
        videos=str(train / "videos"),
        captions=str(train / "caption.json"),
        out=str(tmp_path / "shards"),
        workers=2,
        fps=1.0,
        num_frames=10,
        min_time=10.0,
        short_side=64,
        shard_size=500,
    )
    synth = stages.synth_argv()
    assert synth[:4] == ["--preset", "demo", "--config", "configs/synth/demo.yaml"]  # the demo's --seed after
    assert "--seed=3" in synth and f"--out={tmp_path / 'synth'}" in synth
    pretrain = stages.pretrain_argv()
    assert pretrain[:2] == ["--config", "configs/pretrain/demo.yaml"]
    assert f"--data.synth_config={tmp_path / 'synth' / 'meta.json'}" in pretrain


def test_stage_sections_are_checked_by_the_stage_tools(tmp_path):
    cfg = load_demo_config(ROOT / "configs" / "demo.yaml")
    cfg.synth = {**cfg.synth, "train_videos": 20, "seed": 5, "script": {"unnarrated_prob": 0.3}}
    argv = Stages(cfg).synth_argv()
    assert argv[-3:] == ["--train_videos=20", "--seed=5", "--script.unnarrated_prob=0.3"]  # section wins
    cfg.prepare = {**cfg.prepare, "num_frame": 10}
    with pytest.raises(StgUserError, match=r"demo config prepare: .*unknown key 'num_frame'.*num_frames"):
        Stages(cfg).check()
    cfg = DemoConfig(synth={"scene": {"frame_size": "big"}})
    with pytest.raises(StgUserError, match=r"demo config synth: .*key 'scene.frame_size': expected int"):
        Stages(cfg).check()


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


def test_an_output_made_from_other_settings_stops_the_demo_and_the_chain_carries_changes(tmp_path):
    cfg = load_demo_config(ROOT / "configs" / "demo.yaml")
    cfg.out = str(tmp_path / "out")
    config = tmp_path / "exp.yaml"
    config.write_text("model: {}\n")
    output = tmp_path / "out" / "stage"
    done = output / "done"
    calls = []

    def make() -> None:
        calls.append("ran")
        output.mkdir(parents=True, exist_ok=True)
        done.write_text("ok")

    def stage(settings: list[str], chain: str = "") -> str:
        stages = Stages(cfg)
        stages.chain = chain
        return stages.run("stage", done, make, settings, output)

    settings = ["--config", str(config), f"--out={output}", "--workers=2"]
    first = stage(settings)
    assert stage([*settings[:-1], "--workers=1"]) == first and calls == ["ran"]  # workers change no output
    config.write_text("model: {local_head: {variant: cross}}\n")  # same file name, new content
    with pytest.raises(StgUserError, match=r"stage'?: .*stage was made with other settings.*delete .*stage"):
        stage(settings)
    config.write_text("model: {}\n")
    with pytest.raises(StgUserError, match="other settings"):
        stage(settings, chain="an earlier stage remade")
    assert stage(settings) == first  # the original settings again: reused
    # A copied out folder keeps its fingerprints: its own paths are hashed as <out>.
    moved = Stages(cfg)
    moved.out = tmp_path / "elsewhere"
    assert moved.fingerprint(["--config", str(config), f"--out={tmp_path / 'elsewhere' / 'stage'}"]) == first
    # An output from before fingerprints is reused.
    (tmp_path / "out" / "stage_fingerprints.json").unlink()
    assert stage([*settings, "--seed=1"]) != first and calls == ["ran"]


def test_table_rows_follow_the_report_order_and_leave_gaps():
    results = {
        "gyt": {"oracle": {"pointing": 1.0}, "full": {"pointing": 0.5, "video_map": 0.25}, "new": {}},
        "myt": {"full": {"temporal_iou": 0.4}},
    }
    rows = table_rows(results, {"full": "the model", "oracle": "oracle"})
    assert [r["name"] for r in rows] == ["the model", "oracle", "new"]  # unlabelled keys last, by key
    assert rows[0] == {
        "name": "the model",
        "key": "full",
        "gyt/pointing": 0.5,
        "gyt/video_map": 0.25,
        "myt/temporal_iou": 0.4,
    }
    assert set(rows[0]) - {"name", "key"} <= set(COLUMNS)


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


def test_report_inputs_are_the_stage_outputs_and_demo_eval_does_not_import_demo(tmp_path):
    cfg = load_demo_config(ROOT / "configs" / "demo.yaml")
    cfg.out, cfg.report_dir = str(tmp_path / "out"), str(tmp_path / "report")
    stages = Stages(cfg)
    stages.timings["prepare shards"] = 1.5
    inputs = stages.report_inputs()
    out, runs = tmp_path / "out", ("full", "global_only", "local_only")
    assert (inputs.out, inputs.synth_dir, inputs.backbone) == (out, out / "synth", out / "backbone.pt")
    assert inputs.checkpoints == {n: out / "runs" / n / "latest" / "checkpoints" / "last.ckpt" for n in runs}
    assert inputs.metrics == {n: out / "runs" / n / "latest" / "metrics.csv" for n in runs}
    assert (inputs.report_dir, inputs.seed, inputs.eval) == (tmp_path / "report", cfg.seed, cfg.eval)
    assert inputs.timings == {"prepare shards": 1.5}
    tree = ast.parse((ROOT / "stg_lightning" / "demo_eval.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "stg_lightning.demo" not in imported


def test_query_swap_rows_are_labelled_model_rows_and_a_bad_row_fails_clearly(tmp_path):
    cfg = load_demo_config(ROOT / "configs" / "demo.yaml")
    cfg.out, cfg.report_dir = str(tmp_path / "out"), str(tmp_path / "report")
    inputs = Stages(cfg).report_inputs()
    swap = cfg.eval["query_swap"]
    assert swap["split"] == "gyt" and set(swap["rows"]) <= {*cfg.train["runs"], "zero_shot"}
    labels = row_labels(inputs)
    assert labels["full_swapped_query"].startswith(ROW_LABELS["full"] + ", asked another step's query")
    models = dict.fromkeys(cfg.train["runs"])  # never called: other splits and bad rows stop first
    readouts = row_readouts(inputs, models, "gyt")
    assert set(swap["rows"]) <= set(readouts)
    assert swapped_query_rows(cfg.eval, readouts, "myt", None, tmp_path, None, FrameCache()) == {}
    cfg.eval["query_swap"] = {"split": "gyt", "rows": ["full", "fulll"]}
    with pytest.raises(ValueError, match=r"eval\.query_swap\.rows: \['fulll'\] are not model rows"):
        swapped_query_rows(cfg.eval, readouts, "gyt", None, tmp_path, None, FrameCache())


def test_object_choice_rows_score_every_model_row_on_the_named_splits(tmp_path):
    dataset = tiny_gyt()
    objects = tmp_path / "objects.json"
    objects.write_text(json.dumps({"v1": {"1": [[0, 0, 4, 4], [10, 0, 14, 4]], "2": [[10, 0, 19, 9]]}}))
    predictions = {"oracle": oracle_predictions(dataset)}
    ev = {"object_choice": ["gyt"]}
    rows = object_choice_rows(ev, "gyt", dataset, objects, predictions, ScoringConfig())
    # The oracle points at every GT box's centre: all on the named object; chance (1/2 + 1/1) / 2.
    assert rows["oracle"]["named_share"] == 1.0 and rows["oracle"]["named_share_chance"] == 0.75
    assert "videos" not in rows["oracle"]  # bookkeeping stays with the row's own scores
    assert object_choice_rows(ev, "myt", dataset, objects, predictions, ScoringConfig()) == {}


@pytest.fixture(scope="module")
def narrated(tmp_path_factory) -> tuple[Path, PrepareConfig]:
    """Three short training videos (and one per eval split) cut into shards of 4 clips at 1 fps."""
    root = tmp_path_factory.mktemp("narrated")
    script = ScriptConfig(step_seconds=(2, 3), gap_seconds=(1, 2), edge_seconds=(1, 2), filler_per_minute=8.0)
    generate(
        dataclasses.replace(PRESETS["demo"], train_videos=3, eval_videos=1, script=script), root, 1, False
    )
    train = root / "train"
    prepare = PrepareConfig(
        videos=str(train / "videos"),
        captions=str(train / "caption.json"),
        out=str(root / "shards"),
        fps=1.0,
        num_frames=10,
        min_time=10.0,
        short_side=64,
        shard_size=4,
        workers=0,
    )
    write_shards(prepare, progress=False)
    return root, prepare


def report_inputs(root: Path, run: Path, prepare: PrepareConfig, oracles: dict) -> ReportInputs:
    return ReportInputs(
        out=root,
        synth_dir=root,
        backbone=root / "backbone.pt",
        checkpoints={},
        metrics={FULL: run / "metrics.csv"},
        report_dir=root / "report",
        seed=0,
        eval={"nce_oracles": oracles},
        prepare=prepare,
        timings={},
    )


def write_run(
    run: Path, shards: str, limit: float | None, logged_chance: float, loss: float | None = None
) -> None:
    """A training run's config.yaml (batches of 2, the last two shards held out) and its metrics.csv."""
    run.mkdir(parents=True, exist_ok=True)
    data = {"train_shards": shards, "val_holdout_shards": 2, "batch_size": 2, "num_frames": 10}
    config = {"data": {"class_path": "stg_lightning.data.datamodule.ShardDataModule", "init_args": data}}
    config["trainer"] = {"limit_val_batches": limit}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    header = "step,val/loss_local,val/chance_loss_local\n"
    loss = logged_chance - 0.1 if loss is None else loss
    (run / "metrics.csv").write_text(header + f"9,{loss},{logged_chance}\n")


def test_narration_oracles_rebuild_the_runs_held_out_batches(narrated, tmp_path):
    root, prepare = narrated
    shards = sorted((root / "shards").glob("clips-*.tar"))
    held = 0
    for shard in shards[-2:]:  # the held-out shards
        with tarfile.open(shard) as tar:
            held += len({m.name.split(".")[0] for m in tar})
    sizes = [2] * (held // 2) + [held % 2] * (held % 2)
    chance = sum(2 * n * math.log(n) for n in sizes) / held
    run = tmp_path / "full"
    write_run(run, str(root / "shards" / "clips-*.tar"), None, chance)
    inputs = report_inputs(root, run, prepare, {"batches": 10, "scales": 5})
    oracles = narration_oracles(inputs)
    assert oracles.batch_size == 2 and oracles.train["chance"] == pytest.approx(2 * math.log(2))
    assert oracles.held_out is not None and oracles.held_out["chance"] == pytest.approx(chance)
    assert oracles.held_out_note == f"its {held} held-out clips in batches of {', '.join(map(str, sizes))}"
    assert oracles.losses == pytest.approx({"val/loss_local": chance - 0.1})
    note = oracles_note(oracles)
    gap = oracles.train["chance"] - oracles.train["action_acted"]
    assert f"perfect action detector {gap:.2f}" in note and f"local head {chance - 0.1:.2f}" in note
    write_run(run, str(root / "shards" / "clips-*.tar"), None, chance, loss=chance + 1e-4)
    assert "(0% of the way from chance to it)" in oracles_note(narration_oracles(inputs))
    # Two batches only (limit_val_batches: 2): chance 2·ln 2, not what the run logged.
    assert held > 4 and held % 2
    write_run(run, str(root / "shards" / "clips-*.tar"), 2, chance)
    limited = narration_oracles(inputs)
    assert limited.held_out is None and "not the batches it scored" in limited.held_out_note
    lines = {stage: oracle_references(o)["loss_local"] for stage, o in (("all", oracles), ("train", limited))}
    assert [line.is_val for line in lines["all"]] == [False, False, True, True]
    assert lines["all"][3].level == oracles.held_out["action_acted"] and len(lines["train"]) == 2
    assert "Held-out levels: not computed" in oracles_note(limited)
    write_run(run, str(root / "shards" / "clips-*.tar"), 0.5, chance)
    assert "fraction of batches" in narration_oracles(inputs).held_out_note
    with pytest.raises(StgUserError, match="nce_oracles"):
        narration_oracles(report_inputs(root, run, prepare, {"batchez": 10}))


def test_cache_stage_builds_the_training_backbone(tmp_path):
    cfg = load_demo_config(ROOT / "configs" / "demo.yaml")
    cfg.out = str(tmp_path)
    backbone = Stages(cfg).train_backbone()
    # The training configs' backbone section (later files win), loading the demo's pretrained weights.
    assert (backbone.model_name, backbone.max_words, backbone.words_with_sentence) == (
        "stg-tiny-vit-clip",
        8,
        True,
    )
    assert backbone.pretrained == str(tmp_path / "backbone.pt")
