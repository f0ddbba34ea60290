"""S3D-word2vec backbone: token shapes, grid/time mapping, MIL-NCE key names and checkpoints, tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stg_lightning.backbones import S3DConfig, S3DWord2VecBackbone, build_backbone
from stg_lightning.backbones.s3d import s3d_grid_side

VOCAB = ["crack", "egg", "cut", "tomato", "don't", "bowl"]


def s3d_cfg(**kw) -> S3DConfig:
    return S3DConfig(**{"vocabulary": VOCAB, "image_size": 64, **kw})


@pytest.fixture(scope="module")
def backbone() -> S3DWord2VecBackbone:
    torch.manual_seed(0)
    return build_backbone(s3d_cfg())


# Public MIL-NCE (s3d_howto100m.pth) names and shapes of representative parameters.
PUBLIC_SHAPES = {
    "conv1.conv1.weight": (64, 24, 2, 4, 4),
    "conv1.bn1.running_var": (64,),
    "conv_2b.conv1.weight": (64, 64, 1, 1, 1),
    "conv_2c.conv1.weight": (192, 64, 1, 3, 3),
    "conv_2c.conv2.weight": (192, 192, 3, 1, 1),
    "conv_2c.bn2.bias": (192,),
    "gating.fc.weight": (192, 192),
    "mixed_3b.conv_b0.conv1.weight": (64, 192, 1, 1, 1),
    "mixed_3b.conv_b1_b.conv2.weight": (128, 128, 3, 1, 1),
    "mixed_3b.gating_b3.fc.bias": (32,),
    "mixed_4f.conv_b3_b.conv1.weight": (128, 528, 1, 1, 1),
    "mixed_5c.conv_b0.conv1.weight": (384, 832, 1, 1, 1),
    "mixed_5c.conv_b2_b.bn1.weight": (128,),
    "fc.weight": (512, 1024),
    "text_module.word_embd.weight": (len(VOCAB) + 1, 300),
    "text_module.fc1.weight": (2048, 300),
    "text_module.fc2.weight": (512, 2048),
}


def public_state_dict(model: S3DWord2VecBackbone) -> dict[str, torch.Tensor]:
    """Random tensors under the public key names (no num_batches_tracked, like old BatchNorm checkpoints)."""
    torch.manual_seed(5)
    return {
        k.removeprefix("video."): torch.rand_like(v.float()) if v.is_floating_point() else v.clone()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


@pytest.mark.parametrize(("frames", "size", "steps", "grid"), [(16, 64, 2, (2, 2)), (32, 32, 4, (1, 1))])
def test_frame_tokens_per_eight_frames(backbone, frames, size, steps, grid):
    ft = backbone.encode_frames(torch.rand(1, frames, 3, size, size))
    assert ft.global_.shape == (1, steps, 512) and ft.grid == grid
    assert ft.patches.shape == (1, steps, grid[0] * grid[1], 512)
    assert backbone.temporal_stride == 8


def test_grid_side_by_hand():
    # 224: space-to-depth 112, pools (ceil) 56, 28, 14, 7.  112: 56, 28, 14, 7, 4.
    assert [s3d_grid_side(s) for s in (224, 112, 64, 32)] == [7, 4, 2, 1]
    assert build_backbone(S3DConfig(vocabulary=VOCAB)).grid == (7, 7)  # default 224 px


@pytest.mark.slow
def test_grid_is_7x7_at_224(backbone):
    assert backbone.encode_frames(torch.rand(1, 8, 3, 224, 224)).patches.shape == (1, 1, 49, 512)


def test_global_tokens_average_to_milnce_video_embedding(backbone):
    torch.manual_seed(1)
    frames = torch.rand(1, 16, 3, 64, 64)
    ft = backbone.encode_frames(frames)
    with torch.no_grad():
        video = backbone.video(frames.transpose(1, 2))
    torch.testing.assert_close(ft.global_.mean(dim=1), video)
    torch.testing.assert_close(ft.patches.mean(dim=2), ft.global_)  # fc is linear


def test_raw_patches_option():
    bb = build_backbone(s3d_cfg(project_patches=False))
    ft = bb.encode_frames(torch.rand(1, 8, 3, 32, 32))
    assert bb.patch_dim == 1024 and ft.patches.shape == (1, 1, 1, 1024)


def test_frame_count_must_be_multiple_of_eight(backbone):
    with pytest.raises(ValueError, match="multiple of 8"):
        backbone.encode_frames(torch.rand(1, 12, 3, 32, 32))


def test_tokenizer_by_hand(backbone):
    ids = backbone.tokenize(["Crack the EGG, into a bowl!", "don't cut", "zebra"])
    assert ids.shape == (3, 20)
    assert ids[0, :4].tolist() == [1, 2, 6, 0]  # "the", "into", "a" are not in the vocabulary
    assert ids[1, :3].tolist() == [5, 3, 0]
    assert ids[2].sum() == 0
    assert backbone.tokenize(["egg " * 30]).ne(0).sum() == 20  # truncated to K


def test_text_tokens_and_pooling(backbone):
    ids = backbone.tokenize(["crack egg", "zebra"])
    tt = backbone.encode_text(ids)
    assert tt.sentence.shape == (2, 512) and tt.words.shape == (2, 20, 2048)
    assert tt.word_mask.sum(1).tolist() == [2, 0]
    assert tt.words[~tt.word_mask].abs().sum() == 0
    text = backbone.text_module
    with torch.no_grad():
        # Released model: the max also sees padding (embedding row 0).
        hidden = torch.relu(text.fc1(text.word_embd(ids[0])))
        torch.testing.assert_close(tt.sentence[0], text.fc2(hidden.max(0).values))
        masked = build_backbone(s3d_cfg(pool_padding=False))
        masked.load_state_dict(backbone.state_dict())
        mt = masked.encode_text(ids)
        torch.testing.assert_close(mt.sentence[0], text.fc2(hidden[:2].max(0).values))
        torch.testing.assert_close(mt.sentence[1], text.fc2.bias)  # no words: pooled features are zero


def test_public_key_names_and_shapes(backbone):
    ours = {k.removeprefix("video."): tuple(v.shape) for k, v in backbone.state_dict().items()}
    for key, shape in PUBLIC_SHAPES.items():
        assert ours[key] == shape, key


def test_public_checkpoint_loads_strictly(backbone, tmp_path):
    state = public_state_dict(backbone)
    assert set(PUBLIC_SHAPES) <= set(state)
    path = tmp_path / "s3d_howto100m.pth"
    torch.save(state, path)
    loaded = build_backbone(s3d_cfg(checkpoint=str(path)))
    assert torch.equal(loaded.video.mixed_5c.conv_b0.conv1.weight, state["mixed_5c.conv_b0.conv1.weight"])
    assert torch.equal(loaded.text_module.fc2.weight, state["text_module.fc2.weight"])


def test_own_checkpoint_round_trip(backbone, tmp_path):
    path = tmp_path / "ours.pt"
    torch.save({"state_dict": backbone.state_dict()}, path)
    loaded = build_backbone(s3d_cfg(checkpoint=str(path)))
    for (name, a), b in zip(backbone.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_checkpoint_errors(backbone, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model\.backbone\.checkpoint"):
        build_backbone(s3d_cfg(checkpoint=str(tmp_path / "none.pth")))
    state = public_state_dict(backbone)
    path = tmp_path / "other_dict.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="word embeddings"):
        build_backbone(s3d_cfg(checkpoint=str(path), vocabulary=[*VOCAB, "extra"]))
    del state["fc.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"(?s)does not fit.*fc\.weight"):
        build_backbone(s3d_cfg(checkpoint=str(path)))


def test_dictionary_file(tmp_path):
    path = tmp_path / "s3d_dict.npy"
    np.save(path, np.array(VOCAB))
    bb = build_backbone(s3d_cfg(vocabulary=None, dictionary=str(path)))
    assert bb.tokenize(["cut tomato"])[0, :2].tolist() == [3, 4]
    np.save(path, np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"model\.backbone\.dictionary"):
        build_backbone(s3d_cfg(vocabulary=None, dictionary=str(path)))
    with pytest.raises(FileNotFoundError, match=r"model\.backbone\.dictionary"):
        build_backbone(s3d_cfg(vocabulary=None, dictionary=str(tmp_path / "none.npy")))
    with pytest.raises(ValueError, match="needs a word list"):
        build_backbone(s3d_cfg(vocabulary=None))


def test_frozen_keeps_batchnorm_in_eval(backbone):
    backbone.train()
    assert not backbone.video.conv1.bn1.training
    assert not any(p.requires_grad for p in backbone.parameters())
    before = backbone.video.conv1.bn1.running_mean.clone()
    ft = backbone.encode_frames(torch.rand(1, 8, 3, 32, 32))
    assert torch.equal(before, backbone.video.conv1.bn1.running_mean) and not ft.global_.requires_grad


def test_finetune_text_gets_gradients():
    bb = build_backbone(s3d_cfg(finetune=True))
    tt = bb.encode_text(bb.tokenize(["crack egg"]))
    (tt.sentence.sum() + tt.words.sum()).backward()
    assert bb.text_module.fc1.weight.grad.abs().sum() > 0


def test_words_with_sentence_is_not_an_s3d_option():
    with pytest.raises(TypeError, match="words_with_sentence"):
        s3d_cfg(words_with_sentence=True)
