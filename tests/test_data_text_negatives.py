import pytest
import torch

from stg_lightning.data.text_negatives import TextNegativesConfig, swap_candidates, swapped_sentences

GROUPS = [["tomato", "egg", "onion"], ["shake", "spin"]]


def test_each_grouped_word_is_swapped_for_the_other_words_of_its_group():
    assert swap_candidates("now shake the Tomato gently", GROUPS) == [
        "now spin the Tomato gently",
        "now shake the egg gently",
        "now shake the onion gently",
    ]
    # A word already in the sentence is not a swap target; ungrouped sentences have none.
    assert swap_candidates("put the egg by the tomato", GROUPS) == [
        "put the onion by the tomato",
        "put the egg by the onion",
    ]
    assert swap_candidates("thanks for watching", GROUPS) == []


def test_swapped_sentences_draw_k_distinct_candidates_and_mask_missing_slots():
    cfg = TextNegativesConfig(per_clip=2, word_groups=GROUPS)
    sentences = ["spin the egg", "thanks for watching", "shake it"]
    out, mask = swapped_sentences(sentences, cfg, torch.Generator().manual_seed(0))
    assert len(out) == 6 and mask.tolist() == [[True, True], [False, False], [True, False]]
    assert len(set(out[:2])) == 2 and set(out[:2]) <= set(swap_candidates("spin the egg", GROUPS))
    assert out[2:4] == ["thanks for watching"] * 2 and out[4:] == ["spin it", "shake it"]
    again, _ = swapped_sentences(sentences, cfg, torch.Generator().manual_seed(0))
    assert again == out


def test_config_rejects_unusable_groups():
    with pytest.raises(ValueError, match="at least 2 words"):
        TextNegativesConfig(per_clip=1, word_groups=[["egg"]])
    with pytest.raises(ValueError, match="two groups"):
        TextNegativesConfig(word_groups=[["egg", "Onion"], ["onion", "spin"]])
    with pytest.raises(ValueError, match=">= 0"):
        TextNegativesConfig(per_clip=-1)
