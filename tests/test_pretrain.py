"""Backbone pretraining: losses (oracles), pair drawing, probe (stub backbone with known answers), training
lowers the loss, and the written weights load frozen through `pretrained=<path>` with identical tokens."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from stg_lightning.backbones import Backbone, OpenClipConfig, build_backbone
from stg_lightning.errors import StgUserError
from stg_lightning.pretrain import cli
from stg_lightning.pretrain.data import (
    PretrainDataConfig,
    TokenizedPairs,
    caption_fits,
    draw_pairs,
    load_synth_config,
    trim_padding,
)
from stg_lightning.pretrain.module import (
    PretrainLossConfig,
    PretrainModule,
    PretrainOptimConfig,
    multi_positive_nce,
)
from stg_lightning.pretrain.probe import (
    PointingSet,
    ProbeConfig,
    draw_pointing_set,
    format_table,
    patch_centres,
    zero_shot_pointing,
    zero_shot_verb_choice,
)
from stg_lightning.synth.config import PRESETS
from stg_lightning.tokens import FrameTokens, TextTokens

SYNTH = PRESETS["demo"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pairs():
    return draw_pairs(SYNTH, PretrainDataConfig(phrases_per_frame=2), 64, seed=0)


# ---------------------------------------------------------------------------------------------- losses
def test_multi_positive_nce_with_identity_is_clip_loss():
    logits = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    clip = (F.cross_entropy(logits, torch.arange(5)) + F.cross_entropy(logits.T, torch.arange(5))) / 2
    torch.testing.assert_close(multi_positive_nce(logits, torch.eye(5, dtype=torch.bool)), clip)


def test_multi_positive_nce_hand_computed():
    # Row 0 has two positives (target 1/2, 1/2), row 1 one; columns: col 0 one positive, col 1 two.
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    positives = torch.tensor([[True, True], [False, True]])
    row0 = -(0.5 * math.log(3 / 4) + 0.5 * math.log(1 / 4))
    row1 = -math.log(1 / 2)
    col0 = -math.log(3 / 4)
    col1 = -(0.5 * math.log(1 / 2) + 0.5 * math.log(1 / 2))
    expected = ((row0 + row1) / 2 + (col0 + col1) / 2) / 2
    assert multi_positive_nce(logits, positives).item() == pytest.approx(expected, rel=1e-6)


def test_multi_positive_nce_column_without_positive_is_only_a_row_negative():
    # Column 2 (a hard-negative text no frame shows) enters the rows' softmax, not the column term.
    logits = torch.tensor([[math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0]])
    positives = torch.tensor([[True, True, False], [False, True, False]])
    row0 = -(0.5 * math.log(3 / 5) + 0.5 * math.log(1 / 5))
    row1 = -math.log(1 / 3)
    col0 = -math.log(3 / 4)
    col1 = -math.log(1 / 2)
    expected = ((row0 + row1) / 2 + (col0 + col1) / 2) / 2
    assert multi_positive_nce(logits, positives).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="row has no positive"):
        multi_positive_nce(logits, positives & torch.tensor([[True], [False]]))


def test_caption_fits_names_all_actions_and_nothing_absent():
    # keys: 0, 1 = actions; 2, 3 = objects present
    action_mask = torch.tensor([True, True, False, False])
    content = torch.tensor([[1, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.bool)
    captions = torch.tensor([[1, 0, 0, 0], [1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.bool)
    expected = torch.tensor([[True, True, False, False], [False, False, True, False]])
    assert torch.equal(caption_fits(content, captions, action_mask), expected)


# ---------------------------------------------------------------------------------------------- data
def test_draw_pairs_is_deterministic_and_consistent(pairs):
    again = draw_pairs(SYNTH, PretrainDataConfig(phrases_per_frame=2), 64, seed=0)
    other = draw_pairs(SYNTH, PretrainDataConfig(phrases_per_frame=2), 64, seed=0, split="val")
    assert torch.equal(pairs.frames, again.frames) and pairs.captions == again.captions
    assert not torch.equal(pairs.frames, other.frames)
    assert pairs.frames.shape == (64, 3, 64, 64) and pairs.frames.dtype == torch.uint8
    keys = pairs.keys
    # Every phrase and caption names something the frame shows; each frame's own caption fits it.
    assert pairs.content.gather(1, pairs.phrase_keys[:, :2]).all()
    assert pairs.caption_fits(torch.arange(64), torch.arange(64)).diagonal().all()
    for i in range(64):
        for verb, obj in ((v, o) for o in keys.objects for v in keys.verbs):
            if pairs.content[i, keys.action(verb, obj)]:
                assert obj in pairs.captions[i]
    assert pairs.content[:, keys.action_mask()].any(1).float().mean() > 0.7  # acting_prob 0.9


def test_hard_negatives_name_an_unshown_action_on_a_visible_object(pairs):
    keys, n_actions = pairs.keys, len(pairs.keys.objects) * len(pairs.keys.verbs)
    negatives = pairs.phrase_keys[:, 2:]
    assert negatives.shape == (64, 2) and (negatives < n_actions).all()  # (verb, object) keys
    assert not pairs.content.gather(1, negatives).any()
    objects = negatives // len(keys.verbs)
    assert pairs.content.gather(1, n_actions + objects).all()  # the object is on screen
    # Both kinds occur: another verb on an acting object, an acting verb moved to an idle object.
    verbs = negatives % len(keys.verbs)
    acting = pairs.content[:, :n_actions].view(64, len(keys.objects), len(keys.verbs))
    object_acts = acting.any(-1).gather(1, objects)
    verb_acts = acting.any(1).gather(1, verbs)
    assert object_acts.any() and (verb_acts & ~object_acts).any()
    for i in range(64):
        for j in (2, 3):
            obj = keys.objects[int(objects[i, j - 2])]
            assert obj in pairs.phrases[i][j]
    none = draw_pairs(SYNTH, PretrainDataConfig(hard_negatives_per_frame=0), 8, seed=0)
    assert none.phrase_keys.shape == (8, 2)


def test_tokenized_pairs_trim_padding(pairs):
    bb = build_backbone(OpenClipConfig(model_name="stg-tiny-vit", pretrained=None))
    ds = TokenizedPairs(pairs, bb.tokenize)
    item = ds[3]
    assert item["phrase_ids"].shape[0] == 4 and item["caption_ids"].shape[0] < 32  # 2 phrases + 2 negatives
    assert torch.equal(
        trim_padding(torch.tensor([[5, 6, 0, 0], [5, 0, 0, 0]])), torch.tensor([[5, 6], [5, 0]])
    )
    # Trimming trailing padding leaves the causal text tower's tokens unchanged.
    full = bb.tokenize(pairs.captions[:2])
    with torch.no_grad():
        torch.testing.assert_close(
            bb.encode_text(full).sentence, bb.encode_text(trim_padding(full)).sentence, atol=1e-5, rtol=0
        )


def test_load_synth_config_from_meta_json(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text('{"config": {"seed": 3, "scene": {"objects_on_screen": [3, 4]}}}')
    cfg = load_synth_config(str(meta))
    assert cfg.seed == 3 and cfg.scene.objects_on_screen == (3, 4)
    with pytest.raises(StgUserError, match="stg synth"):
        load_synth_config(str(tmp_path / "missing.json"))
    assert load_synth_config(str(REPO / "configs/synth/paper.yaml")) == PRESETS["paper"]
    meta.write_text('{"config": {"scene": {"frame_sise": 32}}}')
    with pytest.raises(StgUserError, match=r"meta.json: unknown key 'scene.frame_sise'"):
        load_synth_config(str(meta))
    with pytest.raises(StgUserError, match=r"data.synth_config: --config .*none.yaml: file not found"):
        load_synth_config(str(tmp_path / "none.yaml"))


# ---------------------------------------------------------------------------------------------- probe
class ColourStub(Backbone):
    """Patch token = mean RGB of the patch (2×2 grid on 8 px frames); text "red"/"green"/"blue" = one-hot."""

    grid, image_size, mean, std = (2, 2), 8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__(finetune=False)
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self._set_trainable()

    def tokenize(self, texts: list[str]) -> Tensor:
        return torch.tensor([[["red", "green", "blue"].index(t)] for t in texts])

    def _encode_frames(self, frames: Tensor) -> FrameTokens:
        b, u = frames.shape[:2]
        cells = F.avg_pool2d(frames.flatten(0, 1), 4).flatten(2).transpose(1, 2)  # [n, 4, 3]
        return FrameTokens(cells.mean(1).view(b, u, 3), cells.view(b, u, 4, 3), self.grid)

    def _encode_text(self, ids: Tensor) -> TextTokens:
        one_hot = F.one_hot(ids[:, 0], 3).float()
        return TextTokens(one_hot, one_hot[:, None], torch.ones(len(ids), 1, dtype=torch.bool))


def test_zero_shot_pointing_oracle_and_baselines():
    frames = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    frames[:, 0, 4:, :4] = 255  # red object in the bottom-left quadrant, green in the top-right
    frames[:, 1, :4, 4:] = 255
    boxes = torch.tensor([[0, 4, 3, 7], [4, 0, 7, 3]])  # frame 0 asks for red (hit), frame 1 for green (hit)
    centres = [np.array([[2.0, 6.0], [6.0, 2.0]])] * 2
    pset = PointingSet(frames, ["red", "green"], boxes, centres, [centres[0][:1], centres[0][:1]])
    assert zero_shot_pointing(ColourStub(), pset) == 1.0
    wrong = PointingSet(frames, ["green", "red"], boxes, centres, centres)
    assert zero_shot_pointing(ColourStub(), wrong) == 0.0
    base = pset.baselines()
    assert base["random_object"] == 0.5 and base["random_mover"] == 0.5 and base["chance_area"] == 0.25
    assert torch.equal(
        patch_centres((2, 2), 8), torch.tensor([[2.0, 2.0], [6.0, 2.0], [2.0, 6.0], [6.0, 6.0]])
    )


def test_zero_shot_verb_choice_known_answer():
    frames = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    frames[0, 0, 4:, :4] = 255  # frame 0 shows red, frame 1 green
    frames[1, 1, :4, 4:] = 255
    texts = ["red", "green", "blue"]  # the "true" phrase first: right for frame 0 only
    boxes = torch.zeros(2, 4, dtype=torch.long)
    centres = [np.zeros((1, 2))] * 2
    pset = PointingSet(frames, ["red", "red"], boxes, centres, centres, [texts, texts])
    assert zero_shot_verb_choice(ColourStub(), pset) == 0.5
    # The frame token reads the same choice from the whole frame (ColourStub's global = mean colour).
    assert zero_shot_verb_choice(ColourStub(), pset, frame_token=True) == 0.5
    with pytest.raises(ValueError, match="verb_texts"):
        zero_shot_verb_choice(ColourStub(), PointingSet(frames, texts[:2], boxes, centres, centres))


def test_draw_pointing_set_boxes_hold_the_acting_object():
    pset = draw_pointing_set(SYNTH, ProbeConfig(pointing_frames=12))
    assert pset.frames.shape == (12, 3, 64, 64) and len(pset.texts) == 12
    assert all(t.split()[1] == "the" for t in pset.texts)
    assert [ts[0] for ts in pset.verb_texts] == pset.texts
    assert all(len(set(ts)) == len(SYNTH.scene.verbs) for ts in pset.verb_texts)
    assert all({t.split()[-1] for t in ts} == {ts[0].split()[-1]} for ts in pset.verb_texts)
    boxes = pset.boxes
    assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()
    base = pset.baselines()
    assert 0 < base["chance_area"] < base["random_object"] < 1
    assert "| a |" in format_table({"a": {"pointing": 0.5, "retrieval": "-"}})


# ---------------------------------------------------------------------------------------------- training
def _batch(ds: TokenizedPairs, n: int) -> dict[str, Tensor]:
    return {k: torch.stack([ds[i][k] for i in range(n)]) for k in ds[0]}


def test_frame_level_loss_terms_follow_their_weights(pairs):
    """patch_weight 0 + phrase_weight 1 (CLIP's regime): the phrase term scores phrases against the frame
    token, with the same multi-positive targets as the patch term; no patch term is computed."""
    torch.manual_seed(0)
    keys = int(pairs.keys.action_mask().sum())
    backbone = OpenClipConfig(model_name="stg-tiny-rn", pretrained=None)
    frame_level = PretrainLossConfig(phrase_weight=1.0, patch_weight=0.0)
    module = PretrainModule(backbone, loss=frame_level, num_action_keys=keys).eval()
    batch = _batch(TokenizedPairs(pairs, module.backbone.tokenize), 8)
    with torch.no_grad():
        out = module.losses(batch)
        emb = module.embed(batch)
    assert set(out) == {"loss", "global", "phrase"}
    torch.testing.assert_close(out["loss"], out["global"] + out["phrase"])
    named = batch["content"][:, batch["phrase_keys"].flatten()]
    want = multi_positive_nce(module._scale(module.logit_scale) * emb["frames"] @ emb["phrases"].T, named)
    torch.testing.assert_close(out["phrase"], want)
    module.loss_cfg = PretrainLossConfig()  # defaults: global + patch, no phrase term
    with torch.no_grad():
        assert set(module.losses(batch)) == {"loss", "global", "patch"}


def test_training_lowers_loss_and_weights_load_frozen(pairs, tmp_path):
    torch.manual_seed(0)
    module = PretrainModule(
        OpenClipConfig(model_name="stg-tiny-rn", pretrained=None),
        optim=PretrainOptimConfig(lr=2e-3, warmup_steps=0),
        num_action_keys=int(pairs.keys.action_mask().sum()),
        total_steps=10,
    )
    ds = TokenizedPairs(pairs, module.backbone.tokenize)
    fixed = _batch(ds, 16)
    with torch.no_grad():  # train mode both times: BatchNorm uses batch statistics, like the objective
        before = module.losses(fixed)["loss"].item()
    trainer = L.Trainer(
        max_steps=10, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, DataLoader(Subset(ds, range(16)), batch_size=16))
    module.train()
    with torch.no_grad():
        after = module.losses(fixed)["loss"].item()
    assert after < before - 0.3

    module.eval()
    path = tmp_path / "tiny.pt"
    torch.save(module.open_clip_state_dict(), path)
    frozen = build_backbone(OpenClipConfig(model_name="stg-tiny-rn", pretrained=str(path)))
    assert not any(p.requires_grad for p in frozen.parameters()) and not frozen.training
    frames = frozen.normalize(pairs.frames[:4])[:, None]
    ids = frozen.tokenize(pairs.captions[:4])
    with torch.no_grad():
        mine, theirs = module.backbone.encode_frames(frames), frozen.encode_frames(frames)
        # Same weights; only kernel choice (no-grad fast path) may differ in the last bits.
        torch.testing.assert_close(theirs.global_, mine.global_, rtol=0, atol=1e-5)
        torch.testing.assert_close(theirs.patches, mine.patches, rtol=0, atol=1e-5)
        torch.testing.assert_close(
            frozen.encode_text(ids).sentence, module.backbone.encode_text(ids).sentence
        )
    assert frozen.logit_scale.item() == pytest.approx(module.logit_scale.item())


def test_local_vit_weights_round_trip(tmp_path):
    module = PretrainModule(
        OpenClipConfig(model_name="stg-tiny-vit-local", pretrained=None), num_action_keys=30
    )
    with torch.no_grad():
        for p in module.backbone.parameters():
            p.add_(0.01 * torch.randn_like(p))
    torch.save(module.open_clip_state_dict(), tmp_path / "vit.pt")
    frozen = build_backbone(
        OpenClipConfig(model_name="stg-tiny-vit-local", pretrained=str(tmp_path / "vit.pt"))
    )
    module.eval()
    frames = torch.randn(2, 1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            frozen.encode_frames(frames).patches, module.backbone.encode_frames(frames).patches
        )


# ---------------------------------------------------------------------------------------------- cli
def test_demo_yaml_loads_the_values_it_states():
    """configs/pretrain/demo.yaml read by hand: every key it sets, the rest stay the dataclass defaults."""
    cfg = cli.build_config(["--config", str(REPO / "configs/pretrain/demo.yaml")])
    default = cli.PretrainConfig()
    want = replace(
        default,
        seed=0,
        max_steps=700,
        max_time_s=600.0,
        batch_size=64,
        num_threads=2,
        backbone=replace(default.backbone, model_name="stg-tiny-vit-clip", pretrained=None),
        data=replace(
            default.data,
            synth_config=None,
            train_pairs=8192,
            val_pairs=512,
            phrases_per_frame=1,
            hard_negatives_per_frame=2,
        ),
        loss=replace(default.loss, global_weight=1.0, phrase_weight=1.0, patch_weight=0.0),
        optim=replace(default.optim, lr=0.002, warmup_steps=20),
        probe=replace(default.probe, pointing_frames=400),
    )
    assert cfg == want
    assert cfg.backbone.finetune and cfg.backbone.model_name == "stg-tiny-vit-clip"  # default_factory kept


def test_build_config_layers_yaml_and_flags(tmp_path):
    cfg = cli.build_config(
        ["--config", str(REPO / "configs/pretrain/demo.yaml"), "--seed=5", "--loss.patch_weight=0"]
    )
    assert cfg.seed == 5 and cfg.loss.patch_weight == 0.0 and cfg.backbone.pretrained is None
    assert cli.build_config(["--max-steps", "7"]).max_steps == 7  # the old dashed spelling
    with pytest.raises(StgUserError, match=r"unknown key 'loss.nope'; valid keys of loss: .*patch_weight"):
        cli.build_config(["--loss.nope=1"])
    with pytest.raises(StgUserError, match=r"key 'optim.lr': expected float, got 'fast'"):
        cli.build_config(["--optim.lr=fast"])
    with pytest.raises(StgUserError, match="file not found"):
        cli.build_config(["--config", str(tmp_path / "none.yaml")])
    with pytest.raises(StgUserError, match="max_steps must be >= 1"):
        cli.build_config(["--max_steps=0"])


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "bb.pt"
    argv = [
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--batch_size=16",
        "--data.train_pairs=32",
        "--data.val_pairs=16",
    ]
    assert cli.main([*argv, "--probe.pointing_frames=8", "--num_threads=1"]) == 0
    printed = capsys.readouterr().out
    assert "| pretrained |" in printed and "| random_object |" in printed
    assert build_backbone(OpenClipConfig(model_name="stg-tiny-rn", pretrained=str(out))).grid == (2, 2)
    assert (tmp_path / "bb.pt.json").is_file()
