"""The viewer page of one grounded video: `viewer.html` (the template beside this module) filled with the
video's Timeline. The page is self-contained (the H.264 copy embedded as a data URL) up to
`render.embed_max_mb`; a larger copy is linked by its file name and must stay next to the page.

The heat grids travel as bytes (each grid min-max scaled to 0..255, as the overlay video draws it) and the
colour maps as 256-entry lookup tables, so the page needs no library and no network.
"""

from __future__ import annotations

import base64
import html
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from stg_lightning.ground.config import RenderConfig
from stg_lightning.ground.render import scaled_heat
from stg_lightning.ground.timeline import Timeline


def _lut(name: str) -> str:
    """A colour map as 256 RGB bytes, base64."""
    table = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3]
    return base64.b64encode((table * 255).round().astype(np.uint8).tobytes()).decode()


def _grid_bytes(grid: np.ndarray) -> str:
    return base64.b64encode((scaled_heat(grid) * 255).round().astype(np.uint8).tobytes()).decode()


def page_data(line: Timeline, duration: float, cfg: RenderConfig, note: str) -> dict[str, Any]:
    """What the page's script reads (`#stg-data`)."""
    shapes = {grid.shape for grid in line.heat.values()}
    if len(shapes) > 1:
        raise ValueError(f"heat grids of one video must share a shape, got {sorted(shapes)}")
    known = line.scores[np.isfinite(line.scores)]
    low, high = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
    return {
        "queries": line.queries,
        "num_seconds": line.num_seconds,
        "duration": duration,
        "labels": line.labels.tolist(),
        "scores": [[None if math.isnan(v) else round(float(v), 4) for v in row] for row in line.scores],
        "score_range": [low, high],
        "segments": [vars(seg) for seg in line.segments()],
        "grid": list(next(iter(shapes))) if shapes else None,
        "heat": {f"{t},{q}": _grid_bytes(grid) for (t, q), grid in line.heat.items()},
        "heat_alpha": round(255 * cfg.heat_alpha) / 255,
        "heat_lut": _lut(cfg.heat_cmap),
        "score_lut": _lut(cfg.score_cmap),
        "note": note,
    }


def write_viewer(
    line: Timeline, web_mp4: Path, duration: float, out_html: Path, title: str, note: str, cfg: RenderConfig
) -> Path:
    """Write the viewer page for `line`, playing `web_mp4` (embedded when small enough, else linked)."""
    if web_mp4.stat().st_size <= cfg.embed_max_mb * 2**20:
        source = "data:video/mp4;base64," + base64.b64encode(web_mp4.read_bytes()).decode()
    else:
        source = web_mp4.relative_to(out_html.parent).as_posix()
    data = json.dumps(page_data(line, duration, cfg, note)).replace("</", "<\\/")  # stays inside <script>
    template = resources.files("stg_lightning.ground").joinpath("viewer.html").read_text(encoding="utf-8")
    page = (
        template.replace("__TITLE__", html.escape(title))
        .replace("__VIDEO_SRC__", source)
        .replace("__DATA__", data)
    )
    out_html.write_text(page, encoding="utf-8")
    return out_html
