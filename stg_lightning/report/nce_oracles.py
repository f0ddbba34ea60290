"""Where the narration NCE of a scorer with a named skill sits on a synthetic benchmark: oracle levels.

A training clip pairs one ASR sentence with the frames around it, cut as `stg prepare` cuts them
(`clip_window`, `sample_times`). Sentences are of three kinds: steps ("then stir the egg gently"), mentions
of an object that is not acted on ("grab the lemon") and fillers ("thanks for watching"). An oracle scores
every (clip, sentence) pair from what the videos' plans say; its level is the mean symmetric NCE (margin 0)
of those scores times a scale, over random batches of the training clips, at the scale of a grid that
gives the lowest mean on those batches. The levels say how far below chance the loss of a model with that
skill, and no other, would sit (docs/benchmark.md §10). They are no bounds: a scorer can combine cues (a
mention names an object that is *not* acted on) or memorise training clips and go lower.

Oracles, each a 0/1 score of a clip against a sentence (a filler names nothing: 0 everywhere):

- ``object_on_screen``: the object the sentence names is in the clip's video (a perfect object detector);
- ``object_acted``: it moves during the clip's frames;
- ``action_acted``: the sentence's verb acts on that object during the clip's frames (a perfect action
  detector, which still cannot tell a repeated step from another video's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from stg_lightning.data.batch import ClipBatch
from stg_lightning.data.captions import clip_window
from stg_lightning.data.video import sample_times
from stg_lightning.errors import StgUserError
from stg_lightning.losses import nce_loss, uniform_nce
from stg_lightning.model import PairScores
from stg_lightning.synth.config import SynthConfig
from stg_lightning.synth.script import VideoPlan, Vocabulary, build_vocabulary
from stg_lightning.synth.writer import plan_and_scene

ORACLES = ("object_on_screen", "object_acted", "action_acted")


@dataclass(frozen=True)
class OracleConfig:
    """Random batches per level, their seed, and the scale grid (log-spaced from `min_scale` to
    `max_scale`, `scales` values) the best scale is chosen from."""

    batches: int = 400
    seed: int = 0
    min_scale: float = 0.1
    max_scale: float = 100.0
    scales: int = 21


@dataclass(frozen=True)
class OracleClip:
    """What the plan says about one training clip: objects on screen in its video, the (verb, object)
    pairs moving during its frames, and the verb and object its sentence names (None: not named)."""

    on_screen: frozenset[str]
    acted: frozenset[tuple[str, str]]
    verb: str | None
    obj: str | None


def named_action(text: str, vocab: Vocabulary) -> tuple[str | None, str | None]:
    """(verb, object) a narration sentence names: the first vocabulary object, and the vocabulary verb
    of "<verb> the <object>" before it (steps only; mentions and fillers name no verb)."""
    words = text.split()
    for k, word in enumerate(words):
        if word in vocab.objects:
            verb = words[k - 2] if k >= 2 and words[k - 1] == "the" else None
            return (verb if verb in vocab.verbs else None), word
    return None, None


class TrainPlans:
    """The plans of a synthetic benchmark's train split, by video id: what an oracle knows of a clip."""

    def __init__(self, synth: SynthConfig) -> None:
        self.vocab = build_vocabulary(synth)
        plans = (plan_and_scene(synth, self.vocab, "train", i)[0] for i in range(synth.train_videos))
        self.plans: dict[str, VideoPlan] = {plan.video_id: plan for plan in plans}

    def clip(self, video_id: str, times: Sequence[float], text: str) -> OracleClip:
        """The clip of `video_id` with frames at `times` (s) and sentence `text`."""
        plan = self.plans.get(video_id)
        if plan is None:
            raise StgUserError(
                f"nce_oracles: video {video_id!r} is not in the benchmark's train split "
                f"({len(self.plans)} videos); were the shards cut from another benchmark?"
            )
        acted = frozenset(
            (m.verb, plan.objects[m.obj]) for m in plan.motions if any(m.start <= t < m.end for t in times)
        )
        return OracleClip(frozenset(plan.objects), acted, *named_action(text, self.vocab))

    def training_clips(self, fps: float, num_frames: int, min_time: float) -> list[OracleClip]:
        """Every narrated clip with frames in its video, cut with `stg prepare`'s `fps`, `num_frames` (U)
        and `min_time`, in caption order."""
        clips = []
        for plan in self.plans.values():
            for caption in plan.captions:
                window = clip_window(caption.start, caption.end, min_time)
                times = [t for t in sample_times(*window, fps, num_frames) if t < plan.duration]
                if times:
                    clips.append(self.clip(plan.video_id, times, caption.text))
        return clips

    def batch_clips(self, batch: ClipBatch) -> list[OracleClip]:
        """The clips of a loaded batch (its real frames' timestamps)."""
        return [
            self.clip(video_id, batch.timestamps[i][batch.frame_mask[i]].tolist(), text)
            for i, (video_id, text) in enumerate(zip(batch.video_id, batch.text))
        ]


def _object_on_screen(clip: OracleClip, sentence: OracleClip) -> float:
    return float(sentence.obj in clip.on_screen)


def _object_acted(clip: OracleClip, sentence: OracleClip) -> float:
    return float(any(obj == sentence.obj for _, obj in clip.acted))


def _action_acted(clip: OracleClip, sentence: OracleClip) -> float:
    return float((sentence.verb, sentence.obj) in clip.acted)


SCORERS: dict[str, Callable[[OracleClip, OracleClip], float]] = dict(
    zip(ORACLES, (_object_on_screen, _object_acted, _action_acted))
)


def oracle_scores(clips: Sequence[OracleClip], oracle: str) -> np.ndarray:
    """[N, N] scores of clip i (row) against the sentence of clip j (column); filler columns are 0."""
    scorer = SCORERS[oracle]
    # Columns depend only on what the sentence names: score each distinct (verb, object) once per clip.
    named = sorted({(c.verb or "", c.obj or "") for c in clips})
    slot = {key: k for k, key in enumerate(named)}
    probes = [OracleClip(frozenset(), frozenset(), verb or None, obj or None) for verb, obj in named]
    by_name = np.array(
        [[scorer(clip, probe) if probe.obj else 0.0 for probe in probes] for clip in clips], np.float32
    )
    return by_name[:, [slot[(c.verb or "", c.obj or "")] for c in clips]]


def random_batches(n: int, batch_size: int, cfg: OracleConfig) -> list[np.ndarray]:
    """`cfg.batches` batches of `batch_size` of n clips, each drawn without replacement."""
    if batch_size > n:
        raise ValueError(f"random_batches: batch size {batch_size} exceeds the {n} clips")
    rng = np.random.default_rng(cfg.seed)
    return [rng.choice(n, size=batch_size, replace=False) for _ in range(cfg.batches)]


def oracle_level(scores: np.ndarray, batches: Sequence[np.ndarray], cfg: OracleConfig) -> float:
    """The lowest, over the scale grid, mean symmetric NCE of `scores` (`oracle_scores`) on `batches`
    (index arrays), weighted by batch size as an epoch's mean is; ln-count chance for a constant scorer."""
    scales = torch.from_numpy(np.geomspace(cfg.min_scale, cfg.max_scale, cfg.scales))
    totals = torch.zeros(len(scales), dtype=torch.float64)
    for rows in batches:
        batch = torch.from_numpy(scores[np.ix_(rows, rows)]).double()
        totals += len(rows) * torch.stack([nce_loss(scale * batch) for scale in scales])
    return float(totals.min() / sum(len(rows) for rows in batches))


def oracle_levels(
    clips: Sequence[OracleClip], batches: Sequence[np.ndarray], cfg: OracleConfig
) -> dict[str, float]:
    """Each oracle's `oracle_level` on `batches` of `clips`, and ``chance`` (a constant scorer's
    `uniform_nce` per batch, weighted alike: 2·ln B for a batch of B)."""
    sizes = [len(rows) for rows in batches]
    constant = {n: uniform_nce(PairScores(torch.zeros(n, n), torch.zeros(n, n))).item() for n in set(sizes)}
    chance = sum(n * constant[n] for n in sizes) / sum(sizes)
    levels = {oracle: oracle_level(oracle_scores(clips, oracle), batches, cfg) for oracle in ORACLES}
    return {"chance": chance, **levels}


def stack_batches(batches: Sequence[Sequence[OracleClip]]) -> tuple[list[OracleClip], list[np.ndarray]]:
    """Loaded batches as one clip list and the index batches into it, for `oracle_levels`."""
    clips = [clip for batch in batches for clip in batch]
    ends = np.cumsum([len(batch) for batch in batches])
    return clips, [np.arange(end - len(batch), end) for batch, end in zip(batches, ends)]


def clip_mix(clips: Sequence[OracleClip]) -> dict[str, float]:
    """Shares of the clips whose sentence is a step (names a verb), a mention (an object only) or a filler."""
    steps = sum(c.verb is not None for c in clips)
    mentions = sum(c.verb is None and c.obj is not None for c in clips)
    n = len(clips)
    return {"steps": steps / n, "mentions": mentions / n, "fillers": (n - steps - mentions) / n}
