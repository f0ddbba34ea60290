"""Frame sources (eval/frames.py): finding a video, frame folders in second order, windows of video files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stg_lightning.data.video import write_video
from stg_lightning.errors import StgUserError
from stg_lightning.eval import frames as frames_module
from stg_lightning.eval.frames import FrameCache, chunks, find_video, iter_source_frames


def _frames(n: int, size: int = 16) -> np.ndarray:
    """``n`` (≤ 21) flat frames, frame k of grey level 12 k (still told apart after lossy coding)."""
    return np.stack([np.full((size, size, 3), 12 * k, np.uint8) for k in range(n)])


def _frame_folder(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t}.png")
    return folder


def test_find_video_prefers_the_frame_folder_then_the_video_suffixes(tmp_path: Path):
    assert find_video(tmp_path, "a") is None
    (tmp_path / "a.webm").write_bytes(b"")
    assert find_video(tmp_path, "a") == tmp_path / "a.webm"
    (tmp_path / "a.mp4").write_bytes(b"")
    assert find_video(tmp_path, "a") == tmp_path / "a.mp4"  # .mp4 comes first in VIDEO_SUFFIXES
    (tmp_path / "a").mkdir()
    assert find_video(tmp_path, "a") == tmp_path / "a"
    (tmp_path / "b.txt").write_bytes(b"")
    assert find_video(tmp_path, "b") is None


def test_frame_folder_yields_seconds_in_numeric_order_and_windows(tmp_path: Path):
    frames = _frames(12)
    folder = _frame_folder(tmp_path / "v", frames)
    (folder / "notes.txt").write_text("not a frame")
    got = list(iter_source_frames(folder, 1))
    assert [t for t, _ in got] == [float(t) for t in range(12)]  # 10 and 11 after 9, not after 1
    for (_, frame), expected in zip(got, frames):
        np.testing.assert_array_equal(frame, expected)
    assert [t for t, _ in iter_source_frames(folder, 1, start=2, end=5)] == [2.0, 3.0, 4.0]
    assert [t for t, _ in iter_source_frames(folder, 1, start=10, end=99)] == [10.0, 11.0]
    with pytest.raises(StgUserError, match="set fps: 1"):
        next(iter_source_frames(folder, 2))


def test_frame_folder_with_a_missing_second_is_refused(tmp_path: Path):
    folder = _frame_folder(tmp_path / "v", _frames(3))
    (folder / "1.png").unlink()
    with pytest.raises(StgUserError, match="second 1 is missing"):
        next(iter_source_frames(folder, 1))


def test_video_window_reads_the_frames_of_one_pass(tmp_path: Path):
    path = tmp_path / "v.mp4"
    write_video(path, _frames(20), fps=5)  # 4 s
    one_pass = list(iter_source_frames(path, 1))
    assert [t for t, _ in one_pass] == [0.0, 1.0, 2.0, 3.0]
    assert [round(f.mean() / 12) for _, f in one_pass] == [0, 5, 10, 15]  # frame k·fps at t = k s
    window = list(iter_source_frames(path, 1, start=1, end=3, chunk=1))
    assert [t for t, _ in window] == [1.0, 2.0]
    for (_, frame), (_, expected) in zip(window, one_pass[1:3]):
        np.testing.assert_array_equal(frame, expected)
    assert [t for t, _ in iter_source_frames(path, 1, start=2, chunk=1)] == [2.0, 3.0]


def test_chunks_are_consecutive_and_the_last_may_be_short():
    items = [(float(t), np.zeros(1)) for t in range(7)]
    got = list(chunks(iter(items), 3))
    assert [[t for t, _ in c] for c in got] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0]]
    assert list(chunks(iter([]), 3)) == []


def test_frame_cache_decodes_each_window_once_and_replays_the_same_frames(tmp_path: Path, monkeypatch):
    folder = _frame_folder(tmp_path / "v", _frames(6))
    decoded = []

    def counting(source, fps, start=0, end=None, chunk=32):
        decoded.append((start, end))
        return iter_source_frames(source, fps, start, end, chunk)

    monkeypatch.setattr(frames_module, "iter_source_frames", counting)
    cache = FrameCache()
    first = list(cache(folder, 1.0, 1, 4))
    again = list(cache(folder, 1.0, 1, 4))
    whole = list(cache(folder, 1.0))
    assert decoded == [(1, 4), (0, None)]  # the repeat came from the cache
    assert [t for t, _ in first] == [t for t, _ in again] == [1.0, 2.0, 3.0]
    assert [int(f[0, 0, 0]) for _, f in again] == [12, 24, 36]
    assert len(whole) == 6 and not whole[0][1].flags.writeable  # shared frames cannot be changed in place
