"""Configuration of the synthetic narrated benchmark: every difficulty knob and the presets.

Loaded by `stg_lightning.config` (`stg synth --preset paper --config FILE --scene.frame_size=128`).

Spatial sizes are fractions of the frame side so a preset scales from 64 px to 224 px unchanged.
Clip shapes of the training pipeline (U candidate frames, T selected frames, sampling fps) belong to the
data/model configs; the generator only fixes what is in the files (frame size, video fps, lengths).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from stg_lightning.errors import StgUserError
from stg_lightning.synth.vocabulary import OBJECT_CATALOGUE, VERBS

Range = tuple[float, float]
IntRange = tuple[int, int]


@dataclass(frozen=True)
class SceneConfig:
    """What is drawn: objects, hands, distractors, drift (see `scene.py`)."""

    frame_size: int = 64  # square frames, pixels (even, for yuv420p)
    objects: tuple[str, ...] = ("tomato", "lemon", "cucumber", "egg", "onion", "blueberry")
    verbs: tuple[str, ...] = ("shake", "spin", "split", "press", "pour")
    objects_on_screen: IntRange = (2, 4)  # at most 4: one object per quadrant
    object_size: Range = (0.2, 0.3)  # object diameter / frame side (12.8-19.2 px at 64 px)
    hand_size: float = 0.12  # hand width / frame side
    position_jitter: float = 0.05  # random offset of an object from its quadrant centre / frame side
    motion_amplitude: float = 1.0  # scales every verb's displacement / deformation
    distractor_prob: float = 1.0  # chance that each non-acting object moves (another verb) during a step
    min_distractors: int = 1  # moving non-acting objects per step, at least (when available)
    distractor_hand_prob: float = 1.0  # chance that a moving distractor has its own hand (1 = hand is no cue)
    camera_drift: float = 0.04  # amplitude of the slow camera shift / frame side
    brightness_drift: float = 0.1  # amplitude of the slow brightness change (relative)
    texture: float = 0.06  # amplitude of the static table texture (relative)


@dataclass(frozen=True)
class ScriptConfig:
    """How a video unfolds in time and how it is narrated (see `script.py`); times in seconds."""

    step_drop_prob: float = 0.1  # chance to skip each step of the task (at least 2 stay)
    step_seconds: IntRange = (4, 8)
    gap_seconds: IntRange = (2, 6)  # background between steps (>= 1 so GT runs stay separate)
    edge_seconds: IntRange = (2, 5)  # background before the first and after the last step
    background_motion_prob: float = 0.3  # chance that a background gap holds an action-like motion
    wander_hand_prob: float = 0.5  # chance that a quiet background gap shows a wandering hand
    unnarrated_prob: float = 0.2  # chance that a step is never narrated
    repeat_prob: float = 0.2  # chance that a narrated step is narrated a second time
    offset_mean: float = -1.5  # narration start - step start (negative: narrated before the action)
    offset_std: float = 2.0
    offset_max: float = 5.0  # |offset| is clipped to this
    sentence_seconds: Range = (1.0, 3.0)
    filler_per_minute: float = 4.0  # "thanks for watching", ...
    mention_per_minute: float = 3.0  # "grab the <object>" for an object that is not acted on


@dataclass(frozen=True)
class SynthConfig:
    """The whole benchmark: vocabulary, split sizes, video encoding, scene and script knobs."""

    seed: int = 0
    fps: int = 5  # frame rate of the mp4 files; GT seconds are frames at t = k s exactly
    train_videos: int = 400
    eval_videos: int = 40  # per evaluation split (gyt, myt, yc_inter)
    classes: int = 18  # action classes: a subset of verbs x objects
    tasks: int = 8  # recipes: ordered step lists
    task_steps: IntRange = (3, 5)
    task_objects: IntRange = (2, 3)  # distinct objects a recipe acts on
    crf: int = 18  # x264 quality (lower = closer to the drawn colours)
    pix_fmt: str = "yuv420p"
    scene: SceneConfig = field(default_factory=SceneConfig)
    script: ScriptConfig = field(default_factory=ScriptConfig)

    def __post_init__(self) -> None:
        _validate(self)


def _validate(cfg: SynthConfig) -> None:
    sc, sp = cfg.scene, cfg.script
    checks = [
        (cfg.fps >= 1, "fps must be a positive integer"),
        (sc.frame_size >= 32 and sc.frame_size % 2 == 0, "scene.frame_size must be an even number >= 32"),
        (
            set(sc.objects) <= set(OBJECT_CATALOGUE),
            f"scene.objects must come from {sorted(OBJECT_CATALOGUE)}",
        ),
        (set(sc.verbs) <= set(VERBS), f"scene.verbs must come from {sorted(VERBS)}"),
        (len(set(sc.verbs)) >= 2, "scene.verbs needs at least 2 verbs (distractors use another verb)"),
        (
            2 <= sc.objects_on_screen[0] <= sc.objects_on_screen[1] <= 4,
            "scene.objects_on_screen: 2 <= lo <= hi <= 4",
        ),
        (
            2 <= cfg.task_objects[0] <= cfg.task_objects[1] <= min(sc.objects_on_screen[1], len(sc.objects)),
            "task_objects: 2 <= lo <= hi <= min(scene.objects_on_screen[1], len(scene.objects))",
        ),
        (0 < cfg.classes <= len(sc.objects) * len(sc.verbs), "classes must be in 1..len(objects)*len(verbs)"),
        (2 <= cfg.task_steps[0] <= cfg.task_steps[1], "task_steps: 2 <= lo <= hi"),
        (sp.gap_seconds[0] >= 1, "script.gap_seconds[0] must be >= 1 (consecutive steps must not touch)"),
        (sp.step_seconds[0] >= 1 and sp.edge_seconds[0] >= 0, "script.step_seconds >= 1, edge_seconds >= 0"),
        (cfg.train_videos >= 0 and cfg.eval_videos >= 0, "train_videos and eval_videos must be >= 0"),
    ]
    ranges = {"scene.object_size": sc.object_size, "script.sentence_seconds": sp.sentence_seconds}
    ranges |= {f"script.{n}": getattr(sp, n) for n in ("step_seconds", "gap_seconds", "edge_seconds")}
    checks += [
        (lo <= hi, f"{name}: lower bound must not exceed upper bound") for name, (lo, hi) in ranges.items()
    ]
    for ok, message in checks:
        if not ok:
            raise StgUserError(f"synth config: {message}")


PRESETS: dict[str, SynthConfig] = {
    "demo": SynthConfig(),
    "paper": SynthConfig(
        fps=10,
        train_videos=2000,
        eval_videos=100,
        classes=30,
        tasks=12,
        scene=SceneConfig(
            frame_size=224,
            objects=("tomato", "lemon", "cucumber", "egg", "onion", "blueberry", "carrot", "mint"),
            verbs=("shake", "spin", "split", "press", "pour", "roll", "flip", "stir"),
        ),
        script=ScriptConfig(step_seconds=(5, 12), gap_seconds=(3, 10), edge_seconds=(3, 8)),
    ),
}


def config_to_dict(cfg: SynthConfig) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) for YAML/JSON."""

    def plain(value: Any) -> Any:
        return [plain(v) for v in value] if isinstance(value, tuple | list) else value

    return {k: (config_to_dict(v) if dataclasses.is_dataclass(v) else plain(v)) for k, v in vars(cfg).items()}
