"""The timeline figure of one grounded video: queries × seconds, each cell the query's score, the detected
segments outlined on their query's row."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from stg_lightning.ground.config import RenderConfig
from stg_lightning.ground.timeline import Timeline


def plot_timeline(
    line: Timeline, out_png: str | Path, title: str, theta: float | None, cfg: RenderConfig
) -> Path:
    """Write the timeline PNG: score per (query, second) (grey = not in the predictions), detected segments
    as outlined boxes with their mean score."""
    q, t = len(line.queries), line.num_seconds
    fig = Figure(figsize=(10, 1.2 + 0.45 * max(q, 1)), layout="constrained")
    ax = fig.subplots()
    cmap = matplotlib.colormaps[cfg.score_cmap].with_extremes(bad="#d0d0d0")
    scores = np.ma.masked_invalid(line.scores.T)
    image = ax.imshow(
        scores, aspect="auto", cmap=cmap, interpolation="nearest", extent=(0, max(t, 1), q - 0.5, -0.5)
    )
    for seg in line.segments():
        ax.add_patch(
            Rectangle(
                (seg.start, seg.query - 0.45), seg.end - seg.start, 0.9,
                fill=False, edgecolor=cfg.segment_colour, linewidth=2,
            )
        )  # fmt: skip
        ax.text(
            seg.start + 0.1, seg.query, f"{seg.score:.2f}",
            va="center", ha="left", fontsize="x-small", color=cfg.segment_colour,
        )  # fmt: skip
    ax.set(yticks=range(q), yticklabels=line.queries, xlim=(0, max(t, 1)), xlabel="time (s)")
    fig.colorbar(image, ax=ax, label="score", pad=0.01)
    rule = "" if theta is None else f", label where the best score ≥ θ = {theta:g}"
    ax.set_title(f"{title}: score per query and second; boxes = detected segments{rule}", fontsize="medium")
    out = Path(out_png)
    fig.savefig(out, dpi=cfg.dpi)
    return out
