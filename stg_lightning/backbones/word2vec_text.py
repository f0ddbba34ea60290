"""MIL-NCE text side: word2vec dictionary tokenizer and the sentence module (fc1 → ReLU → max → fc2)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from stg_lightning.backbones.checkpoints import checkpoint_file

PAD_ID = 0
# The released model was trained on lower-cased words matched by this pattern (letters, digits, _ and ').
_WORD = re.compile(r"[\w']+")


def load_dictionary(path: str | Path) -> list[str]:
    """Word list of MIL-NCE's `s3d_dict.npy` (a 1-D string array; word i has token id i + 1)."""
    file = checkpoint_file(path, "model.backbone.dictionary")
    try:
        words = np.load(file, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"model.backbone.dictionary: {file} is not a 1-D string .npy array: {err}") from err
    if words.ndim != 1 or words.dtype.kind not in "US":
        raise ValueError(f"model.backbone.dictionary: {file} must be a 1-D string array, got {words.dtype}")
    return [str(w) for w in words]


class Word2VecTokenizer:
    """Lower-case, split into words, keep dictionary words (others dropped), pad/truncate to max_words."""

    def __init__(self, vocabulary: Sequence[str], max_words: int) -> None:
        self.word_to_id = {word: i + 1 for i, word in enumerate(vocabulary)}  # 0 = padding
        self.max_words = max_words

    def __len__(self) -> int:
        return len(self.word_to_id) + 1

    def __call__(self, texts: Sequence[str]) -> Tensor:
        ids = torch.full((len(texts), self.max_words), PAD_ID, dtype=torch.long)
        for row, text in enumerate(texts):
            known = [self.word_to_id[w] for w in _WORD.findall(str(text).lower()) if w in self.word_to_id]
            known = known[: self.max_words]
            ids[row, : len(known)] = torch.tensor(known, dtype=torch.long)
        return ids


class Word2VecSentence(nn.Module):
    """MIL-NCE sentence embedding; parameter names match the public checkpoint's `text_module.*`.

    Word tokens are the per-word fc1 features (after ReLU, `hidden_dim` wide); the sentence is fc2 of
    their max over words. `pool_padding` includes padding positions in the max, as the released model did.
    """

    def __init__(
        self, num_embeddings: int, word_dim: int, hidden_dim: int, embed_dim: int, pool_padding: bool
    ) -> None:
        super().__init__()
        self.word_embd = nn.Embedding(num_embeddings, word_dim)
        self.fc1 = nn.Linear(word_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, embed_dim)
        self.pool_padding = pool_padding

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """ids [B, K] → sentence [B, embed_dim], words [B, K, hidden_dim] (zero at padding), mask [B, K]."""
        mask = ids != PAD_ID
        hidden = F.relu(self.fc1(self.word_embd(ids)))
        words = hidden * mask[..., None].to(hidden.dtype)
        # ReLU features are >= 0, so zeroed padding never wins the max over real words.
        pooled = (hidden if self.pool_padding else words).max(dim=1).values
        return self.fc2(pooled), words, mask
