"""Symmetric NCE with margin (paper Eq. 1, DESIGN §3.5) for the global and local heads, across ranks.

Scaling convention under DDP with world size W: each rank returns the mean over its *local* rows
(local videos × all texts, local texts × all videos), so the mean of the W per-rank losses equals the
single-process loss on the concatenated batch. Gathers keep autograd and route gradients back to the owner
(summed over ranks), so each rank's gradient is that of Σ_r loss_r; DDP's averaging (÷W) then makes
parameter gradients equal to the single-process ones. (The raw gradient of a rank's own input tensors is
W × the single-process gradient before that averaging.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from stg_lightning.distributed import gather_no_grad, gather_with_grad, rank, world_size
from stg_lightning.model.global_head import GlobalHead
from stg_lightning.model.local_head import LocalHead


@dataclass
class LossConfig:
    """Weights of L_global and L_local (0 switches a head's loss off, Table 6); margin δ subtracted from the
    positive logit (0 reproduces the authors' code); temperature τ divides all logits (None: τ = 1)."""

    global_weight: float = 1.0
    local_weight: float = 1.0
    margin: float = 0.001
    temperature: float | None = None

    def __post_init__(self) -> None:
        if min(self.global_weight, self.local_weight) < 0 or self.global_weight + self.local_weight == 0:
            raise ValueError(f"LossConfig: weights must be >= 0 and not both 0, got {self}")
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError(f"LossConfig.temperature must be > 0 or None, got {self.temperature}")


def _one_direction(scores: Tensor, offset: int, margin: float, temperature: float | None) -> Tensor:
    rows = torch.arange(scores.shape[0], device=scores.device)
    target = rows + offset
    logits = scores.index_put((rows, target), scores[rows, target] - margin)
    if temperature is not None:
        logits = logits / temperature
    return F.cross_entropy(logits, target)


def nce_loss(
    scores: Tensor,
    positive_offset: int = 0,
    margin: float = 0.0,
    temperature: float | None = None,
    scores_t2v: Tensor | None = None,
) -> Tensor:
    """Symmetric NCE: mean over rows of -log softmax at the positive, video→text plus text→video.

    scores [Bl, B_all]: (local) videos × all texts, row i's positive at column positive_offset + i.
    scores_t2v [Bl, B_all]: (local) texts × all videos; defaults to scores.T (square scores, offset 0).
    """
    if scores_t2v is None:
        if scores.shape[0] != scores.shape[1] or positive_offset:
            raise ValueError("nce_loss: pass scores_t2v when scores are not the full square batch")
        scores_t2v = scores.T
    if positive_offset + scores.shape[0] > scores.shape[1]:
        raise ValueError(
            f"nce_loss: offset {positive_offset} + rows {scores.shape[0]} exceed {scores.shape[1]}"
        )
    return _one_direction(scores, positive_offset, margin, temperature) + _one_direction(
        scores_t2v, positive_offset, margin, temperature
    )


def global_nce_loss(video: Tensor, text: Tensor, margin: float, temperature: float | None) -> Tensor:
    """NCE of local video/text embeddings [Bl, d] against the embeddings of all ranks."""
    all_video, all_text = gather_with_grad(video), gather_with_grad(text)
    offset = rank() * video.shape[0]
    return nce_loss(
        GlobalHead.scores(video, all_text),
        offset,
        margin,
        temperature,
        scores_t2v=GlobalHead.scores(text, all_video),
    )


def local_nce_loss(
    head: LocalHead,
    patches: Tensor,
    patch_mask: Tensor,
    words: Tensor,
    word_mask: Tensor,
    margin: float,
    temperature: float | None,
) -> Tensor:
    """NCE of the local head's pairwise scores; across ranks only this rank's rows and columns are computed.

    Token features are gathered with grad; cost per rank is (2W-1)·Bl² pairs (local videos × all texts, other
    videos × local texts) instead of the W·Bl² a perfect split would need, and a gather of the patch tokens.
    """
    if world_size() == 1:
        return nce_loss(head.pairwise_scores(patches, patch_mask, words, word_mask), 0, margin, temperature)
    bl, offset = patches.shape[0], rank() * patches.shape[0]
    all_patches, all_patch_mask = gather_with_grad(patches), gather_no_grad(patch_mask)
    all_words, all_word_mask = gather_with_grad(words), gather_no_grad(word_mask)
    v2t = head.pairwise_scores(patches, patch_mask, all_words, all_word_mask)
    others = torch.ones(all_patches.shape[0], dtype=torch.bool, device=patches.device)
    others[offset : offset + bl] = False
    other_v2t = head.pairwise_scores(all_patches[others], all_patch_mask[others], words, word_mask)
    video_by_text = torch.cat([other_v2t[:offset], v2t[:, offset : offset + bl], other_v2t[offset:]], dim=0)
    return nce_loss(v2t, offset, margin, temperature, scores_t2v=video_by_text.T)


def grounding_loss(
    cfg: LossConfig,
    video: Tensor,
    text: Tensor,
    local_head: LocalHead,
    patches: Tensor,
    patch_mask: Tensor,
    words: Tensor,
    word_mask: Tensor,
) -> dict[str, Tensor]:
    """L = w_g·L_global + w_l·L_local (a 0-weight term is skipped); keys loss, loss_global, loss_local."""
    out: dict[str, Tensor] = {}
    if cfg.global_weight:
        out["loss_global"] = global_nce_loss(video, text, cfg.margin, cfg.temperature)
    if cfg.local_weight:
        out["loss_local"] = local_nce_loss(
            local_head, patches, patch_mask, words, word_mask, cfg.margin, cfg.temperature
        )
    out["loss"] = cfg.global_weight * out.get("loss_global", 0.0) + cfg.local_weight * out.get(
        "loss_local", 0.0
    )
    return out
