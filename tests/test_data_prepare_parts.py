"""`stg prepare --part I/N` + `stg prepare-merge`, the streamed caption reader, shard list files and the
SLURM array script (run with bash, SLURM_ARRAY_TASK_ID set by hand)."""

from __future__ import annotations

import io
import json
import math
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_data_prepare import CAPTIONS, VIDEO_FPS, digests, frame_index, small_config, write_index_video

from stg_lightning.backbones import InputSpec
from stg_lightning.data import json_stream
from stg_lightning.data.captions import iter_captions, load_captions
from stg_lightning.data.datamodule import ShardDataModule
from stg_lightning.data.prepare import PrepareConfig, part_videos, write_shards
from stg_lightning.data.prepare_merge import merge_parts
from stg_lightning.data.shards import expand_shards, iter_shard
from stg_lightning.errors import StgUserError

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "scripts" / "slurm" / "prepare_array.sbatch"


def clips(shard_paths: list[str]) -> list[tuple[str, dict[str, bytes]]]:
    return [sample for path in shard_paths for sample in iter_shard(path)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """test_data_prepare's corpus (a, b, c, bad) plus d and e: 6 videos, 5 with clips in 3 parts."""
    root = tmp_path_factory.mktemp("parts")
    small_config(root)  # writes videos a, b, c, bad and caption.json
    for vid in ("d", "e"):
        write_index_video(root / "videos" / f"{vid}.mp4", seconds=4)
    extra = {v: {"start": [0.5, 2.0], "end": [1.5, 3.5], "text": [f"{v} one", f"{v} two"]} for v in "de"}
    (root / "caption.json").write_text(json.dumps({**CAPTIONS, **extra, "gone": CAPTIONS["b"]}))
    return root


def run_parts(root: Path, parts: int, out: str = "parts", **kw) -> PrepareConfig:
    for i in range(1, parts + 1):
        write_shards(small_config(root, out, part=f"{i}/{parts}", **kw), progress=False)
    return small_config(root, out, **kw)


def test_part_spec_is_checked_and_parts_cover_the_sorted_videos_once():
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "None"):
        with pytest.raises(StgUserError, match=rf"part must be 'I/N' with 1 <= I <= N .*got '{bad}'"):
            PrepareConfig(part=bad)
    ids = [f"v{i:02d}" for i in range(10)][::-1]
    for n in range(1, 13):
        slices = [part_videos(ids, f"{i}/{n}") for i in range(1, n + 1)]
        assert [vid for s in slices for vid in s] == sorted(ids)  # contiguous, in order, each video once
        assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_three_parts_merged_equal_a_single_run(corpus):
    single = write_shards(small_config(corpus, "single"), progress=False)
    merged = merge_parts(run_parts(corpus, 3), 3)
    out = corpus / "parts"
    urls = expand_shards(str(out / "shards.txt"), "data.train_shards")
    assert clips(urls) == clips([str(corpus / "single" / n) for n in sorted(single["shards"])])
    assert expand_shards(merged["pattern"], "data.train_shards") == urls  # the brace patterns, `::`-joined
    assert (out / "shards.txt").read_text().splitlines()[0] == "part-0001-of-0003/clips-000000.tar"
    for key in ("videos_total", "videos_read", "sentences_written", "skipped_counts"):
        assert merged[key] == single[key], key
    assert merged["captioned_videos_without_file"] == single["captioned_videos_without_file"] == 1  # gone
    assert sorted(map(str, merged["skipped"])) == sorted(map(str, single["skipped"]))
    assert json.loads((out / "summary.json").read_text()) == merged
    # The DataModule reads the list file; epoch_length comes from the parts' summary.json sample counts.
    dm = ShardDataModule(train_shards=str(out / "shards.txt"), val_shards=str(out / "shards.txt"),
                         batch_size=2, num_workers=0, num_frames=6, inputs=InputSpec(image_size=24),
                         shuffle_buffer=0)  # fmt: skip
    assert len(dm.train_dataset(0, 1)) == math.ceil(single["sentences_written"] / 2)
    batches = list(dm.val_dataset(0, 1, num_workers=0))
    assert [v for b in batches for v in b.video_id] == ["a", "a", "b", "d", "d", "e", "e"]
    first, n = batches[0], int(batches[0].frame_mask[0].sum())
    images = first.frames[0, :n].permute(0, 2, 3, 1).numpy()
    assert [frame_index(f) for f in images] == [
        round(t * VIDEO_FPS) for t in first.timestamps[0, :n].tolist()
    ]


def test_merge_names_missing_unfinished_stale_and_damaged_parts(corpus):
    cfg = run_parts(corpus, 3, "broken")
    out = Path(cfg.out)
    (out / "part-0002-of-0003" / "_prepare_state.json").unlink()
    state_file = out / "part-0003-of-0003" / "_prepare_state.json"
    state_file.write_text(json.dumps({**json.loads(state_file.read_text()), "done": False}))
    with pytest.raises(
        StgUserError, match=r"cannot merge: part 2/3 missing; part 3/3 unfinished .*--part I/3"
    ):
        merge_parts(cfg, 3)
    cfg = run_parts(corpus, 3, "stale")
    with pytest.raises(
        StgUserError, match=r"part 1/3 holds shards prepared with other settings \(fps differ\)"
    ):
        merge_parts(replace(cfg, fps=1.0), 3)
    shard = Path(cfg.out) / "part-0001-of-0003" / "clips-000000.tar"
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(StgUserError, match=r"part 1/3 shard clips-000000\.tar is truncated"):
        merge_parts(cfg, 3)
    with pytest.raises(StgUserError, match=r"part 1/4 missing; part 2/4 missing"):
        merge_parts(cfg, 4)


def test_a_part_resumes_and_refuses_a_changed_video_list(corpus, tmp_path):
    (tmp_path / "videos").mkdir()
    for video in (corpus / "videos").iterdir():
        (tmp_path / "videos" / video.name).symlink_to(video)
    (tmp_path / "caption.json").symlink_to(corpus / "caption.json")
    part = small_config(tmp_path, part="1/2")
    write_shards(part, progress=False)
    folder = tmp_path / "out" / "part-0001-of-0002"
    before = digests(folder)
    assert write_shards(part, progress=False)["videos_total"] == 3  # finished: kept as it is
    assert digests(folder) == before
    (tmp_path / "videos" / "e.mp4").unlink()  # one video fewer: every part's share moves
    with pytest.raises(StgUserError, match=r"inputs changed .*the list of videos in .*videos, which"):
        write_shards(part, progress=False)


def test_streamed_captions_keep_only_the_wanted_videos_and_read_nan_literals(tmp_path, monkeypatch):
    nan, inf = float("nan"), float("inf")
    caps = {
        "v": {"start": [1.0, nan, 2], "end": [2.0, 3.0, inf], "text": ['a "NaN", \\', "b", "c"]},
        "w": {"start": [-inf], "end": [1.0], "text": [nan]},
        "broken": {"start": [0.0]},  # never checked: not wanted
    }
    path = tmp_path / "caption.json"
    path.write_text(json.dumps(caps, indent=1))
    monkeypatch.setattr(json_stream, "CHUNK", 3)  # a literal, escape or quote at every read boundary
    kept = load_captions(path, keep={"v", "w"})
    assert list(kept) == ["v", "w"] and [s.text for s in kept["v"]] == ['a "NaN", \\', "b", "c"]
    assert math.isnan(kept["v"][1].start) and kept["v"][2].end == math.inf
    assert kept["w"][0].start == -math.inf and kept["w"][0].text == ""  # NaN text: empty, as json.load gives
    assert [(vid, s is None) for vid, s in iter_captions(path, keep={"w"})] == [
        ("v", True), ("w", False), ("broken", True)
    ]  # fmt: skip
    with pytest.raises(StgUserError, match=r"video 'broken' needs 'start', 'end' and 'text' lists"):
        load_captions(path)
    path.write_text("[1, 2]")
    with pytest.raises(StgUserError, match=r"caption\.json: expected a JSON object keyed by video id"):
        load_captions(path)


def test_streamed_json_items_equal_json_loads_on_random_documents(monkeypatch):
    """Strings full of quotes, backslashes, commas and the literals' names, next to real NaN / ±Infinity,
    read in chunks of 1 to 7 bytes: the stream's items are json.loads' items (NaN compared as NaN)."""
    rng = random.Random(0)
    atoms = ["NaN", "-Infinity", "Infinity", '"', "\\", ",", "é", " x", "[1]"]

    def value(depth: int = 0):
        if depth < 2 and rng.random() < 0.3:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return rng.choice(
            [math.nan, math.inf, -math.inf, 1.5, 2, None, True, "".join(rng.choices(atoms, k=3))]
        )

    def restored(v):
        return [restored(x) for x in v] if isinstance(v, list) else json_stream.restore_non_finite([v])[0]

    for _ in range(200):
        doc = {"".join(rng.choices(atoms, k=2)) + str(i): value() for i in range(rng.randint(0, 4))}
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1]))
        monkeypatch.setattr(json_stream, "CHUNK", rng.randint(1, 7))
        items = [(k, restored(v)) for k, v in json_stream.object_items(io.BytesIO(text.encode()))]
        # repr: NaN == NaN is False, but repr(nan) == "nan"
        assert repr(items) == repr(list(json.loads(text).items())), text


def test_a_missing_shard_list_file_is_named(tmp_path):
    with pytest.raises(StgUserError, match=r"data.train_shards: shard list '.*nowhere\.txt' not found"):
        expand_shards(str(tmp_path / "nowhere.txt"), "data.train_shards")


def sbatch(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """The SLURM script run by bash, as a node runs it; SLURM_* only as given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(["bash", str(SBATCH), *args], env={**clean, **env}, capture_output=True, text=True)


def test_slurm_script_passes_the_part_and_the_merge_flags(tmp_path):
    stub = tmp_path / "stg"
    stub.write_text('#!/bin/bash\necho "$@"\n')
    stub.chmod(0o755)
    task = sbatch(["3", "--config", "c.yaml"], STG=str(stub), SLURM_ARRAY_TASK_ID="2")
    assert task.stdout.strip() == "prepare --config c.yaml --part=2/3"
    merge = sbatch(["3", "--config", "c.yaml"], STG=str(stub))
    assert merge.stdout.strip() == "prepare-merge --config c.yaml --parts=3"
    bad = sbatch(["--config", "c.yaml"], STG=str(stub))
    assert bad.returncode == 2 and "usage: prepare_array.sbatch N" in bad.stderr


@pytest.mark.slow
def test_slurm_array_script_end_to_end(corpus, tmp_path):
    """The array's three tasks and the merge, as SLURM would run them (about 30 s: each `stg` starts up)."""
    config = tmp_path / "prepare.yaml"
    cfg = small_config(corpus, str(tmp_path / "out"))
    config.write_text("".join(f"{k}: {json.dumps(getattr(cfg, k))}\n" for k in (
        "videos", "captions", "out", "fps", "num_frames", "min_time", "short_side", "shard_size", "workers",
        "jpeg_quality",
    )))  # fmt: skip
    stg = str(Path(sys.executable).parent / "stg")
    for task in ("1", "2", "3", None):  # the array's tasks, then the merge job
        env = {"STG": stg, **({"SLURM_ARRAY_TASK_ID": task} if task else {})}
        done = sbatch(["3", "--config", str(config)], **env)
        assert done.returncode == 0, done.stderr
    single = write_shards(small_config(corpus, "single_for_slurm"), progress=False)
    urls = expand_shards(str(tmp_path / "out" / "shards.txt"), "data.train_shards")
    assert clips(urls) == clips([str(corpus / "single_for_slurm" / n) for n in sorted(single["shards"])])
