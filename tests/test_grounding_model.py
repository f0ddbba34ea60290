"""GroundingModel's public API: a training step, pair scores and heat grids with nothing but its methods."""

import pytest
import torch
import torch.nn.functional as F

from stg_lightning.backbones import OpenClipConfig
from stg_lightning.losses import LossConfig, grounding_loss
from stg_lightning.model import GlobalHeadConfig, GroundingModel, LocalHeadConfig
from stg_lightning.selection import SelectionConfig
from stg_lightning.tokens import TextTokens

TEXTS = ["crack the egg", "pour milk", "stir the batter"]


def tiny_model(**selection) -> GroundingModel:
    torch.manual_seed(0)
    return GroundingModel(
        OpenClipConfig(model_name="stg-tiny-vit", pretrained=None, max_words=6),
        SelectionConfig(num_frames=2, **selection),
        GlobalHeadConfig(embed_dim=16),
        LocalHeadConfig(embed_dim=16, num_heads=2),
    )


def pixels(batch: int = 3, frames: int = 4) -> torch.Tensor:
    return torch.randint(0, 256, (batch, frames, 3, 64, 64), generator=torch.Generator().manual_seed(1)).to(
        torch.uint8
    )


def test_a_training_step_through_the_api_lowers_the_loss():
    model = tiny_model()
    video, mask = model.encode_video(pixels(), torch.ones(3, 4, dtype=torch.bool))
    text = model.encode_text(model.tokenize(TEXTS))
    params = [p for head in model.heads() for p in head.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(5):
        out = model(video, mask, text)
        loss = grounding_loss(LossConfig(temperature=0.1), out.scores)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(out.scores) == {"global", "local"} and out.selection.indices.shape == (3, 2)
    assert losses[-1] < losses[0]


def test_pair_scores_are_cosines_with_the_positive_on_the_diagonal():
    model = tiny_model().eval()
    video, mask = model.encode_video(pixels(), torch.ones(3, 4, dtype=torch.bool))
    text = model.encode_text(model.tokenize(TEXTS))
    selection = model.select_frames(video, mask, text)
    v, s = model.global_embeddings(video, mask, selection, text)
    glob = model.global_scores(v, s)
    expected = F.normalize(v, dim=-1) @ F.normalize(s, dim=-1).T  # oracle: plain cosine matrix
    torch.testing.assert_close(glob.video_to_text, expected)
    torch.testing.assert_close(glob.text_to_video, expected.T)
    assert glob.offset == 0
    selected = video.select(selection.indices)
    local = model.local_scores(selected.patches, selection.mask, text.words, text.word_mask)
    assert local.video_to_text.shape == (3, 3) and local.video_to_text.abs().max() <= 1 + 1e-6
    torch.testing.assert_close(local.text_to_video, local.video_to_text.T)
    # forward with one head scores only that head
    assert set(model(video, mask, text, heads=("local",)).scores) == {"local"}
    with pytest.raises(ValueError, match="unknown heads"):
        model(video, mask, text, heads=("middle",))


def test_negative_scores_equal_the_pair_scores_of_the_same_sentences():
    # Oracle: hand each clip the other clips' sentences as its negatives; each head's clip × negative score
    # must be that pair's entry of the full score matrix.
    model = tiny_model().eval()
    video, mask = model.encode_video(pixels(), torch.ones(3, 4, dtype=torch.bool))
    text = model.encode_text(model.tokenize(TEXTS))
    others = torch.tensor([[j for j in range(3) if j != i] for i in range(3)])
    negatives = TextTokens(
        text.sentence[others.flatten()], text.words[others.flatten()], text.word_mask[others.flatten()]
    )
    valid = torch.tensor([[True, False], [True, True], [False, True]])
    out = model(video, mask, text, negatives=negatives, negative_mask=valid)
    for head in ("global", "local"):
        scores = out.scores[head]
        torch.testing.assert_close(scores.video_to_negatives, scores.video_to_text.gather(1, others))
        assert scores.negative_mask is valid
    assert model(video, mask, text).scores["local"].video_to_negatives is None
    # Without a mask every negative counts.
    unmasked = model(video, mask, text, negatives=negatives).scores["global"].negative_mask
    assert unmasked.shape == (3, 2) and unmasked.all()


def test_a_sentence_token_local_head_reads_the_sentence_as_its_one_word():
    # Oracle: the same head fed the sentence token by hand as a one-word text.
    model = tiny_model().eval()
    torch.manual_seed(0)
    sentence_model = GroundingModel(
        OpenClipConfig(model_name="stg-tiny-vit", pretrained=None, max_words=6),
        SelectionConfig(num_frames=2),
        GlobalHeadConfig(embed_dim=16),
        LocalHeadConfig(embed_dim=16, num_heads=2, text_tokens="sentence"),
    ).eval()
    sentence_model.load_state_dict(model.state_dict())
    video, mask = model.encode_video(pixels(), torch.ones(3, 4, dtype=torch.bool))
    text = model.encode_text(model.tokenize(TEXTS))
    got = sentence_model(video, mask, text).scores["local"].video_to_text
    selection = model.select_frames(video, mask, text)  # selection still reads the words
    one_word = torch.ones(3, 1, dtype=torch.bool)
    patches = video.select(selection.indices).patches
    expected = model.local_scores(patches, selection.mask, text.sentence[:, None], one_word).video_to_text
    torch.testing.assert_close(got, expected)
    queries = sentence_model.encode_queries(TEXTS[:2])
    assert queries.words.shape[1] == 1 and queries.word_mask.all()
    with pytest.raises(ValueError, match="text_tokens"):
        LocalHeadConfig(text_tokens="phrases")


def test_the_sentence_prior_needs_the_sentence_token_in_the_last_word_slot():
    def build(words_with_sentence: bool) -> GroundingModel:
        return GroundingModel(
            OpenClipConfig(
                model_name="stg-tiny-vit",
                pretrained=None,
                max_words=6,
                words_with_sentence=words_with_sentence,
            ),
            SelectionConfig(num_frames=2),
            GlobalHeadConfig(embed_dim=16),
            LocalHeadConfig(
                embed_dim=16, num_heads=2, similarity_prior=1.0, similarity_prior_text="sentence"
            ),
        )

    with pytest.raises(ValueError, match="words_with_sentence=true"):
        build(False)
    model = build(True).eval()
    text = model.encode_text(model.tokenize(TEXTS))
    torch.testing.assert_close(text.words[:, -1], text.sentence)  # the slot the prior reads


def test_inference_api_gives_normalised_heat_grids_and_scores():
    model = tiny_model().eval()
    frames = model.normalize(pixels(1, 2).float() / 255.0)
    video, _ = model.encode_video(frames, torch.ones(1, 2, dtype=torch.bool))
    queries = model.encode_queries(["crack egg", "pour milk"])
    assert torch.allclose(queries.embedding.norm(dim=-1), torch.ones(2))
    heat = model.heat(video.patches[0], queries)
    h, w = model.grid
    assert heat.shape == (2, 2, h * w) and (heat >= 0).all()
    torch.testing.assert_close(heat.sum(-1), torch.ones(2, 2))
    scores = model.frame_query_scores(video, queries)
    assert scores.shape == (2, 2) and scores.abs().max() <= 1 + 1e-6
    cosines = model.patch_query_scores(video.patches[0], queries)
    assert cosines.shape == (2, 2, h * w)


def test_selection_space_uses_the_local_head_only_for_local_local():
    local = tiny_model(text_granularity="local", video_granularity="local")
    space = local.selection_space()
    assert space.patch is local.local_head.patch_proj and space.word is local.local_head.word_proj
    mixed = tiny_model(text_granularity="local", video_granularity="global")
    space = mixed.selection_space()
    assert space.word is mixed.global_head.text_proj and space.frame is mixed.global_head.frame_proj


def test_encode_video_normalises_uint8_frames_like_the_backbone():
    model = tiny_model().eval()
    raw = pixels(1, 2)
    from_uint8, _ = model.encode_video(raw, torch.ones(1, 2, dtype=torch.bool))
    from_float, _ = model.encode_video(model.normalize(raw), torch.ones(1, 2, dtype=torch.bool))
    torch.testing.assert_close(from_uint8.global_, from_float.global_)


def test_a_mixed_selection_cell_on_a_backbone_with_two_spaces_fails_at_build_time():
    # S3D-word2vec: 2048-d word tokens, 512-d sentence token. Text local × video global would put the words
    # through the sentence projection and fail at the first training step; it fails when the model is built.
    from stg_lightning.backbones import S3DConfig

    s3d = S3DConfig(vocabulary=["crack", "egg"], image_size=64)
    with pytest.raises(ValueError, match=r"word tokens \(dim 2048\).*selection.text_granularity=global"):
        GroundingModel(s3d, SelectionConfig(text_granularity="local", video_granularity="global"))
    model = GroundingModel(s3d, SelectionConfig(text_granularity="global", video_granularity="global"))
    assert model.backbone.word_dim != model.backbone.sentence_dim
    GroundingModel(s3d, SelectionConfig(strategy="random"))  # no similarity: nothing to project
