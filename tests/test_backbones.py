"""open_clip backbone: token shapes and oracles, freezing, local attention, weight loading (tiny configs)."""

from __future__ import annotations

import time

import open_clip
import pytest
import torch

from stg_lightning.backbones import (
    BackboneWeightsUnavailable,
    InputSpec,
    OpenClipBackbone,
    OpenClipConfig,
    S3DConfig,
    backbone_config,
    build_backbone,
    config_to_dict,
    open_clip_weights,
)
from stg_lightning.backbones.open_clip_backbone import local_attention_mask

TINY = "stg-tiny-vit"


def tiny_cfg(**kw) -> OpenClipConfig:
    return OpenClipConfig(**{"model_name": TINY, "pretrained": None, **kw})


def seeded_pair(name: str) -> tuple[open_clip.model.CLIP, OpenClipBackbone]:
    """An open_clip model and our backbone with identical random weights (same seed, same constructor)."""
    torch.manual_seed(0)
    model = open_clip.create_model(name).eval()
    torch.manual_seed(0)
    return model, OpenClipBackbone(tiny_cfg(model_name=name))


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 3, 3, 64, 64)


def test_tokens_shapes_and_attributes(frames):
    bb = build_backbone(tiny_cfg())
    ft = bb.encode_frames(frames)
    tt = bb.encode_text(bb.tokenize(["crack egg", "stir the soup"]))
    assert ft.global_.shape == (2, 3, 128) and ft.patches.shape == (2, 3, 64, 128) and ft.grid == (8, 8)
    assert (
        tt.sentence.shape == (2, 128) and tt.words.shape == (2, 20, 128) and tt.word_mask.dtype == torch.bool
    )
    assert (bb.frame_dim, bb.patch_dim, bb.sentence_dim, bb.word_dim) == (128, 128, 128, 128)
    assert (bb.grid, bb.image_size, bb.max_words, bb.temporal_stride) == ((8, 8), 64, 20, 1)
    assert bb.mean == open_clip.OPENAI_DATASET_MEAN and bb.std == open_clip.OPENAI_DATASET_STD


@pytest.mark.parametrize("name", ["stg-tiny-vit", "stg-tiny-rn"])
def test_global_tokens_match_open_clip(name, frames):
    model, bb = seeded_pair(name)
    ft = bb.encode_frames(frames)
    ids = bb.tokenize(["crack egg", "cut the tomato into slices"])
    with torch.no_grad():
        image = model.encode_image(frames.flatten(0, 1)).view(2, 3, -1)
        text = model.encode_text(ids)
    torch.testing.assert_close(ft.global_, image)
    torch.testing.assert_close(bb.encode_text(ids).sentence, text)


def test_vit_patches_are_projected_ln_post_tokens(frames):
    model, bb = seeded_pair(TINY)
    model.visual.output_tokens = True
    with torch.no_grad():
        _, tokens = model.visual(frames.flatten(0, 1))
    expected = (tokens @ model.visual.proj).view(2, 3, 64, 128)
    torch.testing.assert_close(bb.encode_frames(frames).patches, expected)


def test_resnet_patches_are_maskclip_value_projections():
    # MaskCLIP: a grid cell's token is the attention pool's value + output projection of that cell.
    _, bb = seeded_pair("stg-tiny-rn")
    torch.manual_seed(2)
    x = torch.randn(1, 2, 3, 64, 64)
    ft = bb.encode_frames(x)
    rn = bb.visual
    with torch.no_grad():
        fmap = rn.layer4(rn.layer3(rn.layer2(rn.layer1(rn.stem(x.flatten(0, 1))))))
        cell = fmap[:, :, 1, 0] + rn.attnpool.positional_embedding[1 + 2]  # row 1, col 0 → index 2
        expected = rn.attnpool.c_proj(rn.attnpool.v_proj(cell))
    assert ft.grid == (2, 2) and ft.patches.shape == (1, 2, 4, 128)
    torch.testing.assert_close(ft.patches[0, :, 2], expected)


def test_word_mask_counts_bpe_tokens_and_truncates_to_k():
    bb = OpenClipBackbone(tiny_cfg(max_words=5))
    texts = ["crack egg", "pour the milk slowly", "one two three four five six seven"]
    bpe_counts = [len(bb.tokenizer.encode(t)) for t in texts]
    tt = bb.encode_text(bb.tokenize(texts))
    assert tt.word_mask.sum(1).tolist() == [min(n, 5) for n in bpe_counts]
    assert bpe_counts[2] > 5
    assert tt.words[~tt.word_mask].abs().sum() == 0  # padding is zero


def test_words_with_sentence_put_the_eot_token_in_the_last_word_slot():
    plain = OpenClipBackbone(tiny_cfg(max_words=5))
    with_eot = OpenClipBackbone(tiny_cfg(max_words=5, words_with_sentence=True))
    with_eot.load_state_dict(plain.state_dict())
    ids = plain.tokenize(["crack egg", "one two three four five six seven"])
    a, b = plain.encode_text(ids), with_eot.encode_text(ids)
    assert b.words.shape == a.words.shape  # still K slots
    torch.testing.assert_close(b.words[:, -1], a.sentence)
    assert b.word_mask[:, -1].all() and b.word_mask.sum(1).tolist() == [3, 5]
    torch.testing.assert_close(b.words[:, :4], a.words[:, :4])  # the first K-1 words are unchanged
    torch.testing.assert_close(b.sentence, a.sentence)
    # One slot: the sentence token alone, a valid word.
    only = OpenClipBackbone(tiny_cfg(max_words=1, words_with_sentence=True))
    only.load_state_dict(plain.state_dict())
    c = only.encode_text(ids)
    assert c.words.shape[1] == 1 and c.word_mask.tolist() == [[True], [True]]
    torch.testing.assert_close(c.words[:, 0], a.sentence)


def test_words_follow_causal_prefixes():
    # The text transformer is causal: word tokens of a prefix sentence equal those of the longer one.
    bb = OpenClipBackbone(tiny_cfg())
    tt = bb.encode_text(bb.tokenize(["crack egg", "crack egg into bowl"]))
    torch.testing.assert_close(tt.words[0, :2], tt.words[1, :2])
    assert not torch.allclose(tt.sentence[0], tt.sentence[1])


def test_frozen_backbone_builds_no_graph(frames):
    bb = OpenClipBackbone(tiny_cfg())
    bb.train()
    assert not bb.training and not any(m.training for m in bb.modules())
    assert not any(p.requires_grad for p in bb.parameters())
    ft = bb.encode_frames(frames.clone().requires_grad_(True))
    tt = bb.encode_text(bb.tokenize(["crack egg"]))
    assert not ft.global_.requires_grad and not ft.patches.requires_grad and not tt.words.requires_grad


def test_finetune_backbone_gets_gradients(frames):
    bb = OpenClipBackbone(tiny_cfg(finetune=True))
    bb.train()
    assert bb.training and all(p.requires_grad for p in bb.parameters())
    ft = bb.encode_frames(frames)
    tt = bb.encode_text(bb.tokenize(["crack egg"]))
    (ft.global_.sum() + ft.patches.sum() + tt.sentence.sum() + tt.words.sum()).backward()
    assert bb.visual.conv1.weight.grad.abs().sum() > 0
    assert bb.text.token_embedding.weight.grad.abs().sum() > 0


def test_local_attention_mask_by_hand():
    mask = local_attention_mask((3, 3), radius=1)
    allowed = mask == 0
    assert mask.shape == (10, 10) and allowed[0].all()  # CLS sees everything
    assert not allowed[1:, 0].any()  # patches never see CLS
    assert allowed[1 + 4, 1:].all()  # the centre patch sees the whole 3×3 grid
    assert allowed[1 + 0, 1:].tolist() == [True, True, False, True, True, False, False, False, False]


def test_local_attention_keeps_far_patches_unchanged(frames):
    bb = OpenClipBackbone(tiny_cfg(model_name="stg-tiny-vit-local"))  # radius 1 by default, 2 layers
    assert bb.vit_attn_mask is not None
    changed = frames.clone()
    changed[:, :, :, :8, :8] += 1.0  # pixels of the top-left patch only
    a, b = bb.encode_frames(frames), bb.encode_frames(changed)
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    reach = torch.maximum(rows, cols).flatten()
    assert torch.equal(a.patches[:, :, reach > 2], b.patches[:, :, reach > 2])  # beyond 2 layers × radius 1
    assert not torch.equal(a.patches[:, :, reach == 2], b.patches[:, :, reach == 2])
    assert not torch.allclose(a.patches[:, :, 0], b.patches[:, :, 0])
    assert not torch.allclose(a.global_, b.global_)
    # Global attention (the plain tiny ViT) spreads the change everywhere.
    g = OpenClipBackbone(tiny_cfg())
    assert not torch.allclose(
        g.encode_frames(frames).patches[:, :, -1], g.encode_frames(changed).patches[:, :, -1]
    )


def test_a_global_last_layer_mixes_far_patches_in_and_local_layers_do_not(frames):
    """stg-tiny-vit-clip: 2 local layers (radius 1) then a global one; with all 3 local, a change of the
    top-left patch reaches 3 patches far, with the global layer every patch."""
    changed = frames.clone()
    changed[:, :, :, :8, :8] += 1.0
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    far = torch.maximum(rows, cols).flatten() > 3
    local = OpenClipBackbone(tiny_cfg(model_name="stg-tiny-vit-clip", local_attention_layers=3))
    clip = OpenClipBackbone(tiny_cfg(model_name="stg-tiny-vit-clip"))
    assert (local.local_layers, clip.local_layers) == (3, 2)
    clip.load_state_dict(local.state_dict())
    a, b = local.encode_frames(frames), local.encode_frames(changed)
    assert torch.equal(a.patches[:, :, far], b.patches[:, :, far])
    a, b = clip.encode_frames(frames), clip.encode_frames(changed)
    assert not torch.isclose(a.patches[:, :, far], b.patches[:, :, far]).all(-1).any()
    with pytest.raises(ValueError, match=r"local_attention_layers must be in \[0, 3\].*got 4"):
        OpenClipBackbone(tiny_cfg(model_name="stg-tiny-vit-clip", local_attention_layers=4))


def test_local_radius_rejected_for_resnet():
    with pytest.raises(ValueError, match="ViT"):
        OpenClipBackbone(tiny_cfg(model_name="stg-tiny-rn", local_attention_radius=1))


@pytest.mark.parametrize("wrap", ["raw", "state_dict_module"])
def test_pretrained_local_file_round_trip(tmp_path, frames, wrap):
    torch.manual_seed(3)
    model = open_clip.create_model(TINY).eval()
    state = model.state_dict()
    if wrap == "state_dict_module":
        state = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    path = tmp_path / "tiny.pt"
    torch.save(state, path)
    bb = OpenClipBackbone(tiny_cfg(pretrained=str(path)))
    with torch.no_grad():
        expected = model.encode_image(frames.flatten(0, 1)).view(2, 3, -1)
    torch.testing.assert_close(bb.encode_frames(frames).global_, expected, rtol=0, atol=0)


def test_exported_weights_load_through_pretrained_path(tmp_path, frames):
    # The synthetic demo pretrains a tiny backbone, saves it, and reloads it frozen via pretrained=<path>.
    trained = OpenClipBackbone(tiny_cfg(model_name="stg-tiny-vit-local", finetune=True))
    with torch.no_grad():
        trained.text.token_embedding.weight.mul_(2.0)
        trained.visual.proj.add_(0.1)
    path = tmp_path / "synthetic_clip.pt"
    torch.save(trained.open_clip_state_dict(), path)
    loaded = OpenClipBackbone(tiny_cfg(model_name="stg-tiny-vit-local", pretrained=str(path)))
    ids = trained.tokenize(["crack egg"])
    with torch.no_grad():
        a, b = trained.eval().encode_frames(frames), loaded.encode_frames(frames)
        torch.testing.assert_close(a.patches, b.patches, rtol=0, atol=0)
        torch.testing.assert_close(
            trained.encode_text(ids).words, loaded.encode_text(ids).words, rtol=0, atol=0
        )
    assert set(open_clip.create_model("stg-tiny-vit-local").state_dict()) == set(torch.load(path))


def test_pretrained_file_of_other_model_is_rejected(tmp_path):
    path = tmp_path / "rn.pt"
    torch.save(open_clip.create_model("stg-tiny-rn").state_dict(), path)
    with pytest.raises(ValueError, match="does not fit open_clip model"):
        OpenClipBackbone(tiny_cfg(pretrained=str(path)))


def test_missing_pretrained_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model\.backbone\.pretrained.*missing\.pt"):
        OpenClipBackbone(tiny_cfg(pretrained=str(tmp_path / "missing.pt")))


def test_unknown_tag_lists_known_tags():
    with pytest.raises(ValueError, match="neither a file nor a pretrained tag"):
        OpenClipBackbone(tiny_cfg(pretrained="openai"))


@pytest.mark.parametrize("mode", ["download_off", "no_network", "hf_offline_env"])
def test_uncached_tag_without_network_raises_quickly(tmp_path, monkeypatch, mode):
    # Never touches the network: download disabled, the reachability probe patched to fail, or HF offline.
    kw = {"download": mode != "download_off"}
    monkeypatch.setattr(open_clip_weights, "_reachable", lambda host: False)
    if mode == "hf_offline_env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = OpenClipConfig(model_name="ViT-B-32", pretrained="laion2b_s34b_b79k", cache_dir=str(tmp_path), **kw)
    start = time.monotonic()
    with pytest.raises(BackboneWeightsUnavailable) as err:
        build_backbone(cfg)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert "ViT-B-32" in message and "laion2b_s34b_b79k" in message
    assert "--model.backbone.pretrained=/path/to/file.pt" in message


def test_cached_tag_is_loaded_from_cache(tmp_path, monkeypatch, frames):
    # A tag whose file is already in the cache loads without any network access.
    torch.manual_seed(4)
    model = open_clip.create_model(TINY).eval()
    cached = tmp_path / "tiny_cached.pt"
    torch.save(model.state_dict(), cached)
    monkeypatch.setattr(
        open_clip, "get_pretrained_cfg", lambda name, tag: {"url": "https://x/tiny_cached.pt"}
    )
    monkeypatch.setattr(open_clip_weights, "_reachable", lambda host: pytest.fail("network probed"))
    bb = OpenClipBackbone(tiny_cfg(pretrained="sometag", cache_dir=str(tmp_path)))
    with torch.no_grad():
        expected = model.encode_image(frames.flatten(0, 1)).view(2, 3, -1)
    torch.testing.assert_close(bb.encode_frames(frames).global_, expected)


def test_a_quick_gelu_tag_builds_quick_gelu_towers_and_checkpoints_keep_them(tmp_path, monkeypatch, frames):
    # OpenAI's CLIP weights were trained with QuickGELU; open_clip's tag config says so. Built with
    # pretrained=None and loaded after, the model must still use QuickGELU (and its rebuild from a training
    # checkpoint, with no tag left, too): else every feature is silently off.
    torch.manual_seed(5)
    model = open_clip.create_model(TINY, force_quick_gelu=True).eval()
    cached = tmp_path / "quick.pt"
    torch.save(model.state_dict(), cached)
    tag = {"url": "https://x/quick.pt", "quick_gelu": True}
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda name, t: tag if t == "quicktag" else {})
    cfg = tiny_cfg(pretrained="quicktag", cache_dir=str(tmp_path))
    bb = OpenClipBackbone(cfg)
    with torch.no_grad():
        expected = model.encode_image(frames.flatten(0, 1)).view(2, 3, -1)
        gelu = open_clip.create_model(TINY).eval()
        gelu.load_state_dict(model.state_dict())
        plain = gelu.encode_image(frames.flatten(0, 1)).view(2, 3, -1)
    torch.testing.assert_close(bb.encode_frames(frames).global_, expected)
    assert not torch.allclose(plain, expected)  # the activation matters: this test can fail
    rebuilt = cfg.without_weights()
    assert (rebuilt.pretrained, rebuilt.quick_gelu) == (None, True)
    assert any(type(m).__name__ == "QuickGELU" for m in OpenClipBackbone(rebuilt).modules())
    assert not tiny_cfg().uses_quick_gelu()


def test_normalize_uses_clip_statistics():
    bb = OpenClipBackbone(tiny_cfg())
    white = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    expected = (1 - torch.tensor(bb.mean)) / torch.tensor(bb.std)
    torch.testing.assert_close(bb.normalize(white)[0, :, 0, 0], expected)
    torch.testing.assert_close(bb.normalize(white.float() / 255), bb.normalize(white))


def test_bad_inputs_raise_clear_errors(frames):
    bb = OpenClipBackbone(tiny_cfg())
    with pytest.raises(ValueError, match="expects 64×64"):
        bb.encode_frames(torch.zeros(1, 2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\[B, U, 3, H, W\]"):
        bb.encode_frames(frames[0])
    with pytest.raises(TypeError, match="not a backbone config"):
        build_backbone({"model_name": TINY})
    with pytest.raises(ValueError, match="not an open_clip model"):
        build_backbone(tiny_cfg(model_name="no-such-model"))


def test_backbone_configs_round_trip_through_checkpoint_dicts():
    clip, s3d = tiny_cfg(max_words=5), S3DConfig(vocabulary=["egg"], embed_dim=16)
    for cfg in (clip, s3d):
        stored = config_to_dict(cfg)
        assert stored["class_path"] == f"stg_lightning.backbones.{type(cfg).__name__}"
        assert backbone_config(stored) == cfg
    assert backbone_config({"embed_dim": 16}) == S3DConfig(embed_dim=16)  # fields name the class, as the CLI
    assert backbone_config(None) == OpenClipConfig()
    with pytest.raises(ValueError, match="not a backbone config"):
        backbone_config({"class_path": "builtins.dict", "init_args": {}})
    assert (
        clip.without_weights().pretrained is None
        and S3DConfig(checkpoint="x").without_weights().checkpoint is None
    )


def test_input_spec_follows_the_model_config():
    # stg-tiny-vit: 64 px, context length 32 (model_configs/stg-tiny-vit.json); ViT-B-32: 224 px, 77 tokens
    assert tiny_cfg().input_spec() == InputSpec(image_size=64, tokenizer=TINY, context_length=32)
    assert OpenClipConfig().input_spec() == InputSpec(image_size=224, tokenizer="ViT-B-32", context_length=77)
    assert tiny_cfg(image_size=96).input_spec().image_size == 96
    assert S3DConfig(image_size=112).input_spec() == InputSpec(image_size=112, tokenizer=None)


def test_building_without_pretrained_weights_does_not_claim_a_random_model(caplog):
    # open_clip warns "Model initialized randomly" for every pretrained=None build, also when a training
    # checkpoint's weights are loaded right after (`stg eval --ckpt`): that warning is dropped.
    with caplog.at_level("WARNING"):
        build_backbone(tiny_cfg())
    assert "initialized randomly" not in caplog.text
