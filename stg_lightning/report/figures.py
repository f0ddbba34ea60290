"""Report figures as PNGs: training curves, heat-map overlays (like the paper's Fig. 5), step timelines.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, so nothing touches
pyplot's global state or needs a display.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypedDict

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from PIL import Image

from stg_lightning.errors import StgUserError
from stg_lightning.eval.baselines.pointing import pointing_seconds
from stg_lightning.eval.frames import find_video, iter_source_frames
from stg_lightning.eval.metrics.spatial import points_in_boxes, resolve_points
from stg_lightning.eval.predictions import FramePrediction, Predictions, VideoPredictions
from stg_lightning.eval.records import Box, EvalDataset, VideoRecord, normalise_query
from stg_lightning.eval.viterbi import viterbi_align

# Quantities of a Lightning CSVLogger metrics.csv, one panel each: (column name after "train/" or "val/",
# y label, the column of its chance level). Train and val rows both carry ``step`` (validation runs every N
# steps), so x is always the step. The module logs the chance of every batch it scores, so a partial
# held-out batch or a different batch size draws its own level.
CURVE_QUANTITIES = (
    ("loss", "loss", "chance_loss"),
    ("loss_global", "loss", "chance_loss_global"),
    ("loss_local", "loss", "chance_loss_local"),
    ("top1_global", "top-1 retrieval", "chance_top1"),
    ("top1_local", "top-1 retrieval", "chance_top1"),
)
CURVE_STAGES = ("train", "val")
BACKGROUND_COLOUR = "#e6e6e6"


@dataclass
class FigureConfig:
    """Sizes and styles of the report figures."""

    dpi: int = 120
    overlay_side: int = 256  # heat is upsampled to about this many pixels per frame side for display
    heat_alpha: float = 0.5
    heat_cmap: str = "jet"
    step_cmap: str = "tab20"  # one colour per step name in the timelines


class OverlaySample(TypedDict):
    """One panel of :func:`plot_heatmap_comparison`; ``caption`` (optional) goes under the frame."""

    frame: np.ndarray  # uint8 [H, W, 3]
    heat: np.ndarray | None  # [h, w] grid
    point: tuple[float, float] | None  # frame pixels
    gt_box: Box
    query: str
    caption: str


def _save(fig: Figure, out_png: str | Path, dpi: int) -> Path:
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    return out


# ------------------------------------------------------------------------------------------ training curves
def read_metrics_csv(path: str | Path) -> list[dict[str, float]]:
    """Rows of a CSVLogger ``metrics.csv`` with their non-empty numeric cells."""
    path = Path(path)
    if not path.is_file():
        raise StgUserError(
            f"{path}: metrics.csv not found (Lightning CSVLogger writes <log_dir>/metrics.csv)"
        )
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows.append({k: float(v) for k, v in row.items() if k and v not in ("", None)})
    return rows


def _series(rows: list[dict[str, float]], column: str, x: str) -> tuple[list[float], list[float]]:
    points = [(r[x], r[column]) for r in rows if column in r and x in r]
    return [p[0] for p in points], [p[1] for p in points]


class CurveSeries(NamedTuple):
    """One line of a :class:`CurvePanel`: ``label`` is "<run> train" or "<run> val" ("<run> <stage>
    chance", or "chance <stage>" with ``run`` None for a level every run shares)."""

    label: str
    xs: list[float]  # steps
    ys: list[float]
    is_val: bool
    run: str | None


class ReferenceLine(NamedTuple):
    """A level drawn across a :func:`plot_training_curves` panel, for training or validation."""

    label: str
    level: float
    is_val: bool


# Not the runs' colours (C0, C1, ...): a reference line never looks like a run's.
REFERENCE_COLOURS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive")


@dataclass
class CurvePanel:
    """One panel of :func:`plot_training_curves`: a quantity's train and val series of every run, and the
    chance level of each (one "chance <stage>" series where every run's is the same)."""

    title: str  # the column name after the stage prefix, e.g. "loss_global"
    ylabel: str
    series: list[CurveSeries]
    chance: list[CurveSeries]


def _chance_series(runs: Mapping[str, list[dict[str, float]]], column: str) -> list[CurveSeries]:
    """One series per stage and distinct level: "chance <stage>" where every run with the column logged
    the same, else "<runs> <stage> chance" naming the runs that share it (``run`` the first of them)."""
    series = []
    for stage in CURVE_STAGES:
        groups: dict[tuple, list[str]] = {}
        for run, rows in runs.items():
            xs, ys = _series(rows, f"{stage}/{column}", "step")
            if xs:
                groups.setdefault((tuple(xs), tuple(ys)), []).append(run)
        for (xs, ys), names in groups.items():
            if len(groups) == 1:
                series.append(CurveSeries(f"chance {stage}", list(xs), list(ys), stage == "val", None))
            else:
                label = f"{', '.join(names)} {stage} chance"
                series.append(CurveSeries(label, list(xs), list(ys), stage == "val", names[0]))
    return series


def curve_panels(runs: Mapping[str, list[dict[str, float]]]) -> list[CurvePanel]:
    """The panels of :func:`plot_training_curves` for metrics.csv rows per run (quantities with data only).
    A series equal to an earlier run's is labelled "<run> <stage> (= <earlier run>)": drawn under it, it
    would otherwise look missing."""
    panels = []
    for name, ylabel, chance in CURVE_QUANTITIES:
        series: list[CurveSeries] = []
        first: dict[tuple, str] = {}  # (stage, xs, ys) → the first run with them
        for run, rows in runs.items():
            for stage in CURVE_STAGES:
                xs, ys = _series(rows, f"{stage}/{name}", "step")
                if xs:
                    same = first.setdefault((stage, tuple(xs), tuple(ys)), run)
                    label = f"{run} {stage}" + (f" (= {same})" if same != run else "")
                    series.append(CurveSeries(label, xs, ys, stage == "val", run))
        if series:
            stages = {s.is_val for s in series}
            levels = [c for c in _chance_series(runs, chance) if c.is_val in stages]
            panels.append(CurvePanel(name, ylabel, series, levels))
    return panels


def plot_training_curves(
    metrics_csv_paths: Mapping[str, str | Path],
    out_png: str | Path,
    config: FigureConfig | None = None,
    references: Mapping[str, Sequence[ReferenceLine]] | None = None,
) -> Path:
    """Per quantity (losses, top-1 retrieval), each named run's train (line) and val (markers) per step,
    with the chance levels the runs logged (``chance_*`` columns) dashed (train) and dotted (val).

    ``references``: more levels per panel title (e.g. report/nce_oracles.py's oracle scorers' levels),
    dash-dot for training and dotted for validation, the k-th of each stage in the k-th reference colour."""
    cfg = config or FigureConfig()
    runs = {name: read_metrics_csv(path) for name, path in metrics_csv_paths.items()}
    panels = curve_panels(runs)
    if not panels:
        names = ", ".join(f"{stage}/{name}" for name, *_ in CURVE_QUANTITIES for stage in CURVE_STAGES)
        raise StgUserError(
            f"no loss or top-1 columns ({names}) in {', '.join(map(str, metrics_csv_paths.values()))}"
        )
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(5.0 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    colours = {run: f"C{i % 10}" for i, run in enumerate(runs)}
    for ax, panel in zip(axes, panels):
        for s in panel.series:
            style = dict(marker="o", markersize=4, linewidth=1.0) if s.is_val else dict(linewidth=1.2)
            ax.plot(s.xs, s.ys, color=colours[s.run], label=s.label, **style)
        for c in panel.chance:
            ax.plot(
                c.xs,
                c.ys,
                color="grey" if c.run is None else colours[c.run],
                alpha=0.7,
                linestyle=":" if c.is_val else "--",
                linewidth=1.0,
                label=c.label,
            )
        drawn = {False: 0, True: 0}
        for line in (references or {}).get(panel.title, ()):
            colour = REFERENCE_COLOURS[drawn[line.is_val] % len(REFERENCE_COLOURS)]
            drawn[line.is_val] += 1
            style = ":" if line.is_val else "-."
            ax.axhline(line.level, color=colour, linestyle=style, linewidth=1.2, label=line.label)
        ax.set(title=panel.title, xlabel="step", ylabel=panel.ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.suptitle("Training curves")
    return _save(fig, out_png, cfg.dpi)


# ----------------------------------------------------------------------------------------- heat overlays
def plot_heatmap_comparison(
    rows: Mapping[str, Sequence[OverlaySample]], out_png: str | Path, config: FigureConfig | None = None
) -> Path:
    """One row per model (labelled with its name), the same frames in the same columns."""
    lengths = {len(samples) for samples in rows.values()}
    if not rows or 0 in lengths:
        raise ValueError("plot_heatmap_comparison needs at least one model with at least one sample")
    if len(lengths) > 1:
        raise ValueError(
            "plot_heatmap_comparison needs the same number of samples per model, got "
            + ", ".join(f"{name}: {len(samples)}" for name, samples in rows.items())
        )
    cfg = config or FigureConfig()
    cols = lengths.pop()
    fig = Figure(figsize=(3.0 * cols + 0.5, 3.7 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for row_axes, (name, samples) in zip(axes, rows.items()):
        for ax, sample in zip(row_axes, samples):
            _draw_overlay(ax, sample, cfg)
        row_axes[0].set_ylabel(name, fontsize="large", fontweight="bold")
    handles = [
        Patch(facecolor="none", edgecolor="lime", linewidth=2, label="GT box"),
        Line2D(
            [], [], color="white", marker="X", markeredgecolor="black", linestyle="", label="predicted point"
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle("Same frames, each model's heat map (GT box green, predicted point)")
    return _save(fig, out_png, cfg.dpi)


def _draw_overlay(ax: matplotlib.axes.Axes, sample: OverlaySample, cfg: FigureConfig) -> None:
    frame = sample["frame"]
    h, w = frame.shape[:2]
    extent = (0, w, h, 0)  # pixel x covers [x, x + 1]: frame pixels map straight onto data coordinates
    ax.imshow(frame, extent=extent, interpolation="nearest")
    if sample.get("heat") is not None:
        scale = max(1, math.ceil(cfg.overlay_side / max(w, h)))
        heat = upsample_heat(
            torch.as_tensor(np.asarray(sample["heat"], dtype=np.float32)), (w * scale, h * scale)
        )
        ax.imshow(
            heat.numpy(), extent=extent, cmap=cfg.heat_cmap, alpha=cfg.heat_alpha, interpolation="nearest"
        )
    x1, y1, x2, y2 = sample["gt_box"]
    ax.add_patch(Rectangle((x1, y1), x2 - x1 + 1, y2 - y1 + 1, fill=False, edgecolor="lime", linewidth=2))
    point = sample.get("point")
    if point is not None:
        ax.plot(point[0] + 0.5, point[1] + 0.5, "X", color="white", markeredgecolor="black", markersize=10)
    hit = point is not None and bool(points_in_boxes(np.array([point]), np.array([sample["gt_box"]]))[0])
    verdict = "hit" if hit else ("miss" if point is not None else "miss (no point)")
    ax.set_title(f"{sample['query']}\n{verdict}", color="green" if hit else "red", fontsize="medium")
    ax.set(xlim=(0, w), ylim=(h, 0), xticks=[], yticks=[])
    ax.set_xlabel(sample.get("caption", ""), fontsize="small")


def _answer(video: VideoPredictions | None, t: int, query: str) -> FramePrediction | None:
    """The entry the pointing game scores for (t, query): grounding, else a matching ``frames`` entry."""
    if video is None:
        return None
    for p in video.grounding:
        if p.t == t and p.label is not None and normalise_query(p.label) == query:
            return p
    return next((p for p in video.frames if p.t == t and p.label and normalise_query(p.label) == query), None)


def _point(entry: FramePrediction | None, frame_size: tuple[int, int]) -> tuple[float, float] | None:
    """The scored point of an entry (given point, else heat argmax, else box centre)."""
    if entry is None:
        return None

    def row(value: object, width: int) -> np.ndarray:
        return np.full((1, width), math.nan) if value is None else np.array([value], dtype=np.float64)

    heat = None if entry.heat is None else np.asarray(entry.heat, np.float64)[None]
    x, y = resolve_points(1, frame_size, heat, row(entry.point, 2), row(entry.box, 4))[0]
    return None if math.isnan(x) else (float(x), float(y))


def upsample_heat(heat: torch.Tensor, frame_size: tuple[int, int]) -> torch.Tensor:
    """[h, w] grid → [H, W] frame map for display: bilinear, ``align_corners=False`` as the metrics read it."""
    w, h = frame_size
    return F.interpolate(heat[None, None].float(), size=(h, w), mode="bilinear", align_corners=False)[0, 0]


def _frames_at(source: Path, seconds: set[int], frame_size: tuple[int, int]) -> dict[int, np.ndarray]:
    """Frames at whole ``seconds`` (1 fps decode), resized to the record's ``(w, h)`` when they differ."""
    out = {}
    for t, frame in iter_source_frames(source, 1.0):
        s = round(t)
        if s in seconds:
            image = Image.fromarray(frame)
            out[s] = np.asarray(
                image if image.size == frame_size else image.resize(frame_size, Image.BILINEAR)
            )
        if s >= max(seconds):
            break
    return out


def overlay_samples(
    dataset: EvalDataset, predictions: Predictions, videos_dir: str | Path, n: int = 8, seed: int = 0
) -> list[OverlaySample]:
    """``n`` random scored (video, second, GT query) triples with their frame and the model's answer."""
    candidates = [(rec, t, q) for rec in dataset.records for t, q in pointing_seconds(rec)]
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(candidates), size=min(n, len(candidates)), replace=False).tolist())
    by_video: dict[str, list[tuple[VideoRecord, int, str]]] = {}
    for i in picked:
        by_video.setdefault(candidates[i][0].video_id, []).append(candidates[i])
    samples: list[OverlaySample] = []
    for vid, items in by_video.items():
        rec = items[0][0]
        source = find_video(videos_dir, vid)
        if source is None:
            raise StgUserError(f"{videos_dir}: no video for {vid!r} (expected <id>.mp4 or <id>/<second>.jpg)")
        frames = _frames_at(source, {t for _, t, _ in items}, rec.frame_size)
        for _, t, query in items:
            if t not in frames:
                continue  # past the end of the decoded video
            entry = _answer(predictions.get(vid), t, query)
            samples.append(
                OverlaySample(
                    frame=frames[t],
                    heat=None if entry is None else entry.heat,
                    point=_point(entry, rec.frame_size),
                    gt_box=rec.boxes[t],
                    query=query,
                    caption=f"{vid} @ {t} s",
                )
            )
    return samples


# ---------------------------------------------------------------------------------------------- timelines
def predicted_labels(
    record: VideoRecord, video: VideoPredictions | None, aligned: bool = False, background_score: float = 0.5
) -> list[str | None]:
    """Per-second predicted queries over the record's length (None = background).

    ``aligned``: the Viterbi alignment of ``step_scores`` to the ordered steps (what MYT scores), when given.
    """
    n = record.num_frames
    if video is not None and aligned and video.step_scores is not None and len(record.segments):
        path = viterbi_align(video.step_scores[:n], background_score).tolist()
        return [None if i < 0 else record.segments[i].query for i in path] + [None] * (n - len(path))
    labels: list[str | None] = [None] * n
    for p in video.frames if video is not None else []:
        if p.t < n and p.label is not None:
            labels[p.t] = normalise_query(p.label)
    return labels


def _runs(labels: list[str | None]) -> list[tuple[int, int, str | None]]:
    """Maximal runs (start, length, label)."""
    runs: list[tuple[int, int, str | None]] = []
    for t, label in enumerate(labels):
        if runs and runs[-1][2] == label and runs[-1][0] + runs[-1][1] == t:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1, label)
        else:
            runs.append((t, 1, label))
    return runs


def plot_timelines(
    dataset: EvalDataset,
    predictions: Predictions,
    video_ids: Sequence[str],
    out_png: str | Path,
    config: FigureConfig | None = None,
    aligned: bool = False,
) -> Path:
    """Per video, GT steps vs predicted steps as coloured bars over time (grey = background)."""
    cfg = config or FigureConfig()
    records = dataset.by_id()
    unknown = [v for v in video_ids if v not in records]
    if unknown or not video_ids:
        raise StgUserError(
            f"plot_timelines: video ids {unknown or '[]'} not in {dataset.name} ({dataset.report.source})"
        )
    tracks = {
        vid: {
            "GT": [records[vid].labels.get(t) for t in range(records[vid].num_frames)],
            "predicted": predicted_labels(records[vid], predictions.get(vid), aligned),
        }
        for vid in video_ids
    }
    names = sorted(
        {label for rows in tracks.values() for labels in rows.values() for label in labels} - {None}
    )
    cmap = matplotlib.colormaps[cfg.step_cmap]
    colours = {name: cmap(i % cmap.N) for i, name in enumerate(names)}
    fig = Figure(figsize=(10, 1.3 * len(video_ids) + 0.3 * len(names) + 1.0), layout="constrained")
    axes = fig.subplots(len(video_ids), 1, squeeze=False)[:, 0]
    for ax, vid in zip(axes, video_ids):
        for y, labels in enumerate(tracks[vid].values()):
            for start, length, label in _runs(labels):
                colour = BACKGROUND_COLOUR if label is None else colours[label]
                ax.broken_barh([(start, length)], (y - 0.4, 0.8), facecolors=colour)
        ax.set(
            yticks=[0, 1], yticklabels=list(tracks[vid]), xlim=(0, records[vid].num_frames), ylim=(-0.6, 1.6)
        )
        ax.set_title(vid, fontsize="medium", loc="left")
        ax.invert_yaxis()  # GT on top
    axes[-1].set_xlabel("time (s)")
    handles = [Patch(facecolor=BACKGROUND_COLOUR, label="background")]
    handles += [Patch(facecolor=colours[name], label=name) for name in names]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)), frameon=False)
    fig.suptitle("Steps over time: ground truth vs prediction" + (" (Viterbi-aligned)" if aligned else ""))
    return _save(fig, out_png, cfg.dpi)
