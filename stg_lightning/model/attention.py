"""Attention layers of the local head (docs/method.md §4, paper Fig. 2d): masked multi-head attention with
cosine or scaled-dot logits, and the two blocks the head stacks (bidirectional cross, per-modality self).

All layers accept arbitrary, *broadcastable* leading dims, so the local head can feed videos as
[Bv, 1, R, d] and texts as [1, C, K, d] and get every (video, text) pair without copying the inputs:
projections of a pair-independent input are then computed once per video / per text.

Every attention takes an optional `prior` [..., Lq, Lk]: fixed logits added to the learned ones before the
softmax, shared by all heads (the local head's backbone-similarity prior, `LocalHeadConfig.similarity_prior`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AttentionKind = Literal["cosine", "dot"]


def safe_key_mask(mask: Tensor) -> Tensor:
    """Key mask where a query with no valid key attends to all keys (finite; such outputs are pooled out)."""
    return mask | ~mask.any(dim=-1, keepdim=True)


class MultiHeadAttention(nn.Module):
    """Pre-norm residual attention: x + W_o · softmax(logits(q(LN x), k(LN c))) v(LN c).

    logits = cos(q, k) / temperature ("cosine") or q·k / sqrt(d_head) ("dot"), per head.
    """

    def __init__(
        self, dim: int, num_heads: int, kind: AttentionKind, temperature: float, dropout: float
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"LocalHeadConfig: embed_dim {dim} must be divisible by num_heads {num_heads}")
        if kind not in ("cosine", "dot"):
            raise ValueError(f"LocalHeadConfig.attention must be 'cosine' or 'dot', got {kind!r}")
        self.num_heads = num_heads
        self.kind = kind
        self.scale = 1.0 / temperature if kind == "cosine" else (dim // num_heads) ** -0.5
        self.norm_query = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(-3, -2)  # [..., L, d] → [..., H, L, dh]

    def _qkv(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-head queries of x and keys / values of context, [..., H, L, dh] (unit norm for "cosine")."""
        q = self._heads(self.query(self.norm_query(x)))
        ctx = self.norm_context(context)
        k, v = self._heads(self.key(ctx)), self._heads(self.value(ctx))
        if self.kind == "cosine":
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        return q, k, v

    def _output(self, x: Tensor, mixed: Tensor) -> Tensor:
        """Residual output x + W_o·mixed for mixed [..., H, L, dh]."""
        return x + self.out(mixed.transpose(-3, -2).flatten(-2))

    def forward(
        self,
        x: Tensor,
        context: Tensor,
        context_mask: Tensor,
        return_attention: bool = False,
        prior: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x [..., Lq, d] attends to context [..., Lk, d] (mask [..., Lk]) → (x', attn [..., H, Lq, Lk])."""
        q, k, v = self._qkv(x, context)
        key_mask = safe_key_mask(context_mask)[..., None, None, :]  # [..., 1, 1, Lk] over heads and queries
        attn = None
        if return_attention or prior is not None or q.shape[:-3] != k.shape[:-3]:
            # Explicit path: for the maps (rollout), a prior and broadcast pairs, which fused kernels reject.
            logits = (q @ k.transpose(-1, -2)) * self.scale
            if prior is not None:
                logits = logits + prior.unsqueeze(-3)
            attn = logits.masked_fill(~key_mask, float("-inf")).softmax(dim=-1)
            mixed = self.dropout(attn) @ v
        else:
            lead = q.shape[:-3]
            mixed = F.scaled_dot_product_attention(
                q.flatten(0, -4) if lead else q,
                k.flatten(0, -4) if lead else k,
                v.flatten(0, -4) if lead else v,
                attn_mask=key_mask.expand(*lead, 1, 1, -1).flatten(0, -4) if lead else key_mask,
                dropout_p=self.dropout.p if self.training else 0.0,
                scale=self.scale,
            ).reshape(q.shape)
        return self._output(x, mixed), (attn if return_attention else None)

    def pair_attention(
        self, x: Tensor, context: Tensor, context_mask: Tensor, prior: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Every x [A, Lq, d] attending to every context [B, Lk, d] (mask [B, Lk], prior [A, B, Lq, Lk])
        without copying either: attention [A, B, H, Lq, Lk] (dropout applied) and the values [B, H, Lk, dh]."""
        q, k, v = self._qkv(x, context)
        logits = torch.einsum("ahqd,bhkd->abhqk", q, k) * self.scale
        if prior is not None:
            logits = logits + prior.unsqueeze(-3)
        key_mask = safe_key_mask(context_mask)[None, :, None, None, :]
        return self.dropout(logits.masked_fill(~key_mask, float("-inf")).softmax(dim=-1)), v

    def pair_outputs(
        self, x: Tensor, context: Tensor, context_mask: Tensor, prior: Tensor | None = None
    ) -> Tensor:
        """`forward` for every (x, context) pair: x [A, Lq, d], context [B, Lk, d] → [A, B, Lq, d]."""
        attn, v = self.pair_attention(x, context, context_mask, prior)
        return self._output(x[:, None], torch.einsum("abhqk,bhkd->abhqd", attn, v))

    def pair_pooled_outputs(
        self, x: Tensor, x_mask: Tensor, context: Tensor, context_mask: Tensor, prior: Tensor | None = None
    ) -> Tensor:
        """Masked mean over x's positions of `pair_outputs`, [A, B, d], without the per-position outputs:
        nothing nonlinear follows the mixing, so the mean of x + W_o·(attn v) + b is
        mean(x) + W_o·(mean attn) v + b. A pooled score costs O(Lq·Lk) per pair instead of O(Lq·d²)."""
        attn, v = self.pair_attention(x, context, context_mask, prior)
        weights = x_mask.to(attn.dtype)
        count = weights.sum(-1)  # [A]
        mean_attn = torch.einsum("abhqk,aq->abhk", attn, weights / count.clamp(min=1)[:, None])
        update = self.out(torch.einsum("abhk,bhkd->abhd", mean_attn, v).flatten(-2))
        pooled_x = (x * weights[..., None]).sum(-2) / count.clamp(min=1)[:, None]
        return pooled_x[:, None] + update * (count > 0)[:, None, None]


class CrossBlock(nn.Module):
    """Regions attend to words and words attend to regions, both from the block's inputs (parallel update);
    `prior` [..., R, K] biases both directions (transposed for words → regions)."""

    def __init__(self, dim: int, num_heads: int, kind: AttentionKind, temperature: float, dropout: float):
        super().__init__()
        self.region_to_word = MultiHeadAttention(dim, num_heads, kind, temperature, dropout)
        self.word_to_region = MultiHeadAttention(dim, num_heads, kind, temperature, dropout)

    def forward(
        self,
        regions: Tensor,
        region_mask: Tensor,
        words: Tensor,
        word_mask: Tensor,
        return_attention: bool,
        prior: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        prior_t = None if prior is None else prior.transpose(-1, -2)
        new_regions, a_rw = self.region_to_word(regions, words, word_mask, return_attention, prior)
        new_words, a_wr = self.word_to_region(words, regions, region_mask, return_attention, prior_t)
        maps = {"region_to_word": a_rw, "word_to_region": a_wr} if return_attention else {}
        return new_regions, new_words, maps


class SelfBlock(nn.Module):
    """Self-attention within each modality (regions among regions, words among words); a text–region
    `prior` has no place here and is ignored, so the local head can hand every block the same arguments."""

    def __init__(self, dim: int, num_heads: int, kind: AttentionKind, temperature: float, dropout: float):
        super().__init__()
        self.region = MultiHeadAttention(dim, num_heads, kind, temperature, dropout)
        self.word = MultiHeadAttention(dim, num_heads, kind, temperature, dropout)

    def forward(
        self,
        regions: Tensor,
        region_mask: Tensor,
        words: Tensor,
        word_mask: Tensor,
        return_attention: bool,
        prior: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        regions, a_rr = self.region(regions, regions, region_mask, return_attention)
        words, a_ww = self.word(words, words, word_mask, return_attention)
        maps = {"region_to_region": a_rr, "word_to_word": a_ww} if return_attention else {}
        return regions, words, maps


__all__ = ["CrossBlock", "MultiHeadAttention", "SelfBlock", "safe_key_mask"]
