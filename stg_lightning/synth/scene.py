"""Drawing one synthetic frame in pure numpy: table, objects, verb motions, hands, camera/brightness drift.

A scene holds 2-4 objects, one per quadrant of the frame. Each verb moves its object with a distinct
pattern over time *and* leaves a per-frame signature (deformation + where the hand holds the object),
since an image backbone sees frames one at a time. A hand is drawn beside every object that performs a
motion -- the acting object and, by default, each moving distractor -- so neither motion nor the hand
tells which object the narration is about; only the object's look and the verb's pattern do.
Objects carry a dark marker so that rotations of symmetric shapes are visible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stg_lightning.synth.config import SceneConfig
from stg_lightning.synth.vocabulary import OBJECT_CATALOGUE, Colour, ObjectSpec

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels, inclusive

HAND_COLOUR: Colour = (232, 176, 136)
TABLE_COLOUR: Colour = (100, 90, 80)
MARKER_SHADE = 0.4  # marker colour = object colour * shade
QUADRANT_CENTRE = (0.27, 0.73)  # x or y of a quadrant centre / frame side


def _polar(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.hypot(u, v), np.arctan2(v, u)


# Shapes in unit coordinates (u right, v down, radius 1).
SHAPES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": lambda u, v: u * u + v * v <= 1.0,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.82,
    "diamond": lambda u, v: np.abs(u) + np.abs(v) <= 1.0,
    "hexagon": lambda u, v: (np.abs(v) <= 0.87) & (np.abs(u) + np.abs(v) / np.sqrt(3.0) <= 1.0),
    "triangle": lambda u, v: (v <= 0.75) & (np.abs(u) <= (v + 0.95) * 0.55),
    "star": lambda u, v: _polar(u, v)[0] <= 0.62 + 0.38 * np.cos(5 * (_polar(u, v)[1] + np.pi / 2)),
    "cross": lambda u, v: (
        ((np.abs(u) <= 0.38) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= 0.38) & (np.abs(u) <= 0.95))
    ),
    "ring": lambda u, v: (u * u + v * v <= 1.0) & (u * u + v * v >= 0.2),
}


@dataclass(frozen=True)
class Pose:
    """A verb's effect on its object at one instant, in units of the object radius (x right, y down)."""

    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0  # radians, clockwise on screen
    sx: float = 1.0  # horizontal scale (negative = mirrored)
    sy: float = 1.0
    gap: float = 0.0  # halves pushed apart by this much each
    pour: bool = False  # particles falling from the top edge
    hand: tuple[float, float] = (1.4, 0.0)  # hand centre relative to the object centre


def _wave(tau: float, hz: float, phase: float = 0.0) -> float:
    return float(np.sin(2 * np.pi * hz * tau + phase))


# Frequencies avoid integers so that 1-fps sampling does not freeze a motion.
def _shake(tau: float, side: int, amp: float) -> Pose:
    dx, dy = 0.2 * amp * _wave(tau, 2.7), 0.14 * amp * _wave(tau, 1.6, 1.0)
    return Pose(dx=dx, dy=dy, angle=0.15 * amp * _wave(tau, 2.3), hand=(side * 1.4 + dx, 0.2 + dy))


def _spin(tau: float, side: int, amp: float) -> Pose:
    return Pose(angle=0.6 + 2 * np.pi * 0.43 * amp * tau, hand=(0.2 * _wave(tau, 0.43), 1.35))


def _split(tau: float, side: int, amp: float) -> Pose:
    gap = amp * (0.25 + 0.12 * _wave(tau, 1.4))
    return Pose(gap=gap, hand=(side * (1.45 + gap), 0.0))


def _press(tau: float, side: int, amp: float) -> Pose:
    sy = max(0.3, 1.0 - amp * (0.25 + 0.15 * _wave(tau, 1.3)))
    dy = 1.0 - sy  # the bottom edge stays on the table
    return Pose(dy=dy, sx=1.0 + 0.5 * (1.0 - sy), sy=sy, hand=(0.0, dy - sy - 0.2))


def _pour(tau: float, side: int, amp: float) -> Pose:
    w = _wave(tau, 1.3)
    angle = -side * amp * (0.9 + 0.45 * w)  # tilt towards the frame centre
    return Pose(angle=angle, pour=True, hand=(side * 1.35, -0.5 - 0.5 * amp * w))


def _roll(tau: float, side: int, amp: float) -> Pose:
    dx = 0.35 * amp * _wave(tau, 0.55)
    return Pose(dx=dx, angle=dx, hand=(dx + side * 1.4, -0.7))


def _flip(tau: float, side: int, amp: float) -> Pose:
    c = float(np.cos(2 * np.pi * 0.45 * amp * tau + 0.8))
    return Pose(sx=float(np.copysign(max(abs(c), 0.2), c)), hand=(side * 1.4, 0.7))


def _stir(tau: float, side: int, amp: float) -> Pose:
    a = 2 * np.pi * 0.8 * tau
    return Pose(hand=(0.45 * amp * np.cos(a), 0.45 * amp * np.sin(a)))


VERB_MOTIONS: dict[str, Callable[[float, int, float], Pose]] = {
    "shake": _shake,
    "spin": _spin,
    "split": _split,
    "press": _press,
    "pour": _pour,
    "roll": _roll,
    "flip": _flip,
    "stir": _stir,
}


@dataclass(frozen=True)
class Activity:
    """Object `obj` (index into the scene's objects) performs `verb`, `tau` seconds after it started."""

    obj: int
    verb: str
    tau: float
    hand: bool = True


@dataclass(frozen=True)
class Placement:
    spec: ObjectSpec
    cx: float  # rest centre, frame pixels (before camera drift)
    cy: float
    radius: float
    side: int  # +1 if the object sits in the right half: its hand goes on the outer side


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


class Canvas:
    """A float RGB frame that records the pixel box of what is painted onto it."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.size = image.shape[0]

    def window(self, cx: float, cy: float, half: float) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Pixel-centre coordinates (relative to cx, cy) of the frame part within `half` of the point."""
        x0, x1 = max(0, int(cx - half)), min(self.size, int(np.ceil(cx + half)) + 1)
        y0, y1 = max(0, int(cy - half)), min(self.size, int(np.ceil(cy + half)) + 1)
        if x0 >= x1 or y0 >= y1:
            return None
        xs = np.arange(x0, x1) + 0.5 - cx
        ys = np.arange(y0, y1) + 0.5 - cy
        return slice(y0, y1), slice(x0, x1), xs[None, :], ys[:, None]

    def paint(self, rows: slice, cols: slice, mask: np.ndarray, colour: Colour | np.ndarray) -> Box | None:
        if not mask.any():
            return None
        self.image[rows, cols][mask] = colour
        ys, xs = np.nonzero(mask)
        return (
            cols.start + int(xs.min()),
            rows.start + int(ys.min()),
            cols.start + int(xs.max()),
            rows.start + int(ys.max()),
        )


class Scene:
    """The fixed layout and drift of one video; `render(t, activities)` draws the frame at time t."""

    def __init__(self, cfg: SceneConfig, objects: Sequence[str], rng: np.random.Generator) -> None:
        self.cfg = cfg
        size = cfg.frame_size
        quadrants = rng.permutation(4)[: len(objects)]
        self.placements = []
        for name, q in zip(objects, quadrants):
            cx = (QUADRANT_CENTRE[q % 2] + rng.uniform(-1, 1) * cfg.position_jitter) * size
            cy = (QUADRANT_CENTRE[q // 2] + rng.uniform(-1, 1) * cfg.position_jitter) * size
            radius = rng.uniform(*cfg.object_size) * size / 2
            self.placements.append(Placement(OBJECT_CATALOGUE[name], cx, cy, radius, 1 if q % 2 else -1))
        self.drift_period = rng.uniform(15.0, 40.0, size=3)
        self.drift_phase = rng.uniform(0, 2 * np.pi, size=5)
        self.margin = int(np.ceil(cfg.camera_drift * size)) + 1
        self.table = self._table(rng, size + 2 * self.margin)

    def _table(self, rng: np.random.Generator, side: int) -> np.ndarray:
        cells = max(2, side // 8)
        coarse = rng.normal(size=(cells, cells))
        block = -(-side // cells)
        smooth = np.repeat(np.repeat(coarse, block, 0), block, 1)[:side, :side]
        shade = 1.0 + self.cfg.texture * (0.7 * smooth + 0.3 * rng.normal(size=(side, side)))
        return shade[..., None] * np.asarray(TABLE_COLOUR, np.float32)

    def camera(self, t: float) -> tuple[float, float]:
        amp = self.cfg.camera_drift * self.cfg.frame_size
        p, ph = self.drift_period, self.drift_phase
        return amp * np.sin(2 * np.pi * t / p[0] + ph[0]), amp * np.sin(2 * np.pi * t / p[1] + ph[1])

    def brightness(self, t: float) -> float:
        return 1.0 + self.cfg.brightness_drift * np.sin(
            2 * np.pi * t / self.drift_period[2] + self.drift_phase[2]
        )

    def render(
        self, t: float, activities: Sequence[Activity], wander_hand: bool = False
    ) -> tuple[np.ndarray, dict[int, Box]]:
        """uint8 frame [H, W, 3] and, per active object index, the box of the object plus its hand."""
        size, m = self.cfg.frame_size, self.margin
        ox, oy = self.camera(t)
        ix, iy = round(ox), round(oy)
        canvas = Canvas(self.table[m - iy : m - iy + size, m - ix : m - ix + size].copy())
        active = {a.obj: a for a in activities}
        boxes: dict[int, Box] = {}
        hands = []
        for i, place in enumerate(self.placements):
            act = active.get(i)
            pose = VERB_MOTIONS[act.verb](act.tau, place.side, self.cfg.motion_amplitude) if act else Pose()
            cx, cy = place.cx + ox + pose.dx * place.radius, place.cy + oy + pose.dy * place.radius
            box = self._draw_object(canvas, place, pose, cx, cy, act.tau if act else 0.0)
            if act and act.hand:
                hands.append(
                    (
                        i,
                        cx - pose.dx * place.radius + pose.hand[0] * place.radius,
                        cy - pose.dy * place.radius + pose.hand[1] * place.radius,
                    )
                )
            if act:
                boxes[i] = box
        for i, hx, hy in hands:  # hands go over every object
            boxes[i] = _union(boxes[i], self._draw_hand(canvas, hx, hy))
        if wander_hand:
            self._draw_hand(canvas, *self._wander(t, ox, oy))
        frame = canvas.image * self.brightness(t)
        return np.clip(frame, 0, 255).astype(np.uint8), boxes

    def object_boxes(self, t: float, moving: dict[int, Box]) -> list[Box]:
        """Box of every object at time ``t`` in object order, given ``render(t, ...)``'s boxes of moving ones.

        A moving object's box is the one measured on the drawn frame (object + hand, like the GT box); an
        idle object's is its rest square (placement ± radius, shifted by the camera), which has the same
        centre.
        """
        ox, oy = self.camera(t)
        boxes = []
        for i, place in enumerate(self.placements):
            box = moving.get(i)
            if box is None:
                cx, cy, r = place.cx + ox, place.cy + oy, place.radius
                box = (math.floor(cx - r), math.floor(cy - r), math.ceil(cx + r) - 1, math.ceil(cy + r) - 1)
            boxes.append(box)
        return boxes

    def _wander(self, t: float, ox: float, oy: float) -> tuple[float, float]:
        size, ph = self.cfg.frame_size, self.drift_phase
        return (
            size * (0.5 + 0.35 * np.sin(2 * np.pi * t / 7.3 + ph[3])) + ox,
            size * (0.5 + 0.3 * np.sin(2 * np.pi * t / 5.1 + ph[4])) + oy,
        )

    def _draw_object(
        self, canvas: Canvas, place: Placement, pose: Pose, cx: float, cy: float, tau: float
    ) -> Box | None:
        r = place.radius
        half = r * (1.5 * max(abs(pose.sx), pose.sy) + pose.gap) + 1
        win = canvas.window(cx, cy, half)
        if win is None:
            return None
        rows, cols, xs, ys = win
        cos, sin = np.cos(pose.angle), np.sin(pose.angle)
        shape = SHAPES[place.spec.shape]

        def unit(shift: float) -> tuple[np.ndarray, np.ndarray]:
            x = xs - shift * r
            return (x * cos + ys * sin) / (pose.sx * r), (-x * sin + ys * cos) / (pose.sy * r)

        if pose.gap > 0:  # left half moved left, right half moved right
            (ul, vl), (ur, vr) = unit(-pose.gap), unit(pose.gap)
            body = (shape(ul, vl) & (ul < 0)) | (shape(ur, vr) & (ur >= 0))
            marker = _marker(ur, vr) & (ur >= 0)
        else:
            u, v = unit(0.0)
            body, marker = shape(u, v), _marker(u, v)
        colour = np.asarray(place.spec.colour, np.float32)
        box = canvas.paint(rows, cols, body, colour)
        canvas.paint(rows, cols, body & marker, colour * MARKER_SHADE)
        if pose.pour:
            box = _union(box, self._draw_particles(canvas, cx, cy, r, pose.angle, tau, colour))
        return box

    def _draw_particles(
        self, canvas: Canvas, cx: float, cy: float, r: float, angle: float, tau: float, colour: np.ndarray
    ) -> Box | None:
        spout_x, spout_y = cx + 0.95 * r * np.sin(angle), cy - 0.95 * r * np.cos(angle)
        half = max(0.6, 0.12 * r)
        box = None
        for j in range(4):
            fall = (tau * 1.7 + j / 4) % 1.0
            px, py = spout_x + 0.3 * r * fall * np.sign(np.sin(angle)), spout_y + 2.0 * r * fall
            win = canvas.window(px, py, half + 1)
            if win is not None:
                rows, cols, xs, ys = win
                box = _union(
                    box, canvas.paint(rows, cols, (np.abs(xs) <= half) & (np.abs(ys) <= half), colour)
                )
        return box

    def _draw_hand(self, canvas: Canvas, hx: float, hy: float) -> Box | None:
        a = self.cfg.hand_size * self.cfg.frame_size / 2
        b = 1.3 * a
        win = canvas.window(hx, hy, b + 1)
        if win is None:
            return None
        rows, cols, xs, ys = win
        return canvas.paint(
            rows, cols, (xs / a) ** 2 + (ys / b) ** 2 <= 1.0, np.asarray(HAND_COLOUR, np.float32)
        )


def _marker(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u - 0.4) ** 2 + (v + 0.3) ** 2 <= 0.28**2
