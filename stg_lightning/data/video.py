"""PyAV decoding helpers shared by `stg prepare` and the evaluation suite.

The frame "at time t" is the frame on screen at t: the last decoded frame whose presentation time is <= t
(the first frame for times before it). Times are seconds from the start of the video stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from itertools import count
from pathlib import Path

import av
import numpy as np

# Slack for float round-off between requested times and frame presentation times.
_EPS = 1e-6


@dataclass(frozen=True)
class VideoInfo:
    """Size and timing of a video's first video stream."""

    width: int
    height: int
    duration: float
    fps: float


def output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) after resizing the short side to `short_side` (unchanged if None)."""
    if short_side is None:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def sample_times(start: float, end: float, fps: float, max_frames: int | None = None) -> list[float]:
    """Times k/fps on the global grid inside [start, end); the middle `max_frames` when there are more."""
    first = math.ceil(start * fps - _EPS)
    last = math.ceil(end * fps - _EPS)  # exclusive
    if max_frames is not None and last - first > max_frames:
        first += (last - first - max_frames) // 2
        last = first + max_frames
    return [k / fps for k in range(first, last)]


class VideoWriter:
    """An open output video: `write(HxWx3 uint8)` frame by frame (even H and W) at a constant frame rate;
    `options` go to the muxer (e.g. {"movflags": "faststart"}: the mp4 index before the frames, as web
    videos have it), `codec_options` to the encoder (e.g. {"preset": "veryfast"}). Several writers can take
    frames from one decoding pass."""

    def __init__(
        self,
        path: str | Path,
        fps: int | Fraction,
        codec: str = "libx264",
        options: dict[str, str] | None = None,
        codec_options: dict[str, str] | None = None,
    ) -> None:
        self.container = av.open(str(path), mode="w", options=options or {})
        self.fps, self.codec, self.codec_options = fps, codec, codec_options or {}
        self.stream = None

    def write(self, image: np.ndarray) -> None:
        if self.stream is None:
            self.stream = self.container.add_stream(self.codec, rate=self.fps, options=self.codec_options)
            self.stream.height, self.stream.width = image.shape[:2]
            self.stream.pix_fmt = "yuv420p"
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            self.container.mux(packet)

    def close(self) -> None:
        if self.stream is not None:
            self.container.mux(self.stream.encode())
        self.container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: int,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
) -> None:
    """Encode HxWx3 uint8 frames (even H and W) to a video file at a constant frame rate (see VideoWriter)."""
    with VideoWriter(path, fps, codec, options) as writer:
        for image in frames:
            writer.write(image)


class VideoDecodeError(ValueError):
    """A file PyAV opens but that holds no decodable video."""


class NotAVideoError(VideoDecodeError):
    """A file with no video stream, or an image (e.g. a PNG renamed .mp4, which FFmpeg reads as 1 frame)."""


class TruncatedVideoError(VideoDecodeError):
    """The file ends inside the video stream (cut short, e.g. a partial download)."""


# FFmpeg demuxers of still images: image2, image2pipe and the per-codec png_pipe, jpeg_pipe, webp_pipe, ...
def _is_image_format(name: str) -> bool:
    return name in ("image2", "image2pipe") or name.endswith("_pipe")


# What reading an unreadable, truncated or non-video file raises (PyAV's errors, the OS's, ours).
DECODE_ERRORS = (av.FFmpegError, OSError, VideoDecodeError)


class VideoReader:
    """An open video file: `info`, then `frames_at(times)` (one seek per call) or `iter_at_fps`."""

    def __init__(self, path: str | Path, short_side: int | None = None) -> None:
        self.path = str(path)
        self.container = av.open(self.path)
        if not self.container.streams.video:
            self.container.close()
            raise NotAVideoError(f"{self.path}: no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self._offset = self.stream.start_time or 0
        self._tb = self.stream.time_base
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        self._frame_period = float(1 / rate)
        if self.stream.duration is not None:
            duration = float(self.stream.duration * self._tb)
        else:
            duration = (self.container.duration or 0) / av.time_base
        # frames == 1 with no duration: a single still (e.g. a GIF); frames == 0 only means "not in the header"
        fmt = self.container.format.name
        if _is_image_format(fmt) or (self.stream.frames == 1 and duration <= 0):
            self.container.close()
            raise NotAVideoError(f"{self.path}: an image ({fmt}), not a video")
        self.info = VideoInfo(self.stream.width, self.stream.height, duration, float(rate))
        self.size = output_size(self.stream.width, self.stream.height, short_side)
        self._decoding_started = False

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decoded(self, start: float) -> Iterator[tuple[float, av.VideoFrame]]:
        """(time, frame) from the keyframe before `start` onwards; TruncatedVideoError where the file is cut."""
        if start > 0 or self._decoding_started:  # once decoding ran, the demuxer is not at the start any more
            self.container.seek(self._offset + int(start / self._tb), stream=self.stream, backward=True)
        self._decoding_started = True
        for packet in self.container.demux(self.stream):
            # A short read (the file ends inside this packet): hand out the frames the decoder still holds,
            # then say so, rather than ending as if the video were over.
            frames = self.stream.decode(None) if packet.is_corrupt else packet.decode()
            for frame in frames:
                if frame.pts is not None:
                    yield float((frame.pts - self._offset) * self._tb), frame
            if packet.is_corrupt:
                raise TruncatedVideoError(
                    f"{self.path}: the file ends inside the video stream (it states {self.info.duration:.2f} s)"
                )

    def _pick(self, times: Iterable[float]) -> Iterator[tuple[float, np.ndarray]]:
        """RGB arrays of the frames on screen at ascending `times`; stops at the end of the video."""
        times = iter(times)
        target = next(times, None)
        if target is None:
            return
        prev: tuple[float, av.VideoFrame] | None = None
        # The last converted frame, reused when fps > video fps. The frame itself is held, not its id(): a
        # freed frame's id is reused by a later one, which then got the old frame's pixels.
        cached: tuple[av.VideoFrame, np.ndarray] | None = None

        def rgb(frame: av.VideoFrame) -> np.ndarray:
            nonlocal cached
            if cached is None or cached[0] is not frame:
                width, height = self.size
                cached = (frame, frame.to_ndarray(format="rgb24", width=width, height=height))
            return cached[1]

        for t, frame in self._decoded(target):
            while target is not None and target < t - _EPS:
                yield target, rgb(prev[1] if prev is not None else frame)
                target = next(times, None)
            if target is None:
                return
            prev = (t, frame)
        # After the last frame: it stays on screen for one frame period.
        while target is not None and prev is not None and target < prev[0] + self._frame_period - _EPS:
            yield target, rgb(prev[1])
            target = next(times, None)

    def frames_at(self, times: list[float]) -> tuple[list[float], list[np.ndarray]]:
        """Frames on screen at ascending `times` (HxWx3 uint8); times past the end are dropped."""
        picked = list(self._pick(times))
        return [t for t, _ in picked], [f for _, f in picked]

    def iter_at_fps(self, fps: float) -> Iterator[tuple[float, np.ndarray]]:
        """(t, frame) at t = k / fps, k = 0, 1, ... to the end of the video, in one decoding pass."""
        return self._pick(k / fps for k in count())


def read_window(
    path: str | Path, start: float, end: float, fps: float, short_side: int | None = None
) -> tuple[list[float], list[np.ndarray]]:
    """Frames at k/fps for k/fps in [start, end), decoded with a single seek."""
    with VideoReader(path, short_side) as reader:
        return reader.frames_at(sample_times(start, end, fps))


def iter_frames_at_fps(
    path: str | Path, fps: float, short_side: int | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """(t, HxWx3 uint8) at t = 0, 1/fps, 2/fps, ... over the whole video (e.g. fps=1 for evaluation)."""
    with VideoReader(path, short_side) as reader:
        yield from reader.iter_at_fps(fps)
