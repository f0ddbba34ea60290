import pytest
import torch
import torch.nn.functional as F

from stg_lightning.selection import FrameSelector, SelectionConfig, SelectionSpace, plan_entropy, sinkhorn
from stg_lightning.tokens import FrameTokens, TextTokens


def _masks(b: int, k: int, u: int, k_valid: list[int], u_valid: list[int]):
    rows = torch.arange(k)[None] < torch.tensor(k_valid)[:, None]
    cols = torch.arange(u)[None] < torch.tensor(u_valid)[:, None]
    return rows, cols


def test_sinkhorn_marginals_are_uniform_over_valid_entries_and_padding_gets_zero():
    torch.manual_seed(0)
    sim = torch.randn(3, 5, 9)
    rows, cols = _masks(3, 5, 9, [5, 3, 1], [9, 6, 4])
    q = sinkhorn(sim, rows, cols, epsilon=0.5, iterations=200)
    for i in range(3):
        k, u = int(rows[i].sum()), int(cols[i].sum())
        torch.testing.assert_close(q[i, :k].sum(1), torch.full((k,), 1 / k), atol=1e-4, rtol=0)
        torch.testing.assert_close(q[i, :, :u].sum(0), torch.full((u,), 1 / u), atol=1e-4, rtol=0)
        assert q[i, k:].abs().sum() == 0 and q[i, :, u:].abs().sum() == 0


def test_sinkhorn_sample_without_valid_words_or_frames_is_all_zero_not_nan():
    sim = torch.randn(2, 4, 6)
    rows, cols = _masks(2, 4, 6, [0, 4], [6, 0])
    q = sinkhorn(sim, rows, cols, epsilon=0.05, iterations=3)
    assert torch.isfinite(q).all() and q.abs().sum() == 0


def _planted(u: int = 16, dim: int = 32, frames=(3, 7, 11)):
    """Three words; word j equals frame frames[j] (frame 11 the closest match); other frames random."""
    g = torch.Generator().manual_seed(0)
    video = F.normalize(torch.randn(1, u, dim, generator=g), dim=-1)
    words = F.normalize(torch.randn(1, len(frames), dim, generator=g), dim=-1)
    for j, f in enumerate(frames):
        video[0, f] = words[0, j] + (0.0 if f == 11 else 0.05) * torch.randn(dim, generator=g)
    patches = video[:, :, None].repeat(1, 1, 4, 1) + 0.01 * torch.randn(1, u, 4, dim, generator=g)
    frames_tok = FrameTokens(video, patches, (2, 2))
    text = TextTokens(words.mean(1), words, torch.ones(1, len(frames), dtype=torch.bool))
    return frames_tok, torch.ones(1, u, dtype=torch.bool), text


@pytest.mark.parametrize("strategy", ["sinkhorn", "topk"])
@pytest.mark.parametrize("video_granularity", ["global", "local"])
def test_planted_frames_are_selected_in_time_order(strategy, video_granularity):
    frames, mask, text = _planted()
    cfg = SelectionConfig(
        strategy=strategy, num_frames=3, use_raw_features=True, video_granularity=video_granularity
    )
    result = FrameSelector(cfg)(frames, mask, text)
    assert result.indices.tolist() == [[3, 7, 11]]
    assert result.indices.dtype == torch.long and result.mask.all()
    assert result.stats["mean_position"].item() == pytest.approx((3 + 7 + 11) / 3 / 15)


def test_sinkhorn_entropy_stat_falls_from_one_to_zero_as_epsilon_shrinks():
    frames, mask, text = _planted()
    entropy = [
        FrameSelector(SelectionConfig(num_frames=3, epsilon=eps, use_raw_features=True))(frames, mask, text)
        .stats["plan_entropy"]
        .item()
        for eps in (5.0, 0.5, 0.05, 0.01)
    ]
    assert entropy == sorted(entropy, reverse=True) and entropy[0] > 0.99 and entropy[-1] < 0.1
    uniform = sinkhorn(torch.zeros(1, 3, 16), *_masks(1, 3, 16, [3], [16]), epsilon=0.05, iterations=3)
    assert plan_entropy(uniform, *_masks(1, 3, 16, [3], [16])).item() == pytest.approx(1.0)


def test_clip_with_fewer_valid_frames_than_t_pads_with_invalid_entries():
    frames, _, text = _planted()
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, :2] = True
    result = FrameSelector(SelectionConfig(num_frames=4, use_raw_features=True))(frames, mask, text)
    assert result.indices[0, :2].tolist() == [0, 1]
    assert result.mask.tolist() == [[True, True, False, False]]


def test_none_keeps_every_frame_and_random_samples_valid_frames_reproducibly():
    frames, _, text = _planted()
    mask = torch.arange(16)[None] < 10
    kept = FrameSelector(SelectionConfig(strategy="none"))(frames, mask, text)
    assert kept.indices.tolist() == [list(range(16))] and torch.equal(kept.mask, mask)
    sel = FrameSelector(SelectionConfig(strategy="random", num_frames=4))
    a = sel(frames, mask, text, generator=torch.Generator().manual_seed(1))
    b = sel(frames, mask, text, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.indices, b.indices) and a.mask.all()
    idx = a.indices[0].tolist()
    assert idx == sorted(idx) and len(set(idx)) == 4 and max(idx) < 10


def test_selection_space_projects_each_side_and_raw_features_ignore_it():
    frames, _, text = _planted(dim=8)
    negate = SelectionSpace(frame=lambda x: -x, word=lambda x: x)
    cfg = SelectionConfig(text_granularity="local", video_granularity="global")
    sim, _ = FrameSelector(cfg).similarity(frames, text, negate)
    plain, _ = FrameSelector(cfg).similarity(frames, text)
    torch.testing.assert_close(sim, -plain)  # cosines flip sign with one side negated
    raw = SelectionConfig(text_granularity="local", video_granularity="global", use_raw_features=True)
    torch.testing.assert_close(FrameSelector(raw).similarity(frames, text, negate)[0], plain)


def test_raw_features_with_mismatched_dims_fail_with_a_clear_error():
    frames, mask, _ = _planted(dim=8)
    text = TextTokens(torch.randn(1, 6), torch.randn(1, 3, 6), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="use_raw_features"):
        FrameSelector(SelectionConfig(use_raw_features=True))(frames, mask, text)
