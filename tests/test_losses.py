import math

import pytest
import torch

from stg_lightning.losses import (
    LossConfig,
    chance_levels,
    grounding_loss,
    nce_loss,
    pair_nce_loss,
    retrieval_top1,
    swap_top1,
    uniform_nce,
)
from stg_lightning.model import PairScores

SCORES = torch.tensor([[0.9, 0.1], [0.2, 0.8]])


def test_nce_matches_hand_computation_with_margin():
    # margin 0.1 → positives 0.8 and 0.7. Each 2-way CE is log(1 + e^(neg - pos)):
    # v→t rows: log(1+e^-0.7) = 0.403186, log(1+e^-0.5) = 0.474077 → mean 0.438632
    # t→v cols: log(1+e^-0.6) = 0.437488 twice → mean 0.437488; total 0.876119
    loss = nce_loss(SCORES, margin=0.1)
    assert loss.item() == pytest.approx(0.8761194670186679, abs=1e-6)
    # temperature 0.5 doubles every logit: (log(1+e^-1.4) + log(1+e^-1.0))/2 + log(1+e^-1.2)
    assert nce_loss(SCORES, margin=0.1, temperature=0.5).item() == pytest.approx(0.5301220160563682, abs=1e-6)


def test_nce_gradcheck_in_double():
    scores = torch.randn(4, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: nce_loss(s, margin=0.2, temperature=0.7), (scores,))


def test_local_rows_with_offsets_average_to_the_full_batch_loss():
    scores = torch.randn(6, 6)
    full = nce_loss(scores, margin=0.05)
    per_rank = [
        nce_loss(scores[r * 3 : (r + 1) * 3], r * 3, 0.05, scores_t2v=scores.T[r * 3 : (r + 1) * 3])
        for r in range(2)
    ]
    torch.testing.assert_close(torch.stack(per_rank).mean(), full)


def test_nce_rejects_inconsistent_local_rows():
    with pytest.raises(ValueError, match="scores_t2v"):
        nce_loss(torch.randn(2, 4), positive_offset=2)
    with pytest.raises(ValueError, match="exceed"):
        nce_loss(torch.randn(2, 4), positive_offset=3, scores_t2v=torch.randn(2, 4))


def test_grounding_loss_weights_and_switching_a_term_off():
    torch.manual_seed(0)
    scores = {
        "global": PairScores(SCORES, SCORES.T),
        "local": PairScores(SCORES.flip(1), SCORES.flip(1).T),
    }
    both = grounding_loss(LossConfig(global_weight=2.0, local_weight=0.5), scores)
    torch.testing.assert_close(both["loss"], 2.0 * both["loss_global"] + 0.5 * both["loss_local"])
    torch.testing.assert_close(both["loss_global"], nce_loss(SCORES, margin=0.001))
    only_global = grounding_loss(LossConfig(local_weight=0.0), {"global": scores["global"]})
    assert "loss_local" not in only_global and LossConfig(local_weight=0.0).heads == ("global",)
    torch.testing.assert_close(only_global["loss"], both["loss_global"])
    with pytest.raises(ValueError, match="weights"):
        LossConfig(global_weight=0.0, local_weight=0.0)


def test_pair_scores_of_local_rows_use_their_offset():
    # rank 1 of 2 with 1 row each: its positive is column 1 in both directions
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    rank1 = PairScores(scores[1:], scores.T[1:], offset=1)
    expected = nce_loss(scores[1:], 1, 0.0, scores_t2v=scores.T[1:])
    torch.testing.assert_close(pair_nce_loss(rank1, 0.0, None), expected)


def test_retrieval_top1_counts_rows_whose_positive_scores_highest_in_both_directions():
    # Rank 1 of 2 with 2 local rows (offset 2): video→text hits both rows, text→video hits one of two.
    v2t = torch.tensor([[0.0, 0.1, 0.9, 0.2], [0.3, 0.0, 0.1, 0.8]])
    t2v = torch.tensor([[0.0, 0.0, 0.7, 0.1], [0.9, 0.0, 0.1, 0.2]])
    assert retrieval_top1(PairScores(v2t, t2v, offset=2)).item() == pytest.approx(0.75)


def test_swapped_negatives_join_the_video_to_text_softmax_only():
    # Row 0 gets one extra negative at 0.5, row 1 none (-inf), margin 0:
    # v→t row 0: -0.9 + log(e^0.9 + e^0.1 + e^0.5) = 0.751251; row 1: log(1 + e^-0.6) = 0.437488
    # t→v (no extras): log(1 + e^-0.7) = 0.403186 for both columns; total 0.594369 + 0.403186
    extra = torch.tensor([[0.5], [float("-inf")]])
    loss = nce_loss(SCORES, video_negatives=extra)
    assert loss.item() == pytest.approx(0.997555, abs=1e-5)
    scores = PairScores(SCORES, SCORES.T, 0, torch.tensor([[0.5], [7.0]]), torch.tensor([[True], [False]]))
    torch.testing.assert_close(pair_nce_loss(scores, 0.0, None), loss)


def test_swap_top1_counts_videos_whose_own_sentence_beats_every_valid_swap():
    # Row 0: positive 0.9 > swaps 0.5, 0.2 → win; row 1: 0.8 < 0.85 → loss; row 2 has no valid swap.
    v2t = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 0.3]])
    negatives = torch.tensor([[0.5, 0.2], [0.85, 0.0], [0.9, 0.9]])
    mask = torch.tensor([[True, True], [True, False], [False, False]])
    assert swap_top1(PairScores(v2t, v2t.T, 0, negatives, mask)).item() == pytest.approx(0.5)
    assert swap_top1(PairScores(v2t, v2t.T, 0, negatives, torch.zeros(3, 2, dtype=torch.bool))).isnan()


def test_uniform_nce_is_the_loss_of_a_constant_scorer():
    # Square batch of 3: ln 3 per direction.
    square = PairScores(torch.zeros(3, 3), torch.zeros(3, 3))
    assert uniform_nce(square).item() == pytest.approx(2 * math.log(3))
    assert uniform_nce(square).item() == pytest.approx(pair_nce_loss(square, 0.0, None).item())
    # Rows 1 of a 2-rank batch of 4 with 2 swaps for row 0 and 1 for row 1:
    # v→t (ln 6 + ln 5) / 2, t→v ln 4.
    v2t = torch.randn(2, 4)
    mask = torch.tensor([[True, True], [True, False]])
    rows = PairScores(v2t, torch.randn(2, 4), 2, torch.randn(2, 2), mask)
    expected = (math.log(6) + math.log(5)) / 2 + math.log(4)
    assert uniform_nce(rows).item() == pytest.approx(expected)
    constant = PairScores(torch.zeros(2, 4), torch.zeros(2, 4), 2, torch.zeros(2, 2), mask)
    assert pair_nce_loss(constant, 0.0, None).item() == pytest.approx(expected)


def test_chance_levels_weight_the_heads_as_the_loss_does():
    scores = {"global": PairScores(torch.zeros(4, 4), torch.zeros(4, 4))}
    scores["local"] = PairScores(torch.zeros(2, 2), torch.zeros(2, 2))
    chance = chance_levels(LossConfig(global_weight=0.5, local_weight=2.0), scores)
    assert chance["chance_loss_global"].item() == pytest.approx(2 * math.log(4))
    assert chance["chance_loss"].item() == pytest.approx(0.5 * 2 * math.log(4) + 2.0 * 2 * math.log(2))
    assert set(chance_levels(LossConfig(local_weight=0.0), scores)) == {"chance_loss_global", "chance_loss"}
