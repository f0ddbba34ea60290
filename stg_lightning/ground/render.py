"""The videos of a grounded video, all from one decoding pass: the heat-overlay mp4 (each second's detected
query, its heat and a caption burnt in), a short GIF of it, and the plain H.264 copy the viewer page plays
(any codec PyAV reads becomes one every browser plays; the page draws the heat itself).

The heat is drawn relative to its own frame: the grid is min-max scaled, upsampled bilinearly as the metrics
read it, coloured by `render.heat_cmap`, and blended with an opacity that grows with the heat (cold regions
keep the frame as it is).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from stg_lightning.data.video import VideoReader, VideoWriter
from stg_lightning.errors import StgUserError
from stg_lightning.eval.frames import iter_source_frames
from stg_lightning.eval.readout import TIME_EPS
from stg_lightning.ground.config import RenderConfig
from stg_lightning.ground.timeline import Timeline
from stg_lightning.report.figures import upsample_heat

WEB_MP4 = {"movflags": "faststart"}  # the index first: a browser can show and seek before the end arrives


@dataclass(frozen=True)
class SourceVideo:
    """A video file or frame folder as the outputs show it: display size (even sides, as H.264 needs),
    output frame rate and duration in seconds."""

    path: Path
    size: tuple[int, int]  # (width, height)
    fps: float
    duration: float


def source_video(path: str | Path, num_seconds: int, cfg: RenderConfig) -> SourceVideo:
    """Display size and rate of `path`: its long side scaled to `render.max_side` (never up), `render.fps`
    capped at the source's rate (1 for a folder of <second>.jpg)."""
    path = Path(path)
    if path.is_dir():
        first = min((p for p in path.iterdir() if p.stem.isdigit()), key=lambda p: int(p.stem))
        with Image.open(first) as image:
            width, height = image.size
        fps, duration = 1.0, float(num_seconds)
    else:
        with VideoReader(path) as reader:
            width, height = reader.info.width, reader.info.height
            fps, duration = min(cfg.fps, reader.info.fps), reader.info.duration or float(num_seconds)
    return SourceVideo(path, display_size(width, height, cfg.max_side), fps, duration)


def display_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) with the long side at most `max_side`, aspect kept, both even (yuv420p)."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def scaled_heat(grid: np.ndarray) -> np.ndarray:
    """A heat grid min-max scaled to [0, 1] (a flat grid → 0): what is shown is where, not how much."""
    grid = np.asarray(grid, dtype=np.float32)
    span = float(grid.max() - grid.min())
    return (grid - grid.min()) / span if span > 0 else np.zeros_like(grid)


def heat_layer(grid: np.ndarray, size: tuple[int, int], cfg: RenderConfig) -> tuple[np.ndarray, np.ndarray]:
    """A heat grid [h, w] → (colour [H, W, 3] in [0, 1], opacity [H, W, 1]) at the display `size` (w, h)."""
    heat = upsample_heat(torch.from_numpy(scaled_heat(grid)), size).clamp(0, 1).numpy()
    colour = matplotlib.colormaps[cfg.heat_cmap](heat)[..., :3]
    return colour, (cfg.heat_alpha * heat)[..., None]


def _font(height: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=max(10, height // 24))


def caption(image: Image.Image, text: str) -> None:
    """Burn `text` into the top-left corner, white on a dark band."""
    draw = ImageDraw.Draw(image)
    font = _font(image.height)
    _, _, right, bottom = draw.textbbox((6, 4), text, font=font)
    draw.rectangle((0, 0, right + 6, bottom + 4), fill=(0, 0, 0))
    draw.text((6, 4), text, fill=(255, 255, 255), font=font)


def _caption_text(line: Timeline, second: int) -> str:
    if second >= line.num_seconds or line.labels[second] < 0:
        return f"{second} s  background"
    query = int(line.labels[second])
    return f"{second} s  {line.queries[query]}  {line.scores[second, query]:.2f}"


def render_videos(
    line: Timeline,
    source: SourceVideo,
    web_mp4: Path,
    cfg: RenderConfig,
    overlay_mp4: Path | None = None,
    gif: Path | None = None,
) -> None:
    """Decode `source` once at its output rate and write the viewer's copy, and (when given) the overlay mp4
    and its GIF."""
    rate = Fraction(source.fps).limit_denominator(1001)
    expected = max(1, math.floor(source.duration * source.fps) + 1)
    gif_every = max(1, math.ceil(expected / cfg.gif_frames))
    gif_size = display_size(*source.size, cfg.gif_side)
    gif_frames: list[Image.Image] = []
    decoded = 0
    layer_second, layer = -1, None
    with contextlib.ExitStack() as stack:
        encoder = {"preset": cfg.x264_preset, "crf": str(cfg.x264_crf)}

        def writer(path: Path) -> VideoWriter:
            return stack.enter_context(VideoWriter(path, rate, options=WEB_MP4, codec_options=encoder))

        web = writer(web_mp4)
        overlay = None if overlay_mp4 is None else writer(overlay_mp4)
        for t, frame in iter_source_frames(source.path, source.fps):
            image = Image.fromarray(frame)
            if image.size != source.size:
                image = image.resize(source.size, Image.BILINEAR)
            plain = np.asarray(image)
            web.write(plain)
            decoded += 1
            if overlay is None:
                continue
            second = math.floor(t + TIME_EPS)
            if second != layer_second:  # the heat is per second: colour it once
                layer_second = second
                label = int(line.labels[second]) if second < line.num_seconds else -1
                grid = line.heat_of(second, label) if label >= 0 else None
                layer = None if grid is None else heat_layer(grid, source.size, cfg)
            shown = plain
            if layer is not None:
                colour, alpha = layer
                shown = (plain * (1 - alpha) + 255 * colour * alpha).round().astype(np.uint8)
            image = Image.fromarray(shown)
            caption(image, _caption_text(line, second))
            overlay.write(np.asarray(image))
            if gif is not None and (decoded - 1) % gif_every == 0:
                small = image.resize(
                    gif_size, Image.BILINEAR
                )  # fast octree: the median cut costs 0.1 s a frame
                gif_frames.append(small.quantize(method=Image.Quantize.FASTOCTREE))
    if not decoded:
        raise StgUserError(f"{source.path}: no frame could be decoded")
    if gif is not None and gif_frames:
        gif_frames[0].save(
            gif, save_all=True, append_images=gif_frames[1:], duration=round(1000 / cfg.gif_fps), loop=0
        )
