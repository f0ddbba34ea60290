"""Aligned initialisation: start the two modalities' projections from the same random matrix.

The backbone already puts frames/patches and sentences/words in one space (CLIP's joint embedding).
Independent random projections of the two sides scramble that alignment, so an untrained head's
similarities and attention maps start at chance; projecting both sides with the same matrix keeps
cosine similarities approximately (Johnson–Lindenstrauss), and training departs from there.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def copy_init(source: nn.Linear, target: nn.Linear) -> None:
    """Give `target` the initial weights of `source` when their shapes match (else leave it random)."""
    if source.weight.shape == target.weight.shape:
        target.weight.copy_(source.weight)
        if source.bias is not None and target.bias is not None:
            target.bias.copy_(source.bias)
