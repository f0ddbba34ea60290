"""Local head (docs/method.md §4): region/word projections, an attention stack (paper Table 8 variants), mean
pooling to V̄, S̄, and the pairwise score S[i, j] = cos(V̄_ij, S̄_ij) for every (video i, text j) pair.

Cost of `pairwise_scores` (R = T·N regions, K words, d dims, P = Bv·Bt pairs, one cross + one self layer):
  cross block per pair   ~ 4·R·K·d (logits + mixing, both directions) + R·d² (region output projection)
  self block per pair    ~ 2·R²·d  (regions; words K²·d are negligible) + 4·R·d²
For B=64, T=16, N=49, K=20, d=512 a pair-dependent self layer is ~1.45·10⁹ multiply-adds per pair (2·R²·d ≈
0.63·10⁹ + 4·R·d² ≈ 0.82·10⁹) × 4096 pairs ≈ 6·10¹² forward;
it dominates, which is why `self_cross` (self-attention before any cross) is far cheaper: its self layers
depend on one modality only and run once per video / per text. Memory: the per-pair activations are
[Bv, C, R, d] for a text chunk of C, so the forward holds O(Bv·C·R·d) instead of O(Bv·Bt·R·d); with grad
enabled and `checkpoint=True` each chunk is recomputed in backward, keeping training memory at that bound
plus the [Bv, Bt] scores (the price is one extra forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from stg_lightning.model.attention import (
    AttentionKind,
    CrossBlock,
    MultiHeadAttention,
    SelfBlock,
    safe_key_mask,
)
from stg_lightning.model.global_head import masked_mean
from stg_lightning.model.init import copy_init

Variant = Literal["cross_self_cross", "self_cross", "cross_self", "cross_cross", "cross", "none"]
VARIANT_LAYERS: dict[str, tuple[str, ...]] = {
    "cross_self_cross": ("cross", "self", "cross"),
    "self_cross": ("self", "cross"),
    "cross_self": ("cross", "self"),
    "cross_cross": ("cross", "cross"),
    "cross": ("cross",),  # regions stay the backbone's patches: no attention among them
    "none": (),  # projections only: regions and words meet in the score alone
}
AttentionMaps = list[tuple[str, dict[str, Tensor]]]


@dataclass
class LocalHeadConfig:
    """embed_dim: d; variant: layer order (Table 8); attention: "cosine" (logits cos/temperature) or "dot"
    (scaled dot product); chunk_size: texts per pairwise chunk; checkpoint: recompute chunks in backward;
    aligned_init: patch and word projections, and each attention's query and key, start from the same
    random matrix (model/init.py), so the untrained attention follows the backbone's similarities;
    text_tokens: what the head reads of a sentence, its word tokens ("words", the paper) or its sentence
    token alone as one word ("sentence"; `GroundingModel.local_text`);
    similarity_prior: weight w of a fixed prior in every cross-attention's logits, w·cos(patch, word)/temperature
    on the backbone's own tokens (0 = off, the paper), so a word keeps the backbone's choice among the regions
    while the learned logits add to it; needs patch and word tokens of one width (one joint space);
    similarity_prior_text: what the prior reads of the text, each word's own token ("words") or, for every
    word, the sentence token ("sentence": the last word slot, where `backbone.words_with_sentence` or
    `text_tokens=sentence` puts it), so words a backbone never aligned with frames get its frame-level choice;
    score: how a pair is scored after the stack, "pooled" (the paper: cos of the mean region and the mean
    word) or "alignment" (late interaction: each word's cosines with the regions averaged under their
    softmax at `temperature`, then the mean over words; the rollout reads that softmax as a last map);
    centre_patches: subtract each frame's mean patch token before the projection, removing what all patches
    of a frame share (the context a backbone's global layers mix into every patch), so a region keeps its own
    content; the prior still reads the backbone's tokens."""

    embed_dim: int = 512
    num_heads: int = 8
    variant: Variant = "cross_self_cross"
    attention: AttentionKind = "cosine"
    temperature: float = 0.1
    chunk_size: int = 8
    checkpoint: bool = True
    dropout: float = 0.0
    aligned_init: bool = True
    text_tokens: Literal["words", "sentence"] = "words"
    similarity_prior: float = 0.0
    similarity_prior_text: Literal["words", "sentence"] = "words"
    score: Literal["pooled", "alignment"] = "pooled"
    centre_patches: bool = False

    def __post_init__(self) -> None:
        for key in ("text_tokens", "similarity_prior_text"):
            if getattr(self, key) not in ("words", "sentence"):
                raise ValueError(
                    f"LocalHeadConfig.{key} must be 'words' or 'sentence', got {getattr(self, key)!r}"
                )
        if self.variant not in VARIANT_LAYERS:
            raise ValueError(
                f"LocalHeadConfig.variant must be one of {sorted(VARIANT_LAYERS)}, got {self.variant!r}"
            )
        if self.score not in ("pooled", "alignment"):
            raise ValueError(f"LocalHeadConfig.score must be 'pooled' or 'alignment', got {self.score!r}")
        if self.similarity_prior and "cross" not in VARIANT_LAYERS[self.variant]:
            raise ValueError(
                f"LocalHeadConfig.similarity_prior biases cross-attention; variant {self.variant!r} has none"
            )
        if self.chunk_size < 1 or self.temperature <= 0 or self.similarity_prior < 0:
            raise ValueError(
                f"LocalHeadConfig: need chunk_size >= 1, temperature > 0 and similarity_prior >= 0, got {self}"
            )


class LocalHead(nn.Module):
    """Patch tokens of the selected frames (regions) × word tokens → attention stack → pooled cosine score."""

    def __init__(self, patch_dim: int, word_dim: int, cfg: LocalHeadConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or LocalHeadConfig()
        c = self.cfg
        if c.similarity_prior and patch_dim != word_dim:
            raise ValueError(
                f"local_head.similarity_prior needs patch and word tokens in one space, got widths "
                f"{patch_dim} and {word_dim}; set local_head.similarity_prior=0 for this backbone"
            )
        self.patch_proj = nn.Linear(patch_dim, c.embed_dim)
        self.word_proj = nn.Linear(word_dim, c.embed_dim)
        layers = VARIANT_LAYERS[c.variant]
        block = {"cross": CrossBlock, "self": SelfBlock}
        self.blocks = nn.ModuleList(
            block[kind](c.embed_dim, c.num_heads, c.attention, c.temperature, c.dropout) for kind in layers
        )
        if c.aligned_init:
            copy_init(self.patch_proj, self.word_proj)
            for attention in self.modules():
                if isinstance(attention, MultiHeadAttention):
                    copy_init(attention.query, attention.key)
        # Leading self blocks see one modality only: run them once per video / per text, not per pair.
        self.num_unpaired = layers.index("cross") if "cross" in layers else len(layers)

    @property
    def layer_kinds(self) -> tuple[str, ...]:
        return VARIANT_LAYERS[self.cfg.variant]

    def _inputs(self, patches: Tensor, patch_mask: Tensor, words: Tensor, word_mask: Tensor):
        """Project and flatten → regions [B, T·N, d], region mask [B, T·N], words [B, K, d], mask [B, K],
        and the unit-norm backbone tokens (patches [B, T·N, D], words [B, K or 1, D]) the prior reads, or None."""
        if patches.dim() != 4 or patch_mask.shape != patches.shape[:2]:
            raise ValueError(
                f"LocalHead: patches must be [B, T, N, D] with patch_mask [B, T] (frame validity), "
                f"got {tuple(patches.shape)} and {tuple(patch_mask.shape)}"
            )
        own = patches - patches.mean(dim=2, keepdim=True) if self.cfg.centre_patches else patches
        regions = self.patch_proj(own).flatten(1, 2)
        region_mask = patch_mask.bool().repeat_interleave(patches.shape[2], dim=1)
        unit = None
        if self.cfg.similarity_prior:
            text = words[:, -1:] if self.cfg.similarity_prior_text == "sentence" else words
            unit = F.normalize(patches.flatten(1, 2), dim=-1), F.normalize(text, dim=-1)
        return regions, region_mask, self.word_proj(words), word_mask.bool(), unit

    def _prior(self, unit_patches: Tensor, unit_words: Tensor, paired: bool) -> Tensor:
        """Prior logits w·cos/temperature: [B, R, K] for matched pairs, [Bv, Bt, R, K] for every pair (K = 1
        for the sentence's prior, broadcast over the words)."""
        spec = "vrd,tkd->vtrk" if paired else "brd,bkd->brk"
        cos = torch.einsum(spec, unit_patches, unit_words)
        return cos * (self.cfg.similarity_prior / self.cfg.temperature)

    def _run(
        self,
        layers: slice,
        regions,
        region_mask,
        words,
        word_mask,
        return_attention: bool = False,
        prior=None,
    ):
        """Apply the blocks in `layers` (a slice of the stack); collect their maps when asked."""
        maps: AttentionMaps = []
        for kind, blk in zip(self.layer_kinds[layers], self.blocks[layers]):
            regions, words, m = blk(regions, region_mask, words, word_mask, return_attention, prior)
            maps.append((kind, m))
        return regions, words, maps

    def _score(self, regions: Tensor, region_mask: Tensor, words: Tensor, word_mask: Tensor) -> Tensor:
        """Scores [...] of regions [..., R, d] and words [..., K, d] (leading dims broadcast)."""
        if self.cfg.score == "alignment":
            return self._alignment(regions, region_mask, words, word_mask)[0]
        video = masked_mean(regions, region_mask, dim=-2)
        text = masked_mean(words, word_mask, dim=-2)
        return F.cosine_similarity(video, text, dim=-1)

    def _alignment(
        self, regions: Tensor, region_mask: Tensor, words: Tensor, word_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Late-interaction scores [...] and each word's softmax over the regions [..., K, R]: a word scores
        the cosines of the regions it attends to, so the pair's score comes from where its heat is."""
        cos = F.normalize(words, dim=-1) @ F.normalize(regions, dim=-1).transpose(-1, -2)
        valid = safe_key_mask(region_mask)[..., None, :]
        attn = (cos / self.cfg.temperature).masked_fill(~valid, float("-inf")).softmax(dim=-1)
        per_word = (attn * cos).sum(-1)
        return masked_mean(per_word[..., None], word_mask, dim=-2)[..., 0], attn

    def _unpaired(self, regions, region_mask, words, word_mask):
        return self._run(slice(0, self.num_unpaired), regions, region_mask, words, word_mask)[:2]

    def _paired_chunk(
        self, regions: Tensor, region_mask: Tensor, words: Tensor, word_mask: Tensor, unit=None
    ) -> Tensor:
        """Scores [Bv, C] of videos [Bv, R, d] × texts [C, K, d] via broadcasting (no input copies);
        `unit`: the backbone tokens of the prior (videos [Bv, R, D], texts [C, K, D]) or None."""
        prior = None if unit is None else self._prior(*unit, paired=True)  # [Bv, C, R, K]
        if self.num_unpaired == len(self.blocks):  # no block depends on the pair: only the score does
            return self._score(regions[:, None], region_mask[:, None], words[None], word_mask[None])
        if self.num_unpaired == len(self.blocks) - 1 and self.cfg.score == "pooled":
            return self._last_cross_scores(regions, region_mask, words, word_mask, prior)
        rm, wm = region_mask[:, None], word_mask[None]
        r, w, _ = self._run(
            slice(self.num_unpaired, None), regions[:, None], rm, words[None], wm, prior=prior
        )
        return self._score(r, rm, w, wm)

    def _last_cross_scores(
        self, regions: Tensor, region_mask: Tensor, words: Tensor, word_mask: Tensor, prior: Tensor | None
    ) -> Tensor:
        """Pair scores when only the last block (a cross block) depends on the pair (`self_cross`): the
        regions' outputs are pooled without being built (`pair_pooled_outputs`), the words' are [Bv, C, K, d]."""
        block = self.blocks[-1]
        prior_t = None if prior is None else prior.permute(1, 0, 3, 2)  # [C, Bv, K, R]
        video = block.region_to_word.pair_pooled_outputs(regions, region_mask, words, word_mask, prior)
        new_words = block.word_to_region.pair_outputs(words, regions, region_mask, prior_t)  # [C, Bv, K, d]
        text = masked_mean(new_words, word_mask[:, None], dim=-2).transpose(0, 1)
        return F.cosine_similarity(video, text, dim=-1)

    def pairwise_scores(
        self, patches: Tensor, patch_mask: Tensor, words: Tensor, word_mask: Tensor
    ) -> Tensor:
        """S [Bv, Bt] for patches [Bv, T, N, Dp], patch_mask [Bv, T], words [Bt, K, Dw], word_mask [Bt, K]."""
        regions, region_mask, w, wm, unit = self._inputs(patches, patch_mask, words, word_mask)
        regions, w = self._unpaired(regions, region_mask, w, wm)
        size = self.cfg.chunk_size
        if self.cfg.checkpoint and torch.is_grad_enabled():
            # RNG state only matters for dropout; skipping it saves a state copy per chunk.
            run = partial(
                checkpoint, self._paired_chunk, use_reentrant=False, preserve_rng_state=self.cfg.dropout > 0
            )
        else:
            run = self._paired_chunk
        starts = range(0, w.shape[0], size)
        chunks = [
            run(regions, region_mask, w[s : s + size], wm[s : s + size], self._chunk_unit(unit, s, size))
            for s in starts
        ]
        return torch.cat(chunks, dim=1)

    @staticmethod
    def _chunk_unit(unit, start: int, size: int):
        return None if unit is None else (unit[0], unit[1][start : start + size])

    def forward_pairs(self, patches: Tensor, patch_mask: Tensor, words: Tensor, word_mask: Tensor) -> Tensor:
        """Scores [B] of matched pairs (video i, text i): the diagonal of `pairwise_scores` at O(B) cost."""
        return self._score(*self._encode_matched(patches, patch_mask, words, word_mask)[:4])

    def attention_maps(
        self, patches: Tensor, patch_mask: Tensor, words: Tensor, word_mask: Tensor
    ) -> tuple[AttentionMaps, Tensor, Tensor]:
        """Per-layer maps of matched pairs, [(kind, {name: [B, H, Lq, Lk]})], plus region and word masks."""
        _, region_mask, _, word_mask, maps = self._encode_matched(patches, patch_mask, words, word_mask, True)
        return maps, region_mask, word_mask

    def _encode_matched(self, patches, patch_mask, words, word_mask, return_attention: bool = False):
        regions, region_mask, w, wm, unit = self._inputs(patches, patch_mask, words, word_mask)
        prior = None if unit is None else self._prior(*unit, paired=False)
        regions, w, maps = self._run(slice(None), regions, region_mask, w, wm, return_attention, prior)
        if return_attention and self.cfg.score == "alignment":
            maps.append(
                ("alignment", {"word_to_region": self._alignment(regions, region_mask, w, wm)[1][:, None]})
            )
        return regions, region_mask, w, wm, maps
