"""Frame–text scores read from patch tokens: softmax-over-patches pooling of patch–text cosines.

Shared by backbone pretraining (its patch-level term) and inference (`temporal="patch_pool"`), so that the
score the backbone was pretrained with is the score the evaluation reads.
"""

from __future__ import annotations

import torch
from torch import Tensor


def patch_cosines(patches: Tensor, texts: Tensor) -> Tensor:
    """Cosines [B, T, N] of L2-normalised patches [B, N, D] with L2-normalised texts [T, D]."""
    return torch.einsum("bnd,td->btn", patches, texts)


def softmax_pool(cosines: Tensor, temperature: float) -> Tensor:
    """[..., N] → [...]: the softmax(cos / temperature)-weighted mean of the cosines (temperature 0: max)."""
    if temperature == 0:
        return cosines.amax(-1)
    return ((cosines / temperature).softmax(-1) * cosines).sum(-1)


def pooled_patch_scores(patches: Tensor, texts: Tensor, temperature: float) -> Tensor:
    """Frame–text scores [B, T] from L2-normalised patches [B, N, D] and texts [T, D]."""
    return softmax_pool(patch_cosines(patches, texts), temperature)
