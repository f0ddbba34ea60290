import dataclasses
import math

import numpy as np
import pytest
import torch

from stg_lightning.data.batch import ClipBatch
from stg_lightning.errors import StgUserError
from stg_lightning.report.nce_oracles import (
    ORACLES,
    OracleClip,
    OracleConfig,
    TrainPlans,
    clip_mix,
    named_action,
    oracle_level,
    oracle_levels,
    oracle_scores,
    random_batches,
)
from stg_lightning.synth import PRESETS
from stg_lightning.synth.script import build_vocabulary
from stg_lightning.synth.writer import plan_and_scene

FEW = OracleConfig(batches=10, scales=7)


def clip(on_screen: set[str], acted: set[tuple[str, str]], verb: str | None, obj: str | None) -> OracleClip:
    return OracleClip(frozenset(on_screen), frozenset(acted), verb, obj)


def test_named_action_reads_steps_mentions_and_fillers():
    vocab = build_vocabulary(PRESETS["demo"])
    verb, obj = vocab.classes[0].verb, vocab.classes[0].obj
    assert named_action(f"ok so we {verb} the {obj} gently", vocab) == (verb, obj)
    assert named_action(f"put the {obj} aside", vocab) == (None, obj)  # "put" is no scene verb
    assert named_action("thanks for watching", vocab) == (None, None)


def test_oracle_scores_by_what_the_sentence_names():
    a = clip({"egg", "lemon"}, {("stir", "egg")}, "stir", "egg")
    b = clip({"lemon"}, {("roll", "lemon")}, None, "lemon")  # a mention of the lemon
    c = clip({"egg"}, set(), None, None)  # a filler
    clips = [a, b, c]
    np.testing.assert_array_equal(oracle_scores(clips, "object_on_screen"), [[1, 1, 0], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(oracle_scores(clips, "object_acted"), [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(oracle_scores(clips, "action_acted"), [[1, 0, 0], [0, 0, 0], [0, 0, 0]])


def test_a_constant_scorer_sits_at_chance_and_a_perfect_one_near_zero():
    fillers = [clip({"egg"}, set(), None, None) for _ in range(6)]
    level = oracle_level(oracle_scores(fillers, "action_acted"), random_batches(6, 4, FEW), FEW)
    assert level == pytest.approx(2 * math.log(4))
    # Each video shows only the object its sentence names: the identity at the largest scale s = 100,
    # 2·ln(1 + 3·e^-s) ≈ 0.
    distinct = [clip({o}, {("stir", o)}, "stir", o) for o in ("egg", "lemon", "mint", "onion", "carrot")]
    batches = random_batches(5, 4, FEW)
    assert oracle_level(oracle_scores(distinct, "action_acted"), batches, FEW) == pytest.approx(0, abs=1e-6)
    # Two clips per object: at best a tie of 2 in each row and column, 2·ln 2.
    pairs = [c for c in distinct[:2] for _ in range(2)]
    level = oracle_level(oracle_scores(pairs, "object_on_screen"), random_batches(4, 4, FEW), FEW)
    assert level == pytest.approx(2 * math.log(2))
    with pytest.raises(ValueError, match="batch size 8 exceeds the 5 clips"):
        random_batches(5, 8, FEW)


def test_levels_on_given_batches_are_weighted_by_batch_size_as_an_epoch_mean():
    # Held-out batches of 4 and 2 fillers: chance (4·2·ln 4 + 2·2·ln 2) / 6, which every oracle matches.
    fillers = [clip({"egg"}, set(), None, None) for _ in range(6)]
    levels = oracle_levels(fillers, [np.arange(4), np.arange(4, 6)], FEW)
    expected = (4 * 2 * math.log(4) + 2 * 2 * math.log(2)) / 6
    assert levels == pytest.approx({"chance": expected, **dict.fromkeys(ORACLES, expected)})


def test_train_plans_cut_clips_as_prepare_does_and_read_loaded_batches():
    synth = dataclasses.replace(PRESETS["demo"], train_videos=3)
    plans = TrainPlans(synth)
    vocab = build_vocabulary(synth)
    assert list(plans.plans) == [plan_and_scene(synth, vocab, "train", i)[0].video_id for i in range(3)]
    clips = plans.training_clips(fps=1.0, num_frames=10, min_time=10.0)
    assert len(clips) == sum(len(p.captions) for p in plans.plans.values())  # every window has frames
    # A loaded batch: the real frames' timestamps (padding masked out) and the sentence.
    plan = next(iter(plans.plans.values()))
    step = plan.steps[0]
    text = f"then {step.cls.verb} the {step.cls.obj} gently"
    batch = ClipBatch(
        frame_mask=torch.tensor([[True, True, False]]),
        timestamps=torch.tensor([[float(step.start), step.start + 1.0, 9999.0]]),
        video_id=[plan.video_id],
        text=[text],
        frames=torch.zeros(1, 3, 3, 4, 4, dtype=torch.uint8),
    )
    (loaded,) = plans.batch_clips(batch)
    assert loaded == plans.clip(plan.video_id, [step.start, step.start + 1.0], text)
    assert (step.cls.verb, step.cls.obj) in loaded.acted and loaded.on_screen == frozenset(plan.objects)
    with pytest.raises(StgUserError, match="'train_99999' is not in the benchmark's train split"):
        plans.clip("train_99999", [0.0], text)


def test_training_clips_mostly_see_their_step_acted_and_set_the_levels():
    clips = TrainPlans(dataclasses.replace(PRESETS["demo"], train_videos=3)).training_clips(1.0, 10, 10.0)
    steps = [c for c in clips if c.verb is not None]
    # A step's object is always on screen; the sentence around a step mostly sees it acted.
    assert steps and all(c.obj in c.on_screen for c in steps)
    assert sum((c.verb, c.obj) in c.acted for c in steps) > len(steps) / 2
    mix = clip_mix(clips)
    assert sum(mix.values()) == pytest.approx(1.0) and mix["steps"] == len(steps) / len(clips)
    levels = oracle_levels(clips, random_batches(len(clips), 4, FEW), FEW)
    assert levels["chance"] == pytest.approx(2 * math.log(4))
    assert levels["action_acted"] < levels["chance"]
    assert all(0 <= v <= levels["chance"] + 1e-9 for v in levels.values())
