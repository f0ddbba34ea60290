"""Image–text pairs for backbone pretraining, drawn in memory by the synthetic scene renderer.

Each pair is one frame of a random scene (2-4 objects of the benchmark's vocabulary, some performing
verbs with their hands, distractors included) and text that names what is visible:

- a *caption* naming every acting object with its verb and some idle objects ("a hand shakes the egg and
  the lemon is splitting, a tomato nearby"), for the global image–text term;
- *phrases* naming one thing each ("now shake the egg gently", "the tomato"), for the patch-level term;
- *hard-negative phrases* naming an action the frame does not show, built from what it shows: another verb
  on a visible object ("spin the egg" while the egg shakes or lies still) or an acting verb on another
  visible object ("shake the tomato" while the egg shakes). Random in-batch negatives rarely share the
  object, so they reward finding the object and not the verb; the benchmark's distractors are on-screen
  objects doing other verbs, so grounding a step needs the verb (`probe.zero_shot_verb_choice`).

What a frame shows (its *content*) and what a caption names are multi-hot vectors over keys (verb, object)
and (object), so the losses know which texts fit which frames (two frames may show the same thing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from stg_lightning.config import from_dict, parse
from stg_lightning.errors import StgUserError
from stg_lightning.synth.config import PRESETS, SynthConfig
from stg_lightning.synth.scene import Activity, Scene
from stg_lightning.synth.script import ADVERBS, PREFIXES

# Third person and -ing form of every verb the scene renderer can draw.
VERB_FORMS: dict[str, tuple[str, str]] = {
    "shake": ("shakes", "shaking"),
    "spin": ("spins", "spinning"),
    "split": ("splits", "splitting"),
    "press": ("presses", "pressing"),
    "pour": ("pours", "pouring"),
    "roll": ("rolls", "rolling"),
    "flip": ("flips", "flipping"),
    "stir": ("stirs", "stirring"),
}
# Includes the bare "verb object" form of recipe-step labels (GYT / MYT queries such as "crack eggs"):
# without it the tiny text tower does not transfer to those queries (zero-shot pointing 0.18 vs 0.47).
ACTION_TEMPLATES = (
    "{verb} {obj}",
    "{verb} the {obj}",
    "a hand {third} the {obj}",
    "the {obj} is {ing}",
    "someone is {ing} the {obj}",
    "{ing} the {obj}",
)
PAIR_SPLITS = ("train", "val")
IDLE_TEMPLATES = ("a {obj}", "the {obj}", "a {obj} nearby", "the {obj} lies still")


@dataclass
class PretrainDataConfig:
    """Which frames are drawn and how they are described.

    synth_config: the benchmark whose vocabulary and scene look the frames copy: a synth YAML
        (configs/synth/*.yaml) or a generated benchmark's meta.json; None = the demo preset.
    train_pairs / val_pairs: frames drawn once before training / for the held-out retrieval probe.
    acting_prob: chance that a frame shows at least one acting object (else all objects are idle).
    phrases_per_frame: phrases drawn per frame for the patch-level term (acting objects first).
    hard_negatives_per_frame: hard-negative phrases per frame (see the module docstring; 0 = none).
    object_swap_prob: chance that a hard negative moves an acting verb to another visible object (when
        the frame shows an action and another object); otherwise it gives a visible object another verb.
    narration_prob: chance that a phrase gets an ASR-like prefix/adverb ("now ... gently").
    idle_mention_prob: chance that the caption names each idle object.
    wander_hand_prob: chance of a hand that holds nothing.
    max_tau: seconds into a motion at which the frame is drawn, uniform in [0, max_tau).
    """

    synth_config: str | None = None
    train_pairs: int = 8192
    val_pairs: int = 512
    acting_prob: float = 0.9
    phrases_per_frame: int = 2
    hard_negatives_per_frame: int = 2
    object_swap_prob: float = 0.5
    narration_prob: float = 0.5
    idle_mention_prob: float = 0.5
    wander_hand_prob: float = 0.3
    max_tau: float = 8.0


@dataclass(frozen=True)
class ContentKeys:
    """Index of every nameable thing: key (verb, object) = o * V + v; key (object) = O * V + o."""

    objects: tuple[str, ...]
    verbs: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.objects) * (len(self.verbs) + 1)

    def action(self, verb: str, obj: str) -> int:
        return self.objects.index(obj) * len(self.verbs) + self.verbs.index(verb)

    def present(self, obj: str) -> int:
        return len(self.objects) * len(self.verbs) + self.objects.index(obj)

    def key(self, verb: str | None, obj: str) -> int:
        return self.present(obj) if verb is None else self.action(verb, obj)

    def action_mask(self) -> Tensor:
        """bool [size]: True at the (verb, object) keys."""
        return torch.arange(self.size) < len(self.objects) * len(self.verbs)


@dataclass
class PairSet:
    """Pre-drawn pairs. frames uint8 [M, 3, H, W]; content and caption_keys bool [M, keys] (what the frame
    shows, what its caption names); phrase_keys long [M, P + H] (the key each phrase names: P positive
    phrases, then H hard negatives)."""

    frames: Tensor
    captions: list[str]
    caption_keys: Tensor
    phrases: list[list[str]]
    phrase_keys: Tensor
    content: Tensor
    keys: ContentKeys

    def __len__(self) -> int:
        return self.frames.shape[0]

    def caption_fits(self, frames: Tensor, captions: Tensor) -> Tensor:
        """[len(frames), len(captions)] bool: the caption is true of the frame and names all its actions."""
        return caption_fits(self.content[frames], self.caption_keys[captions], self.keys.action_mask())


def caption_fits(content: Tensor, caption_keys: Tensor, action_mask: Tensor) -> Tensor:
    """[F, C] bool from content [F, K] and caption_keys [C, K]: every named key is shown, every shown action
    is named (a caption lists all acting objects)."""
    named_shown = (caption_keys[None] <= content[:, None]).all(-1)
    actions_named = ((content & action_mask)[:, None] <= caption_keys[None]).all(-1)
    return named_shown & actions_named


def load_synth_config(path: str | None) -> SynthConfig:
    """The benchmark config from a synth YAML or a generated benchmark's meta.json (None: demo preset)."""
    if path is None:
        return PRESETS["demo"]
    if Path(path).suffix != ".json":
        try:
            return parse(SynthConfig, ["--config", path], prog="data.synth_config").config
        except StgUserError as err:
            raise StgUserError(f"data.synth_config: {err}") from None
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)["config"]
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise StgUserError(
            f"data.synth_config: cannot read the benchmark config from {path} ({err}); pass a synth YAML "
            "or the meta.json that `stg synth` wrote"
        ) from err
    return from_dict(SynthConfig, config, path)  # over the defaults = the demo preset


def _phrase(rng: np.random.Generator, verb: str | None, obj: str, narration_prob: float) -> str:
    if verb is None:
        return IDLE_TEMPLATES[rng.integers(len(IDLE_TEMPLATES))].format(obj=obj)
    third, ing = VERB_FORMS[verb]
    text = ACTION_TEMPLATES[rng.integers(len(ACTION_TEMPLATES))].format(
        verb=verb, third=third, ing=ing, obj=obj
    )
    if rng.random() < narration_prob:
        text = f"{PREFIXES[rng.integers(len(PREFIXES))]}{text}{ADVERBS[rng.integers(len(ADVERBS))]}"
    return text


def _caption(
    rng: np.random.Generator, actions: list[tuple[str, str]], idle: list[str], cfg: PretrainDataConfig
) -> tuple[str, list[tuple[str | None, str]]]:
    """Caption naming every action and some idle objects, and what it names as (verb | None, object)."""
    named: list[tuple[str | None, str]] = list(actions)
    named += [(None, obj) for obj in idle if rng.random() < cfg.idle_mention_prob]
    if not named:  # an idle frame always names at least one object
        named = [(None, idle[rng.integers(len(idle))])]
    named = [named[i] for i in rng.permutation(len(named))]
    return " and ".join(_phrase(rng, verb, obj, 0.0) for verb, obj in named), named


def _hard_negative(
    rng: np.random.Generator,
    actions: list[tuple[str, str]],
    objects: list[str],
    verbs: list[str],
    swap: float,
) -> tuple[str, str]:
    """An action (verb, object) on a visible object that the frame does not show."""
    shown = set(actions)
    if actions and len(objects) > 1 and rng.random() < swap:
        verb = actions[rng.integers(len(actions))][0]
        others = [o for o in objects if (verb, o) not in shown]
        if others:
            return verb, others[rng.integers(len(others))]
    obj = objects[rng.integers(len(objects))]
    free = [v for v in verbs if (v, obj) not in shown]
    return free[rng.integers(len(free))], obj


def draw_pairs(
    synth: SynthConfig, cfg: PretrainDataConfig, n: int, seed: int, split: str = "train"
) -> PairSet:
    """`n` random frames with captions, phrases and content; deterministic in (`seed`, `split`)."""
    if split not in PAIR_SPLITS:
        raise ValueError(f"split must be one of {PAIR_SPLITS}, got {split!r}")
    missing = set(synth.scene.verbs) - set(VERB_FORMS)
    if missing:
        raise ValueError(f"pretrain data: no verb forms for {sorted(missing)}; add them to VERB_FORMS")
    if cfg.phrases_per_frame < 1:
        raise ValueError(f"data.phrases_per_frame must be >= 1, got {cfg.phrases_per_frame}")
    if cfg.hard_negatives_per_frame < 0:
        raise ValueError(f"data.hard_negatives_per_frame must be >= 0, got {cfg.hard_negatives_per_frame}")
    rng = np.random.default_rng([seed, PAIR_SPLITS.index(split)])
    sc = synth.scene
    keys = ContentKeys(tuple(sc.objects), tuple(sc.verbs))
    size = sc.frame_size
    frames = np.empty((n, size, size, 3), np.uint8)
    content = np.zeros((n, keys.size), bool)
    caption_keys = np.zeros((n, keys.size), bool)
    phrase_keys = np.empty((n, cfg.phrases_per_frame + cfg.hard_negatives_per_frame), np.int64)
    captions, phrases = [], []
    for i in range(n):
        count = int(rng.integers(sc.objects_on_screen[0], sc.objects_on_screen[1] + 1))
        objects = rng.choice(sc.objects, size=min(count, len(sc.objects)), replace=False).tolist()
        scene = Scene(sc, objects, rng)
        movers = int(rng.integers(1, len(objects) + 1)) if rng.random() < cfg.acting_prob else 0
        acting = sorted(rng.permutation(len(objects))[:movers].tolist())
        verbs = [sc.verbs[rng.integers(len(sc.verbs))] for _ in acting]
        activities = [
            Activity(j, v, float(rng.uniform(0, cfg.max_tau)), bool(rng.random() < sc.distractor_hand_prob))
            for j, v in zip(acting, verbs)
        ]
        frames[i], _ = scene.render(
            float(rng.uniform(0, 60)), activities, bool(rng.random() < cfg.wander_hand_prob)
        )
        actions = [(v, objects[j]) for j, v in zip(acting, verbs)]
        idle = [o for j, o in enumerate(objects) if j not in acting]
        content[i, [keys.action(v, o) for v, o in actions] + [keys.present(o) for o in objects]] = True
        caption, named = _caption(rng, actions, idle, cfg)
        captions.append(caption)
        caption_keys[i, [keys.key(v, o) for v, o in named]] = True
        # Acting objects first (in random order), then idle ones: phrases mostly name actions.
        pool = [actions[j] for j in rng.permutation(len(actions))]
        pool += [(None, idle[j]) for j in rng.permutation(len(idle))]
        picks = [pool[j % len(pool)] for j in range(cfg.phrases_per_frame)]
        picks += [
            _hard_negative(rng, actions, objects, list(sc.verbs), cfg.object_swap_prob)
            for _ in range(cfg.hard_negatives_per_frame)
        ]
        phrases.append([_phrase(rng, v, o, cfg.narration_prob) for v, o in picks])
        phrase_keys[i] = [keys.key(v, o) for v, o in picks]
    return PairSet(
        frames=torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
        captions=captions,
        caption_keys=torch.from_numpy(caption_keys),
        phrases=phrases,
        phrase_keys=torch.from_numpy(phrase_keys),
        content=torch.from_numpy(content),
        keys=keys,
    )


class TokenizedPairs(Dataset):
    """A PairSet with its texts tokenized once (trimmed to the longest text): items are dicts of tensors."""

    def __init__(self, pairs: PairSet, tokenize: Callable[[list[str]], Tensor]) -> None:
        self.frames = pairs.frames
        self.content = pairs.content
        self.caption_keys = pairs.caption_keys
        self.phrase_keys = pairs.phrase_keys
        self.caption_ids = trim_padding(tokenize(pairs.captions))
        flat = [p for frame_phrases in pairs.phrases for p in frame_phrases]
        self.phrase_ids = trim_padding(tokenize(flat)).view(len(pairs), pairs.phrase_keys.shape[1], -1)

    def __len__(self) -> int:
        return self.frames.shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {
            "frames": self.frames[i],
            "caption_ids": self.caption_ids[i],
            "phrase_ids": self.phrase_ids[i],
            "phrase_keys": self.phrase_keys[i],
            "content": self.content[i],
            "caption_keys": self.caption_keys[i],
        }


def trim_padding(ids: Tensor) -> Tensor:
    """Drop the trailing columns that are padding (0) in every row: shorter text sequences are cheaper."""
    used = int((ids != 0).any(dim=0).nonzero().max()) + 1
    return ids[:, :used]
