"""Ground your own video: the paper's inference on one video with your queries, and the files to look at.

    from stg_lightning.ground import ground_video
    from stg_lightning.eval.models import load_model
    out = ground_video(load_model("last.ckpt", "cpu"), "my.mp4", ["crack egg", "whisk"], "out/")
    out.viewer_html  # open in a browser

`ground_video` writes into `out_dir`: ``predictions.json`` (the project's predictions schema, every
(second, query) pair's score and heat), ``timeline.png``, ``overlay.mp4`` and ``overlay.gif`` (the detected
query's heat burnt in) and ``viewer.html`` (+ ``video.mp4``, the copy it plays). `view_predictions` builds
the same viewer for every video of any predictions file.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stg_lightning.data.video import DECODE_ERRORS, VideoReader
from stg_lightning.errors import StgUserError
from stg_lightning.eval.frames import find_video
from stg_lightning.eval.inference import predict_video
from stg_lightning.eval.predictions import (
    VideoPredictions,
    read_predictions,
    read_predictions_settings,
    write_predictions,
)
from stg_lightning.eval.readout import InferenceConfig
from stg_lightning.eval.records import VideoRecord
from stg_lightning.ground.config import RenderConfig, ground_inference
from stg_lightning.ground.plot import plot_timeline
from stg_lightning.ground.render import render_videos, source_video
from stg_lightning.ground.timeline import Timeline, timeline
from stg_lightning.ground.viewer import write_viewer
from stg_lightning.model import GroundingModel
from stg_lightning.progress import track

logger = logging.getLogger(__name__)

PREDICTIONS = "predictions.json"


@dataclass(frozen=True)
class GroundOutputs:
    """The files `ground_video` wrote, and the predictions they show."""

    predictions: Path
    timeline_png: Path
    overlay_mp4: Path
    overlay_gif: Path
    viewer_html: Path
    video: VideoPredictions
    timeline: Timeline


def clean_queries(queries: Sequence[str]) -> list[str]:
    """The queries with whitespace collapsed; none, an empty one or a repeated one is an error."""
    cleaned = [" ".join(str(q).split()) for q in queries]
    if not cleaned or not all(cleaned):
        raise StgUserError('give one or more non-empty queries: --query "crack egg" --query "whisk"')
    repeated = sorted({q for q in cleaned if cleaned.count(q) > 1})
    if repeated:
        raise StgUserError(f"query {repeated[0]!r} is given twice; give each query once")
    return cleaned


def video_record(video: Path, queries: list[str]) -> VideoRecord:
    """A record of `video` with no ground truth: its size, length and the queries."""
    if not video.is_file():
        raise StgUserError(f"{video}: video not found")
    try:
        with VideoReader(video) as reader:
            info = reader.info
    except DECODE_ERRORS as err:
        raise StgUserError(f"{video}: not a video PyAV can read ({err})") from None
    return VideoRecord(video.stem, (info.width, info.height), int(info.duration) + 1, [], queries=queries)


def _note(settings: Mapping[str, Any] | None) -> str:
    """One line for the page: where the predictions came from and how they were read out."""
    if not settings:
        return "predictions file without stored settings"
    inference = settings.get("inference", {})
    source = settings.get("checkpoint") or settings.get("zero_shot") or settings.get("predictions") or "?"
    keys = ("temporal", "spatial", "theta", "normalise", "median_window")
    readout = ", ".join(f"{k}={inference[k]}" for k in keys if k in inference)
    return f"model: {source}; readout: {readout}; code {settings.get('code_version', '?')}"


def ground_video(
    model: GroundingModel,
    video: str | Path,
    queries: Sequence[str],
    out_dir: str | Path,
    inference: InferenceConfig | None = None,
    render: RenderConfig | None = None,
    settings: Mapping[str, Any] | None = None,
) -> GroundOutputs:
    """Where and when each query happens in `video` (any length, size and codec PyAV reads), written to
    `out_dir`. `inference` defaults to the paper's readout; every (second, query) pair is kept whatever its
    `grounding` says. `settings` (plain values) go into the predictions file's head."""
    video, out = Path(video), Path(out_dir)
    render = render or RenderConfig()
    names = clean_queries(queries)
    record = video_record(video, names)
    cfg = dataclasses.replace(
        inference or ground_inference(), grounding="all", heatmaps=True, step_scores=False
    )
    out.mkdir(parents=True, exist_ok=True)
    try:
        predictions = predict_video(model, video, record, cfg)
    except DECODE_ERRORS as err:
        raise StgUserError(f"{video}: cannot decode ({err})") from None
    write_predictions({record.video_id: predictions}, out / PREDICTIONS, settings)
    line = timeline(predictions, names)
    pages = _render(line, video, out, record.video_id, _note(settings), cfg.theta, render, overlay=True)
    return GroundOutputs(
        out / PREDICTIONS,
        pages["timeline"],
        pages["overlay"],
        pages["gif"],
        pages["viewer"],
        predictions,
        line,
    )


def _render(
    line: Timeline,
    video: Path,
    out: Path,
    name: str,
    note: str,
    theta: float | None,
    cfg: RenderConfig,
    overlay: bool,
) -> dict[str, Path]:
    """The viewer page `<name>.html` or `viewer.html` (with `overlay`: also the overlay mp4/GIF and the
    timeline PNG) for one video's Timeline."""
    source = source_video(video, line.num_seconds, cfg)
    web = out / ("video.mp4" if overlay else f"{name}.mp4")
    paths = {}
    if overlay:
        paths["overlay"], paths["gif"] = out / "overlay.mp4", out / "overlay.gif"
        paths["timeline"] = plot_timeline(line, out / "timeline.png", name, theta, cfg)
    render_videos(line, source, web, cfg, paths.get("overlay"), paths.get("gif"))
    page = out / ("viewer.html" if overlay else f"{name}.html")
    paths["viewer"] = write_viewer(line, web, source.duration, page, name, note, cfg)
    return paths


@dataclass(frozen=True)
class ViewOutputs:
    """The viewer pages `view_predictions` wrote (video id → page), its index, and the videos it skipped."""

    index_html: Path
    pages: dict[str, Path]
    missing: list[str]


def view_predictions(
    predictions_file: str | Path,
    videos_dir: str | Path,
    out_dir: str | Path,
    video_ids: Sequence[str] | None = None,
    max_videos: int | None = None,
    render: RenderConfig | None = None,
    progress: bool = True,
) -> ViewOutputs:
    """A viewer page per video of a predictions file (any model's, any dataset's; `video_ids` or all, the
    first `max_videos`) and an index page.

    Videos are looked up as `stg eval` does (`<dir>/<id>.mp4`, `<dir>/<id>/<second>.jpg`, ...); a missing
    one is skipped and counted (logged, and listed on the index page); none found is an error."""
    path, out = Path(predictions_file), Path(out_dir)
    render = render or RenderConfig()
    predictions = read_predictions(path)
    settings = read_predictions_settings(path)
    ids = (list(predictions) if video_ids is None else list(video_ids))[:max_videos]
    unknown = [v for v in ids if v not in predictions]
    if unknown:
        raise StgUserError(f"{path}: no predictions for video {unknown[0]!r} (--video_ids)")
    found = {v: find_video(videos_dir, v) for v in ids}
    missing = [v for v, source in found.items() if source is None]
    if len(missing) == len(ids):
        raise StgUserError(
            f"--videos {videos_dir}: none of the {len(ids)} videos of {path} is there "
            f"(expected <video_id>.mp4 or <video_id>/<second>.jpg, e.g. {ids[0] if ids else '?'}.mp4)"
        )
    if missing:
        logger.warning(
            "%d of %d videos not under %s (skipped), e.g. %s", len(missing), len(ids), videos_dir, missing[0]
        )
    queries = (settings or {}).get("queries")
    theta = (settings or {}).get("inference", {}).get("theta")
    out.mkdir(parents=True, exist_ok=True)
    pages = {}
    for vid in track([v for v in ids if found[v] is not None], "stg view", "video", disable=not progress):
        line = timeline(predictions[vid], queries)
        pages[vid] = _render(line, found[vid], out, vid, _note(settings), theta, render, overlay=False)[
            "viewer"
        ]
    return ViewOutputs(write_index(out / "index.html", path, pages, missing), pages, missing)


def write_index(
    out_html: Path, predictions_file: Path, pages: Mapping[str, Path], missing: list[str]
) -> Path:
    """A page linking every video's viewer, and the videos skipped."""
    items = "\n".join(
        f'<li><a href="{html.escape(page.name)}">{html.escape(vid)}</a></li>' for vid, page in pages.items()
    )
    skipped = (
        f"<p>{len(missing)} video(s) without a video file, skipped: {html.escape(', '.join(missing))}</p>"
        if missing
        else ""
    )
    out_html.write_text(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(predictions_file.name)}'
        f"</title></head><body><h1>{html.escape(str(predictions_file))}</h1><ul>\n{items}\n</ul>{skipped}"
        "</body></html>\n",
        encoding="utf-8",
    )
    return out_html
