"""Token containers passed between backbone, frame selection and heads (see docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class FrameTokens:
    """Per-frame tokens of a clip batch: global [B, U, Dv] and patch grid [B, U, N, Dp] (row-major h×w)."""

    global_: Tensor
    patches: Tensor
    grid: tuple[int, int]

    def select(self, indices: Tensor) -> FrameTokens:
        """Gather frames along U with `indices` [B, T] (e.g. the frames a selector kept)."""
        b = torch.arange(indices.shape[0], device=indices.device)[:, None]
        return FrameTokens(self.global_[b, indices], self.patches[b, indices], self.grid)

    def to(self, dtype: torch.dtype) -> FrameTokens:
        return FrameTokens(self.global_.to(dtype), self.patches.to(dtype), self.grid)


@dataclass
class TextTokens:
    """Per-sentence tokens: sentence [B, Dt], words [B, K, Dw] and word_mask [B, K] (True = real word)."""

    sentence: Tensor
    words: Tensor
    word_mask: Tensor

    def to(self, dtype: torch.dtype) -> TextTokens:
        return TextTokens(self.sentence.to(dtype), self.words.to(dtype), self.word_mask)
