"""Word-swap sentence negatives (docs/method.md §5): a clip is also scored against its own narration with one
word swapped for another of the same group, e.g. "cut the tomato" → "cut the onion".

In-batch negatives differ from the positive in everything a clip shows, so a pooled clip↔sentence score can
win them by matching the scene as a whole. A swapped sentence differs in one word only: to prefer the
positive, a head has to tie that word to what the frames show. The groups are lists of interchangeable words
(a narration vocabulary's nouns, its verbs); they come from the text alone, not from boxes or labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import Tensor

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


@dataclass
class TextNegativesConfig:
    """per_clip: swapped sentences per training clip (0 switches them off); word_groups: lists of
    interchangeable words, a word is swapped only for another of its own group (matched case-insensitively)."""

    per_clip: int = 0
    word_groups: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.per_clip < 0:
            raise ValueError(f"negatives.per_clip must be >= 0, got {self.per_clip}")
        if self.per_clip and not any(len(g) >= 2 for g in self.word_groups):
            raise ValueError(
                "negatives.word_groups needs a group of at least 2 words when negatives.per_clip > 0, "
                f"got {self.word_groups}"
            )
        seen: dict[str, int] = {}
        for i, group in enumerate(self.word_groups):
            for word in group:
                if seen.setdefault(word.lower(), i) != i:
                    raise ValueError(f"negatives.word_groups: {word!r} is in two groups")


def swap_candidates(sentence: str, word_groups: list[list[str]]) -> list[str]:
    """Every sentence that swaps one grouped word of `sentence` for another word of its group (one not
    already in the sentence), in a fixed order."""
    group_of = {w.lower(): g for g in word_groups for w in g}
    present = {m.group().lower() for m in _WORD.finditer(sentence)}
    out = []
    for match in _WORD.finditer(sentence):
        group = group_of.get(match.group().lower())
        for other in group or ():
            if other.lower() not in present:
                out.append(sentence[: match.start()] + other + sentence[match.end() :])
    return out


def swapped_sentences(
    sentences: list[str], cfg: TextNegativesConfig, generator: torch.Generator | None = None
) -> tuple[list[str], Tensor]:
    """`cfg.per_clip` swapped sentences per sentence, drawn without replacement from `swap_candidates`
    → (B·K sentences, sentence-major, mask [B, K]). A sentence with fewer than K candidates fills its
    remaining slots with itself, masked False (no grouped word: no negative at all)."""
    k = cfg.per_clip
    out: list[str] = []
    mask = torch.zeros(len(sentences), k, dtype=torch.bool)
    for i, sentence in enumerate(sentences):
        candidates = swap_candidates(sentence, cfg.word_groups)
        order = torch.randperm(len(candidates), generator=generator)[:k].tolist()
        out += [candidates[j] for j in order] + [sentence] * (k - len(order))
        mask[i, : len(order)] = True
    return out, mask
