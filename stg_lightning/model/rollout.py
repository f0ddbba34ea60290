"""Attention rollout of the local head for one text query (docs/evaluation.md §1): heat per patch per frame.

Abnar & Zuidema's rollout (head-averaged maps, residual kept as R ← R + A·R) extended to the two streams
the way Chefer et al. (ICCV 2021) do for co-attention. Relevance matrices start at R_tt = I (words),
R_ii = I (regions), R_ti = R_it = 0, and per block (cross blocks update both directions from old values):
  self  : R_tt += S_w R_tt, R_ti += S_w R_ti, R_ii += S_r R_ii, R_it += S_r R_it
  cross : R_ti += A_wr R_ii, R_tt += A_wr R_it, R_ii^text += A_rw R_ti, R_it += A_rw R_tt
  alignment (score="alignment", after the stack): R_ti += A_wr (R_ii + R_ii^text), A_wr the score's softmax
where A_wr is word→region (words attend to regions), A_rw region→word, S the self maps and R_ii^text the
part of region-region relevance that passes through a word. The heat of region r is the mean over valid
words of R_ti[:, r] (what the query looked at) plus the mean over regions of R_ii^text[:, r] (what the
regions pulled in through the words), normalised per frame. Per variant this is:
  cross_self_cross: R_ti = (I+S_w)A1_wr + A3_wr(I+S_r);  R_ii^text = A3_rw(I+S_w)A1_wr  (the product of maps in docs/evaluation.md §1)
  cross_cross     : R_ti = A1_wr + A2_wr;                R_ii^text = A2_rw A1_wr
  cross_self      : R_ti = (I+S_w)A1_wr;                 R_ii^text = 0
  self_cross      : R_ti = A_wr(I+S_r);                  R_ii^text = 0
  cross           : R_ti = A_wr;                         R_ii^text = 0
  none, alignment : R_ti = A_align (the heat is the map the score reads)
"""

from __future__ import annotations

import torch
from torch import Tensor

from stg_lightning.model.local_head import LocalHead


@torch.no_grad()
def rollout_heatmap(local_head: LocalHead, patches: Tensor, words: Tensor, word_mask: Tensor) -> Tensor:
    """Heat [T, N] (rows sum to 1) of one query (words [1, K, Dw], mask [1, K]) over patches [T, N, Dp]."""
    if patches.dim() != 3 or words.dim() != 3 or words.shape[0] != 1:
        raise ValueError(
            f"rollout_heatmap: expected patches [T, N, D] and words [1, K, D], "
            f"got {tuple(patches.shape)} and {tuple(words.shape)}"
        )
    num_frames, num_patches = patches.shape[:2]
    frame_mask = torch.ones(1, num_frames, dtype=torch.bool, device=patches.device)
    maps, _, wmask = local_head.attention_maps(patches[None], frame_mask, words, word_mask)
    if not maps:
        raise ValueError(
            f"rollout_heatmap: local head variant {local_head.cfg.variant!r} with score 'pooled' has no attention "
            "to roll out; use local_head.score=alignment or inference spatial=patch_similarity"
        )
    k, r = words.shape[1], num_frames * num_patches
    dev = patches.device
    r_tt, r_ii = torch.eye(k, device=dev), torch.eye(r, device=dev)
    r_ti, r_it = torch.zeros(k, r, device=dev), torch.zeros(r, k, device=dev)
    r_ii_text = torch.zeros_like(r_ii)
    for kind, m in maps:
        avg = {name: a[0].float().mean(0) for name, a in m.items()}  # average heads: [Lq, Lk]
        if kind == "self":
            s_w, s_r = avg["word_to_word"], avg["region_to_region"]
            r_tt, r_ti = r_tt + s_w @ r_tt, r_ti + s_w @ r_ti
            r_ii, r_ii_text, r_it = r_ii + s_r @ r_ii, r_ii_text + s_r @ r_ii_text, r_it + s_r @ r_it
        elif kind == "alignment":
            r_ti = r_ti + avg["word_to_region"] @ (r_ii + r_ii_text)
        else:
            a_wr, a_rw = avg["word_to_region"], avg["region_to_word"]
            r_ti, r_tt, r_ii_text, r_it = (
                r_ti + a_wr @ (r_ii + r_ii_text),
                r_tt + a_wr @ r_it,
                r_ii_text + a_rw @ r_ti,
                r_it + a_rw @ r_tt,
            )
    valid_words = wmask[0].float()
    heat = (valid_words @ r_ti) / valid_words.sum().clamp(min=1) + r_ii_text.mean(0)
    heat = heat.reshape(num_frames, num_patches)
    return heat / heat.sum(1, keepdim=True).clamp(min=torch.finfo(heat.dtype).tiny)
