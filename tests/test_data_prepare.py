"""`stg prepare`, captions and PyAV decoding on tiny videos whose frames encode their own index."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stg_lightning.data import prepare as prepare_mod
from stg_lightning.data.captions import clip_window, load_captions
from stg_lightning.data.prepare import PrepareConfig, parse_config, write_shards
from stg_lightning.data.shards import ShardWriter, TruncatedShardError, count_shard_samples, iter_shard
from stg_lightning.data.video import VideoReader, iter_frames_at_fps, read_window, sample_times, write_video
from stg_lightning.errors import StgUserError

VIDEO_FPS = 10
VIDEO_SECONDS = 15


def index_frame(i: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """A solid frame whose colour encodes i (robust to JPEG/H.264 error: levels 25 and 16 apart)."""
    return np.full((size[1], size[0], 3), [(i % 10) * 25, (i // 10) * 16, 128], np.uint8)


def frame_index(image: np.ndarray) -> int:
    r, g = image.reshape(-1, 3)[:, :2].astype(float).mean(0)
    return round(r / 25) + 10 * round(g / 16)


def write_index_video(path: Path, seconds: int = VIDEO_SECONDS) -> None:
    write_video(path, (index_frame(i) for i in range(seconds * VIDEO_FPS)), fps=VIDEO_FPS)


# Sentences: a0 widened to [0, 3) by min_time; a1 empty; a2 past the 15 s end; a3 runs off the end
# (window [13.5, 16.5) → frames 13.5..14.5 only); b0 plain; c has no captions; bad is not a video.
CAPTIONS = {
    "a": {
        "start": [1.0, 5.0, 20.0, 14.0],
        "end": [2.0, 9.0, 22.0, 16.0],
        "text": ["crack egg", " ", "x", "stir"],
    },
    "b": {"start": [4.0], "end": [7.5], "text": ["pour  milk"]},
    "bad": {"start": [0.0], "end": [1.0], "text": ["never read"]},
}


def make_corpus(root: Path) -> tuple[Path, Path]:
    videos = root / "videos"
    videos.mkdir(parents=True)
    for vid in ("a", "b", "c"):
        write_index_video(videos / f"{vid}.mp4")
    (videos / "bad.mp4").write_bytes(b"not a video" * 50)
    captions = root / "caption.json"
    captions.write_text(json.dumps(CAPTIONS))
    return videos, captions


def small_config(root: Path, out: str = "out", **kw) -> PrepareConfig:
    videos, captions = root / "videos", root / "caption.json"
    if not videos.exists():
        make_corpus(root)
    base = dict(fps=2.0, num_frames=6, min_time=3.0, short_side=24, shard_size=2, workers=0, jpeg_quality=95)
    return PrepareConfig(videos=str(videos), captions=str(captions), out=str(root / out), **{**base, **kw})


def digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.tar"))}


def test_clip_window_and_sample_times():
    assert clip_window(1.0, 2.0, 3.0) == (0.0, 3.0)
    assert clip_window(5.0, 6.0, 4.0) == (3.5, 7.5)
    assert clip_window(5.0, 9.0, 3.0) == (5.0, 9.0)
    assert sample_times(0.3, 1.6, fps=2) == [0.5, 1.0, 1.5]
    assert sample_times(0.0, 10.0, fps=1, max_frames=4) == [3.0, 4.0, 5.0, 6.0]


def test_read_window_and_iter_frames_pick_the_frame_on_screen(tmp_path):
    path = tmp_path / "v.mp4"
    write_index_video(path)
    times, frames = read_window(path, 3.0, 5.0, fps=5)
    assert times == pytest.approx([3.0 + 0.2 * k for k in range(10)])
    assert [frame_index(f) for f in frames] == list(range(30, 50, 2))
    times, frames = read_window(path, 13.5, 17.0, fps=2, short_side=24)  # past the end: dropped
    assert times == [13.5, 14.0, 14.5] and [frame_index(f) for f in frames] == [135, 140, 145]
    assert frames[0].shape == (24, 32, 3)
    pairs = list(iter_frames_at_fps(path, fps=1))
    assert [t for t, _ in pairs] == list(range(15)) and [frame_index(f) for _, f in pairs] == list(
        range(0, 150, 10)
    )


def test_csv_captions_equal_json(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "a.csv").write_text('start,end,text\n1.0,2.0,crack egg\n5,9,"  "\n')
    from_csv = load_captions(folder)["a"]
    assert [(s.start, s.end, s.text) for s in from_csv] == [(1.0, 2.0, "crack egg"), (5.0, 9.0, "")]
    (tmp_path / "c.json").write_text(
        json.dumps({"a": {"start": [1.0, 5], "end": [2, 9], "text": ["crack egg", " "]}})
    )
    assert load_captions(tmp_path / "c.json")["a"] == from_csv


def test_prepare_writes_expected_samples_and_summary(tmp_path):
    cfg = small_config(tmp_path)
    summary = write_shards(cfg, progress=False)
    samples = [s for name in sorted(summary["shards"]) for s in iter_shard(tmp_path / "out" / name)]
    assert [key for key, _ in samples] == ["a__00000", "a__00003", "b__00000"]
    expected_times = {
        "a__00000": [0, 0.5, 1, 1.5, 2, 2.5],  # [1, 2) widened to [0, 3)
        "a__00003": [13.5, 14, 14.5],  # [13.5, 16.5) cut at the 15 s end
        "b__00000": [4, 4.5, 5, 5.5, 6, 6.5],  # 7 grid times in [4, 7.5); U=6 keeps the middle run
    }
    for key, files in samples:
        meta = json.loads(files["json"])
        assert meta["timestamps"] == expected_times[key]
        names = [f"{i:03d}.jpg" for i in range(len(meta["timestamps"]))]
        frames = [np.asarray(Image.open(io.BytesIO(files[n]))) for n in names]
        assert [frame_index(f) for f in frames] == [round(t * VIDEO_FPS) for t in meta["timestamps"]]
        assert frames[0].shape == (24, 32, 3) and meta["source_size"] == [64, 48]
    meta_b = json.loads(samples[2][1]["json"])
    assert (meta_b["video_id"], meta_b["text"], meta_b["start"], meta_b["end"]) == (
        "b",
        "pour milk",
        4.0,
        7.5,
    )
    assert summary["videos_read"] == 2 and summary["sentences_written"] == 3  # c has no captions: not opened
    assert summary["skipped_counts"] == {
        "corrupt_video": 1, "empty_sentence": 1, "no_captions": 1, "window_past_end": 1
    }  # fmt: skip
    assert {"video_id": "a", "sentence_index": 2, "reason": "window_past_end"} in summary["skipped"]
    assert summary["shards"] == {"clips-000000.tar": 2, "clips-000001.tar": 1}
    assert summary["pattern"].endswith("clips-{000000..000001}.tar")


def test_killed_run_resumes_to_identical_shards(tmp_path, monkeypatch):
    reference = small_config(tmp_path, "ref", shard_size=1)
    write_shards(reference, progress=False)
    resumed = small_config(tmp_path, "resumed", shard_size=1)
    real_close = prepare_mod.ShardWriter.close
    closes = []

    def dying_close(self):
        if len(closes) == 2:  # third shard: the process "dies" with the shard half written
            raise KeyboardInterrupt
        closes.append(self.path)
        real_close(self)

    monkeypatch.setattr(prepare_mod.ShardWriter, "close", dying_close)
    with pytest.raises(KeyboardInterrupt):
        write_shards(resumed, progress=False)
    out = Path(resumed.out)
    assert len(list(out.glob("*.tar"))) == 2 and list(out.glob("*.tar.tmp"))
    monkeypatch.setattr(prepare_mod.ShardWriter, "close", real_close)
    summary = write_shards(resumed, progress=False)
    assert not list(out.glob("*.tmp")) and digests(out) == digests(Path(reference.out))
    ref_summary = json.loads((Path(reference.out) / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k not in ("config", "pattern")} == {
        k: v for k, v in ref_summary.items() if k not in ("config", "pattern")
    }


@pytest.mark.slow
def test_worker_pool_output_equals_in_process(tmp_path):
    serial = small_config(tmp_path, "serial")
    pooled = small_config(tmp_path, "pooled", workers=2)
    write_shards(serial, progress=False)
    write_shards(pooled, progress=False)
    assert digests(Path(pooled.out)) == digests(Path(serial.out))


def test_resume_with_other_settings_is_refused(tmp_path):
    write_shards(small_config(tmp_path), progress=False)
    with pytest.raises(StgUserError, match="fps"):
        write_shards(small_config(tmp_path, fps=1.0), progress=False)


def test_config_file_then_flags(tmp_path):
    config = tmp_path / "prepare.yaml"
    config.write_text("fps: 1.0\nnum_frames: 16\nout: somewhere\n")
    cfg = parse_config(["--config", str(config), "--num-frames", "8", "--cache-tokens"])
    assert (cfg.fps, cfg.num_frames, cfg.out, cfg.cache_tokens, cfg.min_time) == (
        1.0,
        8,
        "somewhere",
        True,
        16.0,
    )
    config.write_text("fsp: 1.0\n")
    with pytest.raises(
        StgUserError, match=r"prepare.yaml: unknown key 'fsp' \(did you mean 'fps'\?\); valid keys: "
    ):
        parse_config(["--config", str(config)])
    with pytest.raises(StgUserError, match=r"command line: key 'num_frames': expected int, got 'many'"):
        parse_config(["--num_frames=many"])
    assert not parse_config(["--cache_tokens=true", "--no-cache-tokens"]).cache_tokens


def test_prepare_yaml_loads_the_values_it_states():
    """configs/data/prepare.yaml read by hand."""
    path = Path(__file__).resolve().parents[1] / "configs" / "data" / "prepare.yaml"
    assert parse_config(["--config", str(path)]) == PrepareConfig(
        videos="data/videos",
        captions="data/caption.json",
        out="data/shards",
        fps=5.0,
        num_frames=80,
        min_time=16.0,
        short_side=224,
        shard_size=1000,
        workers=2,
        jpeg_quality=90,
        shard_prefix="clips",
        cache_tokens=False,
        model_name="ViT-B-32",
        pretrained=None,
        device="cpu",
    )


def test_bad_sentence_times_are_skipped_and_counted(tmp_path):
    # Negative start, reversed start/end, NaN and infinity: none becomes a clip, each is counted.
    make_corpus(tmp_path)
    bad = {"b": {"start": [-3.0, 7.0, "NaN", 2.0, 4.0], "end": [1.0, 5.0, 3.0, "Infinity", 7.5],
                 "text": ["neg", "rev", "nan", "inf", "pour milk"]}}  # fmt: skip
    (tmp_path / "caption.json").write_text(
        json.dumps(bad).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
    )
    summary = write_shards(small_config(tmp_path), progress=False)
    assert summary["sentences_written"] == 1 and summary["skipped_counts"]["bad_times"] == 4
    assert {(s["sentence_index"], s["reason"]) for s in summary["skipped"] if s["video_id"] == "b"} == {
        (i, "bad_times") for i in range(4)
    }


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            b'{"v": {"start": [0, "soon"], "end": [1, 2], "text": ["a", "b"]}}',
            r"video 'v', start\[1\] = 'soon'",
        ),
        (
            b'{"v": {"start": [0], "end": [true], "text": ["a"]}}',
            r"video 'v', end\[0\] = True is not a number",
        ),
        (b"{not json", r"cannot read captions JSON"),
        (b'{"v": {"text": ["\xff\xfe"]}}', r"cannot read captions JSON"),
    ],
)
def test_malformed_captions_name_the_file(tmp_path, content, match):
    path = tmp_path / "caption.json"
    path.write_bytes(content)
    with pytest.raises(StgUserError, match=match) as err:
        load_captions(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("key", "value"), [("fps", 0), ("fps", "fast"), ("num_frames", 0), ("shard_size", 0)]
)
def test_prepare_settings_that_give_no_clips_are_refused(tmp_path, key, value):
    with pytest.raises(StgUserError, match=rf"prepare: {key} must be"):
        PrepareConfig(**{key: value})


def test_rerun_after_inputs_changed_is_refused_then_redone_with_overwrite(tmp_path):
    cfg = small_config(tmp_path)
    write_shards(cfg, progress=False)
    out = Path(cfg.out)
    captions = tmp_path / "caption.json"
    captions.write_text(json.dumps({k: v for k, v in CAPTIONS.items() if k != "b"}))  # edited in place
    with pytest.raises(StgUserError, match=r"inputs changed .*caption\.json\).*--overwrite"):
        write_shards(cfg, progress=False)
    summary = write_shards(replace(cfg, overwrite=True), progress=False)
    assert summary["sentences_written"] == 2 and summary["shards"] == {"clips-000000.tar": 2}
    assert [p.name for p in out.glob("*.tar")] == ["clips-000000.tar"]  # the old second shard is gone
    assert [key for key, _ in iter_shard(out / "clips-000000.tar")] == ["a__00000", "a__00003"]
    rerun = write_shards(cfg, progress=False)  # unchanged inputs: the finished run is kept
    assert {**rerun, "config": None} == {**summary, "config": None}
    video = Path(cfg.videos) / "a.mp4"
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))  # re-encoded, say
    with pytest.raises(StgUserError, match=r"inputs changed .*video files"):
        write_shards(cfg, progress=False)


def test_image_renamed_mp4_is_skipped_as_not_a_video(tmp_path):
    videos, captions = make_corpus(tmp_path)
    Image.fromarray(index_frame(7)).save(videos / "still.mp4", format="PNG")
    captions.write_text(
        json.dumps({**CAPTIONS, "still": {"start": [0.0], "end": [1.0], "text": ["a photo"]}})
    )
    summary = write_shards(small_config(tmp_path), progress=False)
    assert summary["sentences_written"] == 3 and summary["skipped_counts"]["not_a_video"] == 1
    assert {"video_id": "still", "sentence_index": None, "reason": "not_a_video"} in summary["skipped"]


def test_truncated_video_is_counted_and_never_gives_short_clips(tmp_path):
    videos, captions = make_corpus(tmp_path)
    full = tmp_path / "full.mp4"  # faststart: the index survives the cut, so the file still opens
    frames = (index_frame(i) for i in range(VIDEO_SECONDS * VIDEO_FPS))
    write_video(full, frames, fps=VIDEO_FPS, options={"movflags": "faststart"})
    data = full.read_bytes()
    (videos / "cut.mp4").write_bytes(data[: len(data) // 2])  # frames up to ~1.3 s of the stated 15 s
    # Windows before the cut, across it (old: a short clip), after it (old: window_past_end), past 15 s.
    times = {"start": [0.1, 0.5, 5.0, 20.0], "end": [0.4, 3.0, 9.0, 22.0]}
    cut = {**times, "text": ["early", "across", "middle", "after end"]}
    captions.write_text(json.dumps({**CAPTIONS, "cut": cut}))
    summary = write_shards(small_config(tmp_path, min_time=0.5), progress=False)
    reasons = {(s["sentence_index"], s["reason"]) for s in summary["skipped"] if s["video_id"] == "cut"}
    assert reasons == {(1, "truncated_video"), (2, "truncated_video"), (3, "window_past_end")}
    out = Path(summary["pattern"]).parent
    clips = {key: json.loads(f["json"]) for name in summary["shards"] for key, f in iter_shard(out / name)}
    assert clips["cut__00000"]["timestamps"] == [0.0]  # the window [0, 0.5) lies before the cut
    assert clips["a__00003"]["timestamps"] == [14.0, 14.5]  # [14, 16): the real end still gives a short clip


def test_captioned_video_whose_file_is_missing_is_missing_not_corrupt(tmp_path):
    make_corpus(tmp_path)
    listing = tmp_path / "videos.txt"
    listing.write_text("videos/a.mp4\nvideos/bad.mp4\nvideos/gone.mp4\n")
    (tmp_path / "caption.json").write_text(
        json.dumps({**CAPTIONS, "gone": {"start": [0.0], "end": [1.0], "text": ["deleted"]}})
    )
    summary = write_shards(replace(small_config(tmp_path), videos=str(listing)), progress=False)
    by_video = {s["video_id"]: s["reason"] for s in summary["skipped"] if s["sentence_index"] is None}
    assert by_video == {"gone": "missing_video", "bad": "corrupt_video"}


def test_truncated_shard_is_detected_when_counting_and_reading(tmp_path):
    path = tmp_path / "s.tar"
    writer = ShardWriter(path)
    for i in range(3):
        writer.add(f"k{i}", {"json": b"{}", "000.jpg": bytes(700)})
    writer.close()
    data = path.read_bytes()
    with tarfile.open(path) as tar:
        third = tar.getmember("k2.json").offset  # a cut between members: tarfile alone sees 2 samples
    for cut in (third, len(data) // 2):
        path.write_bytes(data[:cut])
        with pytest.raises(TruncatedShardError, match="truncated shard"):
            count_shard_samples(path)
        with pytest.raises(TruncatedShardError, match="truncated shard"):
            list(iter_shard(path))


def test_resume_over_a_truncated_shard_is_refused_then_rewritten(tmp_path):
    cfg = small_config(tmp_path)
    write_shards(cfg, progress=False)
    out = Path(cfg.out)
    reference = digests(out)
    shard = out / "clips-000000.tar"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(StgUserError, match=r"shard clips-000000\.tar is truncated.*--overwrite"):
        write_shards(cfg, progress=False)
    write_shards(replace(cfg, overwrite=True), progress=False)
    assert digests(out) == reference


def test_a_second_window_from_0s_is_read_from_the_start(tmp_path):
    path = tmp_path / "v.mp4"
    write_index_video(path)
    with VideoReader(path) as reader:
        reader.frames_at([0.0, 0.5, 1.0])
        _, frames = reader.frames_at([0.0, 0.5])  # no seek to 0 s used to continue after 1.0 s
    assert [frame_index(f) for f in frames] == [0, 5]
