"""Symmetric NCE with margin (paper Eq. 1, docs/method.md §5) on the heads' scores: a loss sees scores only.

The model (`GroundingModel.global_scores / local_scores`) gathers across ranks. Scaling convention under DDP
with world size W: each rank returns the mean over its *local* rows
(local videos × all texts, local texts × all videos), so the mean of the W per-rank losses equals the
single-process loss on the concatenated batch. Gathers keep autograd and route gradients back to the owner
(summed over ranks), so each rank's gradient is that of Σ_r loss_r; DDP's averaging (÷W) then makes
parameter gradients equal to the single-process ones. (The raw gradient of a rank's own input tensors is
W × the single-process gradient before that averaging.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from stg_lightning.model.grounding_model import PairScores


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

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads whose loss is on (the others need not be scored)."""
        return tuple(h for h, w in (("global", self.global_weight), ("local", self.local_weight)) if w)


def _one_direction(
    scores: Tensor, offset: int, margin: float, temperature: float | None, extra: Tensor | None = None
) -> Tensor:
    rows = torch.arange(scores.shape[0], device=scores.device)
    target = rows + offset
    logits = scores.index_put((rows, target), scores[rows, target] - margin)
    if extra is not None:
        logits = torch.cat([logits, extra], dim=1)
    if temperature is not None:
        logits = logits / temperature
    return F.cross_entropy(logits, target)


def nce_loss(
    scores: Tensor,
    positive_offset: int = 0,
    margin: float = 0.0,
    temperature: float | None = None,
    scores_t2v: Tensor | None = None,
    video_negatives: Tensor | None = None,
) -> Tensor:
    """Symmetric NCE: mean over rows of -log softmax at the positive, video→text plus text→video.

    scores [Bl, B_all]: (local) videos × all texts, row i's positive at column positive_offset + i.
    scores_t2v [Bl, B_all]: (local) texts × all videos; defaults to scores.T (square scores, offset 0).
    video_negatives [Bl, K]: more negatives of each video in the video→text softmax (-inf: none).
    """
    if scores_t2v is None:
        if scores.shape[0] != scores.shape[1] or positive_offset:
            raise ValueError("nce_loss: pass scores_t2v when scores are not the full square batch")
        scores_t2v = scores.T
    if positive_offset + scores.shape[0] > scores.shape[1]:
        raise ValueError(
            f"nce_loss: offset {positive_offset} + rows {scores.shape[0]} exceed {scores.shape[1]}"
        )
    return _one_direction(scores, positive_offset, margin, temperature, video_negatives) + _one_direction(
        scores_t2v, positive_offset, margin, temperature
    )


def masked_negatives(scores: PairScores) -> Tensor | None:
    """The word-swapped negatives' scores [Bl, K] with invalid slots at -inf (None without negatives)."""
    if scores.video_to_negatives is None:
        return None
    return scores.video_to_negatives.masked_fill(~scores.negative_mask, float("-inf"))


def pair_nce_loss(scores: PairScores, margin: float, temperature: float | None) -> Tensor:
    """Symmetric NCE of one head's scores (this rank's rows, positives at `scores.offset`; word-swapped
    negatives, if any, join the video→text softmax)."""
    return nce_loss(
        scores.video_to_text,
        scores.offset,
        margin,
        temperature,
        scores_t2v=scores.text_to_video,
        video_negatives=masked_negatives(scores),
    )


def uniform_nce(scores: PairScores) -> Tensor:
    """The chance level of :func:`pair_nce_loss` on these rows: the loss of a scorer that gives every pair
    the same score (margin 0), the mean over rows of ln(texts + the row's valid swapped negatives) +
    ln(videos). It follows the batch: a partial held-out batch or a swap that failed lowers it."""
    v2t, t2v = scores.video_to_text, scores.text_to_video
    columns = torch.full((v2t.shape[0],), float(v2t.shape[1]), device=v2t.device)
    if scores.video_to_negatives is not None:
        columns = columns + scores.negative_mask.sum(dim=1)
    return columns.log().mean() + math.log(t2v.shape[1])


def swap_top1(scores: PairScores) -> Tensor:
    """Share of this rank's videos with a valid swapped negative whose own sentence outscores all of them
    (chance 1 / (K + 1) with K valid negatives); NaN when no video has one."""
    negatives = masked_negatives(scores)
    rows = torch.arange(scores.video_to_text.shape[0], device=scores.video_to_text.device)
    positive = scores.video_to_text[rows, rows + scores.offset]
    has = scores.negative_mask.any(dim=1)
    wins = positive[has] > negatives[has].max(dim=1).values
    return wins.float().mean() if has.any() else positive.new_tensor(float("nan"))


def retrieval_top1(scores: PairScores) -> Tensor:
    """Mean of video→text and text→video top-1 accuracy of this rank's rows (chance 1 / batch)."""
    rows = torch.arange(scores.video_to_text.shape[0], device=scores.video_to_text.device)
    target = rows + scores.offset
    hits = [(s.argmax(dim=1) == target).float().mean() for s in (scores.video_to_text, scores.text_to_video)]
    return (hits[0] + hits[1]) / 2


def grounding_loss(cfg: LossConfig, scores: dict[str, PairScores]) -> dict[str, Tensor]:
    """L = w_g·L_global + w_l·L_local over the heads' scores (a 0-weight term is not computed: its head
    need not be scored); keys loss, loss_global, loss_local."""
    out: dict[str, Tensor] = {}
    for head, weight in (("global", cfg.global_weight), ("local", cfg.local_weight)):
        if weight:
            out[f"loss_{head}"] = pair_nce_loss(scores[head], cfg.margin, cfg.temperature)
    out["loss"] = _weighted(cfg, out, "loss")
    return out


def chance_levels(cfg: LossConfig, scores: dict[str, PairScores]) -> dict[str, Tensor]:
    """The chance level of each term of :func:`grounding_loss` (:func:`uniform_nce`); keys chance_loss,
    chance_loss_global, chance_loss_local."""
    out = {f"chance_loss_{head}": uniform_nce(scores[head]) for head in cfg.heads}
    out["chance_loss"] = _weighted(cfg, out, "chance_loss")
    return out


def _weighted(cfg: LossConfig, terms: dict[str, Tensor], prefix: str) -> Tensor:
    return cfg.global_weight * terms.get(f"{prefix}_global", 0.0) + cfg.local_weight * terms.get(
        f"{prefix}_local", 0.0
    )
