"""Settings of `stg ground` and `stg view` (YAML keys and `--key=value` flags, loaded by stg_lightning.config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from stg_lightning.errors import StgUserError
from stg_lightning.eval.readout import InferenceConfig


@dataclass
class RenderConfig:
    """How the outputs look: the overlay video and GIF, the viewer's copy of the video, the timeline figure."""

    max_side: int = 640  # long side of the overlay video and the viewer's copy (never upscaled)
    fps: float = 10.0  # frames per second of both (at most the source's; frame folders have 1)
    heat_alpha: float = 0.6  # opacity where the heat is at its maximum (it fades to 0 with the heat)
    heat_cmap: str = "jet"
    gif_frames: int = 40  # the GIF: this many frames spread evenly over the video
    gif_side: int = 320
    gif_fps: float = 4.0
    x264_preset: str = "veryfast"  # H.264 encoder speed/size trade-off of both videos
    x264_crf: int = 23  # H.264 quality (lower = better, larger)
    embed_max_mb: float = 100.0  # the viewer embeds its video copy up to this size, else links the file
    score_cmap: str = "viridis"  # timeline figure
    segment_colour: str = "red"
    dpi: int = 120

    def __post_init__(self) -> None:
        checks = [
            ("max_side", self.max_side >= 16, "an integer >= 16"),
            ("fps", self.fps > 0, "a positive number"),
            ("heat_alpha", 0 <= self.heat_alpha <= 1, "in [0, 1]"),
            ("gif_frames", self.gif_frames >= 1, "an integer >= 1"),
            ("gif_side", self.gif_side >= 16, "an integer >= 16"),
            ("gif_fps", self.gif_fps > 0, "a positive number"),
            ("embed_max_mb", self.embed_max_mb >= 0, "a number >= 0"),
        ]
        for key, ok, what in checks:
            if not ok:
                raise StgUserError(f"render.{key} must be {what}, got {getattr(self, key)!r}")


def ground_inference() -> InferenceConfig:
    """Inference for one user video: every (second, query) pair's score and heat is kept (the timeline and
    the viewer show any query at any second); no MiningYouTube step scores."""
    return InferenceConfig(grounding="all", heatmaps=True, step_scores=False)


@dataclass
class GroundConfig:
    """`stg ground` settings besides the video, queries and checkpoint (flags of the run)."""

    out: str | None = None  # output folder; None = runs/ground/<video name>
    inference: InferenceConfig = field(default_factory=ground_inference)
    render: RenderConfig = field(default_factory=RenderConfig)


@dataclass
class ViewConfig:
    """`stg view` settings besides the predictions file."""

    videos: str | None = None  # folder of <video_id>.mp4 or <video_id>/<second>.jpg
    out: str | None = None  # None = <predictions file stem>_viewer next to the file
    video_ids: list[str] | None = None  # only these videos (default: all)
    max_videos: int | None = None  # the first N videos only
    render: RenderConfig = field(default_factory=RenderConfig)
