"""The plan of one untrimmed video: recipe steps, background, distractor motions and ASR-like narration.

Vocabulary: action classes are a subset of verbs x objects (each object gets about the same number of
verbs, verbs spread evenly); a task (recipe) is an ordered list of distinct classes over 2-3 objects.
A video follows one task: background, step, background, ... with integer-second step boundaries.
While a step runs, non-acting objects on screen perform other verbs (distractors). Narration imitates
HowTo100M ASR: step sentences shifted in time (mostly before the action), unnarrated and repeated steps,
filler sentences, and mentions of objects that are not being acted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stg_lightning.synth.config import SynthConfig
from stg_lightning.synth.scene import Activity

PREFIXES = ("", "now ", "then ", "next ", "lets ", "ok so we ", "you want to ", "and ")
ADVERBS = ("", " gently", " carefully", " a little", " like this", " really well")
FILLERS = (
    "hi everyone welcome back",
    "thanks for watching",
    "this is my favourite recipe",
    "dont forget to subscribe",
    "it smells so good",
    "my kids love this one",
    "see you next time",
    "let me know in the comments",
)
MENTIONS = (
    "grab the {}",
    "you will need a {}",
    "put the {} aside",
    "i also like {}",
    "we are not using the {} today",
)


@dataclass(frozen=True)
class ActionClass:
    verb: str
    obj: str

    @property
    def label(self) -> str:
        """MiningYouTube-style label, e.g. `shake_tomato`."""
        return f"{self.verb}_{self.obj}"

    @property
    def text(self) -> str:
        """GroundingYouTube-style step text, e.g. `shake tomato`."""
        return f"{self.verb} {self.obj}"

    @property
    def sentence(self) -> str:
        """YouCook2-style sentence, e.g. `shake the tomato`."""
        return f"{self.verb} the {self.obj}"


@dataclass(frozen=True)
class Vocabulary:
    objects: tuple[str, ...]
    verbs: tuple[str, ...]
    classes: tuple[ActionClass, ...]
    tasks: tuple[tuple[ActionClass, ...], ...]


def build_vocabulary(cfg: SynthConfig) -> Vocabulary:
    """Classes and tasks, deterministic in `cfg.seed`."""
    rng = np.random.default_rng([cfg.seed, 0])
    objects, verbs = cfg.scene.objects, cfg.scene.verbs
    # Walk objects round-robin, giving each the next verb of a shuffled cycle: balanced verbs per object.
    order = [verbs[i] for i in rng.permutation(len(verbs))]
    chosen: list[ActionClass] = []
    k = 0
    while len(chosen) < cfg.classes:
        obj = objects[len(chosen) % len(objects)]
        verb = order[k % len(order)]
        k += 1
        if ActionClass(verb, obj) not in chosen:
            chosen.append(ActionClass(verb, obj))
    classes = tuple(sorted(chosen, key=lambda c: c.label))
    tasks = []
    for _ in range(cfg.tasks):
        tasks.append(_make_task(cfg, classes, rng))
    return Vocabulary(objects, verbs, classes, tuple(tasks))


def _make_task(
    cfg: SynthConfig, classes: tuple[ActionClass, ...], rng: np.random.Generator
) -> tuple[ActionClass, ...]:
    objs_with_classes = sorted({c.obj for c in classes})
    n_obj = min(int(rng.integers(cfg.task_objects[0], cfg.task_objects[1] + 1)), len(objs_with_classes))
    task_objs = set(rng.choice(objs_with_classes, size=n_obj, replace=False).tolist())
    pool = [c for c in classes if c.obj in task_objs]
    n_steps = min(int(rng.integers(cfg.task_steps[0], cfg.task_steps[1] + 1)), len(pool))
    return tuple(pool[i] for i in rng.permutation(len(pool))[:n_steps])


@dataclass(frozen=True)
class Step:
    cls: ActionClass
    start: int  # seconds; the step covers frames start <= t < end
    end: int


@dataclass(frozen=True)
class Motion:
    """Object `obj` (index into the video's on-screen objects) performs `verb` during [start, end)."""

    obj: int
    verb: str
    start: float
    end: float
    hand: bool


@dataclass(frozen=True)
class Caption:
    start: float
    end: float
    text: str


@dataclass
class VideoPlan:
    video_id: str
    task: int
    duration: int  # seconds
    objects: list[str]  # on screen, index = Motion.obj
    steps: list[Step]
    step_objects: list[int]  # on-screen index of each step's acting object
    motions: list[Motion] = field(default_factory=list)
    wander: list[tuple[float, float]] = field(default_factory=list)  # spans with a wandering hand
    captions: list[Caption] = field(default_factory=list)

    def activities(self, t: float) -> list[Activity]:
        return [Activity(m.obj, m.verb, t - m.start, m.hand) for m in self.motions if m.start <= t < m.end]

    def wandering(self, t: float) -> bool:
        return any(s <= t < e for s, e in self.wander)

    def step_at(self, t: float) -> int | None:
        """Index of the step whose span holds t, else None (background)."""
        return next((i for i, s in enumerate(self.steps) if s.start <= t < s.end), None)


def plan_video(cfg: SynthConfig, vocab: Vocabulary, rng: np.random.Generator, video_id: str) -> VideoPlan:
    """Timeline, on-screen objects, motions and narration of one video."""
    sp, sc = cfg.script, cfg.scene
    task_id = int(rng.integers(len(vocab.tasks)))
    task = list(vocab.tasks[task_id])
    keep = [c for c in task if rng.random() >= sp.step_drop_prob]
    steps_cls = keep if len(keep) >= 2 else task

    task_objs = list(dict.fromkeys(c.obj for c in steps_cls))
    n_screen = max(len(task_objs), int(rng.integers(sc.objects_on_screen[0], sc.objects_on_screen[1] + 1)))
    others = [o for o in vocab.objects if o not in task_objs]
    extra = rng.choice(others, size=min(n_screen - len(task_objs), len(others)), replace=False).tolist()
    objects = [(task_objs + extra)[i] for i in rng.permutation(len(task_objs) + len(extra))]

    t = int(rng.integers(sp.edge_seconds[0], sp.edge_seconds[1] + 1))
    gaps = [(0, t)]
    steps = []
    for i, c in enumerate(steps_cls):
        if i:
            gap = int(rng.integers(sp.gap_seconds[0], sp.gap_seconds[1] + 1))
            gaps.append((t, t + gap))
            t += gap
        length = int(rng.integers(sp.step_seconds[0], sp.step_seconds[1] + 1))
        steps.append(Step(c, t, t + length))
        t += length
    duration = t + int(rng.integers(sp.edge_seconds[0], sp.edge_seconds[1] + 1))
    gaps.append((t, duration))

    plan = VideoPlan(video_id, task_id, duration, objects, steps, [objects.index(s.cls.obj) for s in steps])
    step_pairs = {(s.cls.verb, s.cls.obj) for s in steps}
    for step, acting in zip(steps, plan.step_objects):
        plan.motions.append(Motion(acting, step.cls.verb, step.start, step.end, True))
        for obj in _distractors(cfg, rng, len(objects), acting):
            verb = _other_verb(vocab, rng, objects[obj], exclude={step.cls.verb}, avoid=step_pairs)
            plan.motions.append(
                Motion(obj, verb, step.start, step.end, rng.random() < sc.distractor_hand_prob)
            )
    for start, end in gaps:
        _fill_background(cfg, vocab, rng, plan, start, end, step_pairs)
    plan.captions = _narrate(cfg, vocab, rng, plan)
    return plan


def _distractors(cfg: SynthConfig, rng: np.random.Generator, n_objects: int, acting: int) -> list[int]:
    candidates = [i for i in range(n_objects) if i != acting]
    moving = [i for i in candidates if rng.random() < cfg.scene.distractor_prob]
    missing = min(cfg.scene.min_distractors, len(candidates)) - len(moving)
    if missing > 0:
        rest = [i for i in candidates if i not in moving]
        moving += rng.choice(rest, size=missing, replace=False).tolist()
    return sorted(moving)


def _other_verb(
    vocab: Vocabulary, rng: np.random.Generator, obj: str, exclude: set[str], avoid: set[tuple[str, str]]
) -> str:
    """A verb not in `exclude`, preferring (verb, obj) pairs that are not steps of this video."""
    allowed = [v for v in vocab.verbs if v not in exclude]
    preferred = [v for v in allowed if (v, obj) not in avoid]
    pool = preferred or allowed
    return pool[int(rng.integers(len(pool)))]


def _fill_background(
    cfg: SynthConfig,
    vocab: Vocabulary,
    rng: np.random.Generator,
    plan: VideoPlan,
    start: int,
    end: int,
    step_pairs: set[tuple[str, str]],
) -> None:
    """An action-like motion that is no step of this video, or a wandering hand, or nothing."""
    sp = cfg.script
    if end - start >= 3 and rng.random() < sp.background_motion_prob:
        length = int(rng.integers(2, min(4, end - start - 1) + 1))
        begin = int(rng.integers(start, end - length + 1))
        obj = int(rng.integers(len(plan.objects)))
        verb = _other_verb(vocab, rng, plan.objects[obj], exclude=set(), avoid=step_pairs)
        plan.motions.append(
            Motion(obj, verb, begin, begin + length, rng.random() < cfg.scene.distractor_hand_prob)
        )
    elif end > start and rng.random() < sp.wander_hand_prob:
        plan.wander.append((float(start), float(end)))


def _sentence_span(
    cfg: SynthConfig, rng: np.random.Generator, start: float, duration: int
) -> tuple[float, float]:
    lo, hi = cfg.script.sentence_seconds
    length = min(float(rng.uniform(lo, hi)), float(duration))
    start = float(np.clip(start, 0.0, duration - length))
    return round(start, 2), round(start + length, 2)


def _narrate(cfg: SynthConfig, vocab: Vocabulary, rng: np.random.Generator, plan: VideoPlan) -> list[Caption]:
    sp = cfg.script
    captions = []
    for step in plan.steps:
        if rng.random() < sp.unnarrated_prob:
            continue
        times = 2 if rng.random() < sp.repeat_prob else 1
        for _ in range(times):
            offset = float(np.clip(rng.normal(sp.offset_mean, sp.offset_std), -sp.offset_max, sp.offset_max))
            prefix, adverb = PREFIXES[rng.integers(len(PREFIXES))], ADVERBS[rng.integers(len(ADVERBS))]
            text = f"{prefix}{step.cls.verb} the {step.cls.obj}{adverb}"
            captions.append(Caption(*_sentence_span(cfg, rng, step.start + offset, plan.duration), text))
    minutes = plan.duration / 60.0
    for _ in range(rng.poisson(sp.filler_per_minute * minutes)):
        span = _sentence_span(cfg, rng, rng.uniform(0, plan.duration), plan.duration)
        captions.append(Caption(*span, FILLERS[rng.integers(len(FILLERS))]))
    for _ in range(rng.poisson(sp.mention_per_minute * minutes)):
        span = _sentence_span(cfg, rng, rng.uniform(0, plan.duration), plan.duration)
        # Not acted on: no step touching the sentence (with 2 s slack) acts on the object.
        busy = {s.cls.obj for s in plan.steps if s.start - 2 < span[1] and span[0] < s.end + 2}
        pool = [o for o in vocab.objects if o not in busy]
        if pool:
            template = MENTIONS[rng.integers(len(MENTIONS))]
            captions.append(Caption(*span, template.format(pool[rng.integers(len(pool))])))
    return sorted(captions, key=lambda c: (c.start, c.end, c.text))
