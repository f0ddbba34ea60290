"""Cached backbone tokens: `stg prepare --cache-tokens` output; loss on cached tokens == loss on the fly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_data_prepare import small_config

from stg_lightning.backbones import OpenClipConfig, build_backbone
from stg_lightning.data.cache_tokens import cache_tokens
from stg_lightning.data.datamodule import ShardDataModule
from stg_lightning.data.prepare import main, write_shards
from stg_lightning.data.shards import iter_shard
from stg_lightning.tokens import FrameTokens, TextTokens

TINY = "stg-tiny-vit"  # 64 px, 8x8 grid, context length 32 (stg_lightning.backbones.tiny_configs)


def batch_of(dm: ShardDataModule) -> dict:
    (batch,) = list(dm.val_dataset(0, 1, num_workers=0))
    return dm.on_after_batch_transfer(dm.on_before_batch_transfer(batch, 0), 0)


def test_prepare_cache_tokens_writes_fp16_token_shards(tmp_path):
    cfg = small_config(tmp_path)
    argv = [
        f"--{k.replace('_', '-')}={v}"
        for k, v in vars(cfg).items()
        if k not in ("cache_tokens", "pretrained")
    ]
    assert main([*argv, "--cache-tokens", f"--model-name={TINY}"]) == 0
    tokens = Path(cfg.out) / "tokens"
    assert json.loads((tokens / "summary.json").read_text())["shards"] == {
        "clips-000000.tar": 2,
        "clips-000001.tar": 1,
    }
    key, files = next(iter_shard(tokens / "clips-000000.tar"))
    assert key == "a__00000" and "000.jpg" not in files and json.loads(files["json"])["grid"] == [8, 8]
    dm = ShardDataModule(
        train_shards=str(tokens / "clips-*.tar"), val_shards=str(tokens / "clips-000000.tar"), batch_size=2,
        num_workers=0, num_frames=8, use_cached_tokens=True,
    )  # fmt: skip
    batch = batch_of(dm)
    tokens, text = batch.tokens, batch.text_tokens
    assert (
        tokens.global_.shape[:2] == (2, 8)
        and tokens.patches.shape[:3] == (2, 8, 64)
        and tokens.grid == (8, 8)
    )
    assert tokens.global_.dtype == torch.float16 and batch.frames is None and batch.text_ids is None
    assert batch.frame_mask.sum(1).tolist() == [6, 3] and tokens.global_[1, 3:].abs().sum() == 0
    assert text.words.shape[:2] == text.word_mask.shape == (2, 20) and text.sentence.ndim == 2


def test_cache_tokens_use_the_training_backbones_text_settings(tmp_path):
    """max_words / words_with_sentence of the training's `model.backbone` reach the cached text tokens."""
    cfg = small_config(tmp_path)
    argv = [f"--{k}={v}" for k, v in vars(cfg).items() if k not in ("cache_tokens", "pretrained", "backbone")]
    backbone = json.dumps({"max_words": 5, "words_with_sentence": True})
    assert main([*argv, "--cache_tokens", f"--model_name={TINY}", f"--backbone={backbone}"]) == 0
    tokens = Path(cfg.out) / "tokens"
    recorded = json.loads((tokens / "summary.json").read_text())["backbone"]["init_args"]
    assert recorded["max_words"] == 5 and recorded["words_with_sentence"] and recorded["model_name"] == TINY
    dm = ShardDataModule(
        train_shards=str(tokens / "clips-*.tar"), val_shards=str(tokens / "clips-000000.tar"), batch_size=2,
        num_workers=0, num_frames=8, use_cached_tokens=True,
    )  # fmt: skip
    text = batch_of(dm).text_tokens
    assert text.words.shape[:2] == (2, 5)
    expected = build_backbone(
        OpenClipConfig(model_name=TINY, pretrained=None, max_words=5, words_with_sentence=True)
    )
    assert expected.encode_text(expected.tokenize(["x"])).words.shape[1] == 5


def grounding_loss(frames: FrameTokens, frame_mask: torch.Tensor, text: TextTokens) -> torch.Tensor:
    """A stand-in training loss touching every cached tensor: symmetric NCE on masked-mean frame vs sentence
    tokens plus NCE on word-to-best-patch similarity (the shape of the paper's global + local terms)."""
    m = frame_mask.float()
    video = (frames.global_ * m[..., None]).sum(1) / m.sum(1, keepdim=True)
    scores = F.normalize(video, dim=-1) @ F.normalize(text.sentence, dim=-1).T / 0.07
    patches = F.normalize(frames.patches.flatten(1, 2), dim=-1)  # [Bv, U*N, D]
    words = F.normalize(text.words, dim=-1)  # [Bt, K, D]
    sim = torch.einsum("vpd,tkd->vtkp", patches, words)
    sim = sim.masked_fill(~frame_mask.repeat_interleave(frames.patches.shape[2], 1)[:, None, None], -2)
    wm = text.word_mask.float()
    local = (sim.amax(-1) * wm).sum(-1) / wm.sum(-1) / 0.07
    target = torch.arange(len(scores))
    nce = [F.cross_entropy(s, target) + F.cross_entropy(s.T, target) for s in (scores, local)]
    return sum(nce)


def test_loss_on_cached_tokens_equals_loss_on_the_fly(tmp_path):
    cfg = small_config(tmp_path, short_side=64)
    write_shards(cfg, progress=False)
    torch.manual_seed(0)
    backbone = build_backbone(OpenClipConfig(model_name=TINY, pretrained=None)).eval()
    shards = sorted(Path(cfg.out).glob("clips-*.tar"))
    cache_tokens(shards, Path(cfg.out) / "tokens", backbone, progress=False)
    common = dict(
        batch_size=2, num_workers=0, num_frames=8, inputs=OpenClipConfig(model_name=TINY).input_spec()
    )
    fly_dm = ShardDataModule(str(shards[0]), str(shards[0]), random_crop=False, **common)
    cached_path = str(Path(cfg.out) / "tokens" / shards[0].name)
    cached_dm = ShardDataModule(cached_path, cached_path, use_cached_tokens=True, **common)
    fly, cached = batch_of(fly_dm), batch_of(cached_dm)
    with torch.no_grad():
        loss_fly = grounding_loss(backbone.encode_frames(backbone.normalize(fly.frames)), fly.frame_mask,
                                  backbone.encode_text(fly.text_ids))  # fmt: skip
    frames, text = cached.tokens.to(torch.float32), cached.text_tokens.to(torch.float32)
    loss_cached = grounding_loss(frames, cached.frame_mask, text)
    assert loss_cached.item() == pytest.approx(loss_fly.item(), rel=1e-3)
    assert loss_fly.item() > 0.1  # not trivially zero


@pytest.mark.slow
def test_cached_tokens_of_real_clips_with_vit_b32_equal_the_backbone_on_their_frames(tmp_path, real_clips):
    """bikes.mp4 (640x272 H.264) → 224-px shards → tokens of a random-init ViT-B-32 at 224 px (the paper's
    shapes: 7x7 grid, 512-d): the cached tokens equal the backbone run on the same clip's frames."""
    from stg_lightning.data.prepare import PrepareConfig

    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "bikes.mp4").symlink_to(real_clips["bikes"])
    captions = {"bikes": {"start": [1.0, 5.0], "end": [3.0, 8.0], "text": ["ride a bike", "cross the road"]}}
    (tmp_path / "caption.json").write_text(json.dumps(captions))
    cfg = PrepareConfig(
        videos=str(tmp_path / "videos"), captions=str(tmp_path / "caption.json"), out=str(tmp_path / "out"),
        fps=2.0, num_frames=4, min_time=2.0, short_side=224, shard_size=2, workers=0,
    )  # fmt: skip
    write_shards(cfg, progress=False)
    torch.manual_seed(0)
    spec = OpenClipConfig(model_name="ViT-B-32", pretrained=None)
    backbone = build_backbone(spec).eval()
    shard = Path(cfg.out) / "clips-000000.tar"
    cache_tokens([shard], Path(cfg.out) / "tokens", backbone, progress=False)
    common = dict(batch_size=2, num_workers=0, num_frames=4, inputs=spec.input_spec())
    fly = batch_of(ShardDataModule(str(shard), str(shard), random_crop=False, **common))
    cached_path = str(Path(cfg.out) / "tokens" / shard.name)
    cached = batch_of(ShardDataModule(cached_path, cached_path, use_cached_tokens=True, **common))
    assert fly.frames.shape[-2:] == (224, 224) and cached.tokens.grid == (7, 7)
    assert cached.tokens.patches.shape[2:] == (49, 512) and fly.frame_mask.sum().item() == 8
    with torch.no_grad():
        tokens = backbone.encode_frames(backbone.normalize(fly.frames))
        text = backbone.encode_text(fly.text_ids)
    frames, words = cached.tokens.to(torch.float32), cached.text_tokens.to(torch.float32)
    # stored as fp16: equal to within its rounding
    torch.testing.assert_close(frames.global_, tokens.global_, atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(frames.patches, tokens.patches, atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(words.sentence, text.sentence, atol=2e-3, rtol=2e-3)
