import pytest
import torch
import torch.nn.functional as F

from stg_lightning.model import GlobalHead, GlobalHeadConfig, LocalHead, LocalHeadConfig, rollout_heatmap
from stg_lightning.model.attention import MultiHeadAttention
from stg_lightning.model.patch_pooling import pooled_patch_scores
from stg_lightning.tokens import FrameTokens

VARIANTS = ["cross_self_cross", "self_cross", "cross_self", "cross_cross", "cross"]
# Every layer order under each score; `none` (no blocks) only means something with a score that pairs tokens.
HEADS = [(v, score) for score in ("pooled", "alignment") for v in [*VARIANTS, "none"]]
DP, DW, D = 12, 10, 16


def _head(variant: str = "cross_self_cross", **kw) -> LocalHead:
    torch.manual_seed(0)
    return LocalHead(DP, DW, LocalHeadConfig(embed_dim=D, num_heads=2, variant=variant, **kw)).eval()


def _inputs(bv: int = 3, bt: int = 5, t: int = 3, n: int = 4, k: int = 6):
    g = torch.Generator().manual_seed(1)
    patches = torch.randn(bv, t, n, DP, generator=g)
    patch_mask = torch.ones(bv, t, dtype=torch.bool)
    patch_mask[1, 2:] = False
    words = torch.randn(bt, k, DW, generator=g)
    word_mask = torch.ones(bt, k, dtype=torch.bool)
    word_mask[0, 4:] = False
    word_mask[2, 1:] = False
    return patches, patch_mask, words, word_mask


@pytest.mark.parametrize(("variant", "score"), HEADS)
def test_pairwise_shapes_chunking_and_diagonal(variant, score):
    head = _head(variant, chunk_size=2, score=score)
    patches, patch_mask, words, word_mask = _inputs()
    chunked = head.pairwise_scores(patches, patch_mask, words, word_mask)
    assert chunked.shape == (3, 5) and torch.isfinite(chunked).all()
    head.cfg.chunk_size = 64
    torch.testing.assert_close(chunked, head.pairwise_scores(patches, patch_mask, words, word_mask))
    matched = head.forward_pairs(patches, patch_mask, words[:3], word_mask[:3])
    torch.testing.assert_close(chunked.diagonal(), matched, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("variant", "score"), HEADS)
def test_padded_frames_and_words_do_not_change_scores(variant, score):
    head = _head(variant, score=score)
    patches, patch_mask, words, word_mask = _inputs()
    before = head.pairwise_scores(patches, patch_mask, words, word_mask)
    noisy_patches = torch.where(patch_mask[..., None, None], patches, 100 * torch.randn_like(patches))
    noisy_words = torch.where(word_mask[..., None], words, 100 * torch.randn_like(words))
    after = head.pairwise_scores(noisy_patches, patch_mask, noisy_words, word_mask)
    torch.testing.assert_close(before, after)


@torch.no_grad()
def _one_pair_at_a_time(head, patches, patch_mask, words, word_mask):
    """Scores [Bv, Bt] from one `forward_pairs` call per (video, text) pair."""
    rows = [
        torch.cat([head.forward_pairs(patches[[i]], patch_mask[[i]], words[[j]], word_mask[[j]])
                   for j in range(words.shape[0])])
        for i in range(patches.shape[0])
    ]  # fmt: skip
    return torch.stack(rows)


@pytest.mark.parametrize(("variant", "score"), HEADS)
def test_pairwise_scores_equal_one_forward_per_pair(variant, score):
    """The batched pair path (pooled last cross block for self_cross) against each pair on its own."""
    head = _head(variant, chunk_size=2, score=score).double()
    patches, patch_mask, words, word_mask = (x.double() if x.is_floating_point() else x for x in _inputs())
    patch_mask[0] = False  # a clip without any valid frame
    scores = head.pairwise_scores(patches, patch_mask, words, word_mask)
    torch.testing.assert_close(
        scores, _one_pair_at_a_time(head, patches, patch_mask, words, word_mask), atol=1e-12, rtol=0
    )


@pytest.mark.parametrize("prior_text", ["words", "sentence"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_similarity_prior_is_the_same_on_every_pair_path(variant, prior_text):
    torch.manual_seed(0)
    cfg = LocalHeadConfig(
        embed_dim=D, num_heads=2, variant=variant, chunk_size=2, similarity_prior=0.5,
        similarity_prior_text=prior_text,
    )  # fmt: skip
    head = LocalHead(DW, DW, cfg).double().eval()
    _, patch_mask, words, word_mask = _inputs()
    patches, words = torch.randn(3, 3, 4, DW).double(), words.double()
    scores = head.pairwise_scores(patches, patch_mask, words, word_mask)
    torch.testing.assert_close(
        scores, _one_pair_at_a_time(head, patches, patch_mask, words, word_mask), atol=1e-12, rtol=0
    )
    head.cfg.similarity_prior = 0.0
    assert not torch.allclose(scores, head.pairwise_scores(patches, patch_mask, words, word_mask))


@pytest.mark.parametrize("prior_text", ["words", "sentence"])
def test_similarity_prior_alone_is_the_softmax_of_the_backbone_cosines(prior_text):
    """With the learned logits zeroed (null queries), a word's attention over the regions is exactly
    softmax(w·cos(word, patch)/temperature) on the backbone's tokens; with the sentence's prior every word
    gets the last slot's (the sentence token's) softmax, and a region's attention over the words, biased
    alike for every word, stays uniform."""
    torch.manual_seed(0)
    w, temperature = 0.5, 0.1
    cfg = LocalHeadConfig(
        embed_dim=D, num_heads=2, variant="cross", similarity_prior=w, similarity_prior_text=prior_text
    )
    head = LocalHead(DW, DW, cfg)
    with torch.no_grad():
        for module in head.modules():
            if isinstance(module, MultiHeadAttention):
                module.query.weight.zero_()
                module.query.bias.zero_()
    patches, words = torch.randn(1, 2, 3, DW), torch.randn(1, 4, DW)
    maps, _, _ = head.attention_maps(
        patches, torch.ones(1, 2, dtype=torch.bool), words, torch.ones(1, 4).bool()
    )
    prior_words = words[0] if prior_text == "words" else words[0, -1:].expand(4, DW)
    cos = F.normalize(prior_words, dim=-1) @ F.normalize(patches[0].flatten(0, 1), dim=-1).T  # [K, R]
    expected = (w / temperature * cos).softmax(-1)
    word_to_region = maps[0][1]["word_to_region"][0]  # [H, K, R]
    torch.testing.assert_close(word_to_region, expected.expand_as(word_to_region))
    torch.testing.assert_close(maps[0][1]["region_to_word"][0, 0], (w / temperature * cos.T).softmax(-1))
    if prior_text == "sentence":
        torch.testing.assert_close(maps[0][1]["region_to_word"][0, 0], torch.full((6, 4), 0.25))


def test_checkpointed_chunks_give_the_same_gradients():
    head = _head(chunk_size=2)
    patches, patch_mask, words, word_mask = _inputs()
    grads = []
    for ckpt in (True, False):
        head.zero_grad()
        head.cfg.checkpoint = ckpt
        head.pairwise_scores(patches, patch_mask, words, word_mask).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in head.parameters()]))
    torch.testing.assert_close(grads[0], grads[1])


def test_attention_explicit_path_matches_fused_path():
    torch.manual_seed(0)
    for kind in ("cosine", "dot"):
        attn = MultiHeadAttention(D, 2, kind, temperature=0.1, dropout=0.0)
        x, ctx = torch.randn(2, 5, D), torch.randn(2, 7, D)
        mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]], dtype=torch.bool)
        fused, _ = attn(x, ctx, mask)
        explicit, maps = attn(x, ctx, mask, return_attention=True)
        torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
        assert maps.shape == (2, 2, 5, 7) and maps[0, ..., 3:].abs().sum() == 0


def _identity_attention(head: LocalHead) -> None:
    """Queries and keys unprojected (and identity input projections): a token attends most to its copy."""
    with torch.no_grad():
        for proj in (head.patch_proj, head.word_proj):
            proj.weight.copy_(torch.eye(D, proj.in_features))
            proj.bias.zero_()
        for module in head.modules():
            if isinstance(module, MultiHeadAttention):
                for lin in (module.query, module.key):
                    lin.weight.copy_(torch.eye(D))
                    lin.bias.zero_()


@pytest.mark.parametrize(("variant", "score"), [h for h in HEADS if h != ("none", "pooled")])
def test_rollout_sums_to_one_per_frame_and_finds_the_planted_region(variant, score):
    torch.manual_seed(0)
    cfg = LocalHeadConfig(embed_dim=D, num_heads=2, variant=variant, temperature=0.05, score=score)
    head = LocalHead(D, D, cfg)
    _identity_attention(head)
    patches = torch.randn(3, 4, D)
    words = torch.randn(1, 2, D)
    word_mask = torch.tensor([[True, False]])
    patches[1, 2] = words[0, 0]
    heat = rollout_heatmap(head, patches, words, word_mask)
    assert heat.shape == (3, 4) and (heat >= 0).all()
    torch.testing.assert_close(heat.sum(1), torch.ones(3))
    # The planted region wins its own frame, by far.
    assert int(heat[1].argmax()) == 2 and heat[1, 2] > 0.5
    if variant not in ("cross", "none"):
        # ... and the whole clip. Not for `cross` and `none`: heat is normalised per frame and, with no region mixing,
        # another frame's random patches can peak as sharply within their frame.
        assert divmod(int(heat.argmax()), 4) == (1, 2)


def test_alignment_score_and_its_heat_by_hand():
    """Identity projections, no blocks: a pair's score is the mean over valid words of Σ_r softmax(c/τ)_r·c_r,
    c the word's cosines with the valid regions; a frame's heat (inference rolls out one frame at a time) is
    that softmax over its patches, averaged over the valid words."""
    torch.manual_seed(0)
    tau = 0.2
    cfg = LocalHeadConfig(embed_dim=D, num_heads=2, variant="none", score="alignment", temperature=tau)
    head = LocalHead(D, D, cfg).double()
    _identity_attention(head)
    patches, words = torch.randn(2, 3, 4, D).double(), torch.randn(2, 3, D).double()
    patch_mask = torch.tensor([[True, True, False], [True, True, True]])
    word_mask = torch.tensor([[True, True, False], [True, False, False]])
    expected = torch.empty(2, 2).double()
    for i in range(2):
        regions = patches[i][patch_mask[i]].flatten(0, 1)
        for j in range(2):
            per_word = []
            for k in torch.nonzero(word_mask[j]).flatten():
                c = F.cosine_similarity(words[j, k][None], regions, dim=-1)
                per_word.append(((c / tau).softmax(0) * c).sum())
            expected[i, j] = torch.stack(per_word).mean()
    torch.testing.assert_close(head.pairwise_scores(patches, patch_mask, words, word_mask), expected)
    for t in range(3):
        heat = rollout_heatmap(head, patches[1, t : t + 1], words[:1], word_mask[:1])[0]
        c = F.normalize(words[0, :2], dim=-1) @ F.normalize(patches[1, t], dim=-1).T  # [2 words, N]
        torch.testing.assert_close(heat, (c / tau).softmax(-1).mean(0).float())


def test_centred_patches_ignore_what_a_frame_shares():
    """With `centre_patches`, adding one vector to every patch of a frame (a different one per frame) leaves
    every score unchanged; without it the scores move."""
    patches, patch_mask, words, word_mask = _inputs()
    shifted = patches + 3 * torch.randn(patches.shape[0], patches.shape[1], 1, DP)
    for centre in (True, False):
        head = _head("none", score="alignment", centre_patches=centre)
        before = head.pairwise_scores(patches, patch_mask, words, word_mask)
        after = head.pairwise_scores(shifted, patch_mask, words, word_mask)
        assert torch.allclose(before, after, atol=1e-5) == centre


def test_global_head_pooling_and_scores():
    torch.manual_seed(0)
    head = GlobalHead(6, 5, GlobalHeadConfig(embed_dim=4))
    frames = FrameTokens(torch.randn(2, 5, 6), torch.randn(2, 5, 3, 6), (1, 3))
    frame_mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    indices = torch.tensor([[0, 2, 3], [0, 1, 0]])
    sel_mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    emb = head.project_frames(frames.global_)
    assert emb.shape == (2, 5, 4) and head.project_text(torch.randn(2, 5)).shape == (2, 4)
    video = head.encode_video(frames, frame_mask, indices, sel_mask)
    torch.testing.assert_close(video[0], emb[0, [0, 2, 3]].mean(0))
    torch.testing.assert_close(video[1], emb[1, :2].mean(0))
    head.cfg.pool_all_frames = True
    torch.testing.assert_close(
        head.encode_video(frames, frame_mask, indices, sel_mask)[0], emb[0, :4].mean(0)
    )
    head.cfg.frame_pooling = "mean"
    torch.testing.assert_close(head.frame_inputs(frames), frames.patches.mean(2))
    text = torch.randn(3, 4)
    expected = F.cosine_similarity(video[:, None], text[None], dim=-1)
    torch.testing.assert_close(GlobalHead.scores(video, text), expected)


def test_bad_configs_and_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="variant"):
        LocalHeadConfig(variant="self_self")
    with pytest.raises(ValueError, match="divisible"):
        LocalHead(4, 4, LocalHeadConfig(embed_dim=10, num_heads=3))
    with pytest.raises(ValueError, match="similarity_prior needs patch and word tokens in one space"):
        LocalHead(DP, DW, LocalHeadConfig(embed_dim=D, num_heads=2, similarity_prior=1.0))
    with pytest.raises(ValueError, match="similarity_prior >= 0"):
        LocalHeadConfig(similarity_prior=-1.0)
    with pytest.raises(ValueError, match="score must be 'pooled' or 'alignment'"):
        LocalHeadConfig(score="max")
    with pytest.raises(ValueError, match="variant 'none' has none"):
        LocalHeadConfig(variant="none", similarity_prior=1.0)
    pooled_only = LocalHead(D, D, LocalHeadConfig(embed_dim=D, num_heads=2, variant="none"))
    with pytest.raises(ValueError, match=r"no attention to roll out; use local_head\.score=alignment"):
        rollout_heatmap(pooled_only, torch.randn(2, 3, D), torch.randn(1, 2, D), torch.ones(1, 2).bool())
    with pytest.raises(ValueError, match="similarity_prior_text must be 'words' or 'sentence'"):
        LocalHeadConfig(similarity_prior_text="eot")
    with pytest.raises(ValueError, match="frame_pooling"):
        GlobalHeadConfig(frame_pooling="max")
    with pytest.raises(ValueError, match="patch_mask"):
        _head().pairwise_scores(
            torch.randn(2, 3, DP), torch.ones(2, 3), torch.randn(2, 4, DW), torch.ones(2, 4)
        )


def test_aligned_init_keeps_backbone_similarities_and_can_be_turned_off():
    torch.manual_seed(0)
    tokens = torch.randn(6, 32)
    aligned = LocalHead(32, 32, LocalHeadConfig(embed_dim=16, num_heads=2))
    torch.testing.assert_close(aligned.patch_proj(tokens), aligned.word_proj(tokens))
    attention = aligned.blocks[0].region_to_word
    torch.testing.assert_close(attention.query.weight, attention.key.weight)
    independent = LocalHead(32, 32, LocalHeadConfig(embed_dim=16, num_heads=2, aligned_init=False))
    assert not torch.allclose(independent.patch_proj.weight, independent.word_proj.weight)
    glob = GlobalHead(32, 32, GlobalHeadConfig(embed_dim=16))
    torch.testing.assert_close(glob.project_frames(tokens), glob.project_text(tokens))
    # Different token dims cannot share a matrix: each side keeps its own random init.
    assert GlobalHead(32, 24, GlobalHeadConfig(embed_dim=16)).text_proj.weight.shape == (16, 24)


def test_pooled_patch_scores_between_mean_and_max():
    patches = F.normalize(torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(1)), dim=-1)
    texts = F.normalize(torch.randn(2, 4, generator=torch.Generator().manual_seed(2)), dim=-1)
    cos = torch.einsum("bnd,td->btn", patches, texts)
    torch.testing.assert_close(pooled_patch_scores(patches, texts, 0.0), cos.amax(-1))
    torch.testing.assert_close(pooled_patch_scores(patches, texts, 1e-4), cos.amax(-1), atol=1e-4, rtol=0)
    torch.testing.assert_close(pooled_patch_scores(patches, texts, 1e4), cos.mean(-1), atol=1e-4, rtol=0)
