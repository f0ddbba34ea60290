"""Frame sources of evaluation: video files and folders of ``<second>.jpg`` frames.

A video ``<id>`` under a videos folder is either ``<dir>/<id>/`` (one frame per second, named by the
second: ``0.jpg``, ``1.jpg``, ... without gaps; ``.jpeg``/``.png`` too) or ``<dir>/<id>.<suffix>`` for a
suffix in :data:`VIDEO_SUFFIXES` (decoded with PyAV). :func:`iter_source_frames` yields ``(t, HxWx3 uint8)``
from either; inference, the motion-energy baseline and the report's figures read frames through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from stg_lightning.data.video import VideoReader, sample_times
from stg_lightning.errors import StgUserError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def find_video(videos_dir: str | Path, video_id: str) -> Path | None:
    """``<dir>/<id>/`` (a folder of ``<second>.jpg``) or ``<dir>/<id>.<mp4|mkv|webm|avi|mov>``; None if absent."""
    folder = Path(videos_dir) / video_id
    if folder.is_dir():
        return folder
    for suffix in VIDEO_SUFFIXES:
        if (path := folder.with_name(video_id + suffix)).is_file():
            return path
    return None


def _folder_frames(folder: Path) -> list[Path]:
    """Frame files of a folder ordered by second; they must be 0, 1, 2, ... without gaps."""
    files = {}
    for p in folder.iterdir():
        if p.suffix.lower() in FRAME_SUFFIXES and p.stem.isdigit():
            files[int(p.stem)] = p
    missing = [t for t in range(len(files)) if t not in files]
    if missing:
        raise StgUserError(
            f"{folder}: frame folder must hold <second>.jpg for seconds 0..{len(files) - 1}; "
            f"second {missing[0]} is missing"
        )
    return [files[t] for t in range(len(files))]


def iter_source_frames(
    source: str | Path, fps: float, start: int = 0, end: int | None = None, chunk: int = 32
) -> Iterator[tuple[float, np.ndarray]]:
    """(t, HxWx3 uint8) at t = k / fps for t in [start, end) from a video file or a frame folder."""
    source = Path(source)
    if source.is_dir():
        if fps != 1:
            raise StgUserError(f"{source}: a frame folder holds 1 frame per second; set fps: 1 (got {fps})")
        files = _folder_frames(source)
        for t in range(start, len(files) if end is None else min(end, len(files))):
            with Image.open(files[t]) as image:
                yield float(t), np.asarray(image.convert("RGB"))
        return
    with VideoReader(source) as reader:
        if start == 0 and end is None:
            yield from reader.iter_at_fps(fps)  # one decoding pass
            return
        times = sample_times(start, reader.info.duration if end is None else end, fps)
        for i in range(0, len(times), chunk):  # one seek per chunk keeps memory at O(chunk)
            picked, frames = reader.frames_at(times[i : i + chunk])
            yield from zip(picked, frames)
            if len(picked) < len(times[i : i + chunk]):
                return


FrameSource = Callable[..., Iterator[tuple[float, np.ndarray]]]  # iter_source_frames' signature


class FrameCache:
    """`iter_source_frames` that decodes each (source, fps, start, end) once and replays it after, so several
    readouts of one split (the demo's rows) decode every video once. It keeps every frame it decoded
    (read-only uint8): one per cache, for splits that fit in memory."""

    def __init__(self) -> None:
        self._frames: dict[tuple[str, float, int, int | None], list[tuple[float, np.ndarray]]] = {}

    def __call__(
        self, source: str | Path, fps: float, start: int = 0, end: int | None = None, chunk: int = 32
    ) -> Iterator[tuple[float, np.ndarray]]:
        key = (str(source), float(fps), start, end)
        if key not in self._frames:
            frames = list(iter_source_frames(source, fps, start, end, chunk))
            for _, frame in frames:
                frame.setflags(write=False)  # shared by every reader
            self._frames[key] = frames
        return iter(self._frames[key])


def chunks(frames: Iterator[tuple[float, np.ndarray]], size: int) -> Iterator[list[tuple[float, np.ndarray]]]:
    """Consecutive lists of ``size`` frames (the last one may be shorter)."""
    chunk = []
    for item in frames:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
