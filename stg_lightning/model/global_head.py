"""Global head (docs/method.md §3): linear f (frames) and g (sentence) into one space; video = mean of frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stg_lightning.model.init import copy_init
from stg_lightning.tokens import FrameTokens


@dataclass
class GlobalHeadConfig:
    """embed_dim: d. frame_pooling: frame token = CLS ("cls") or mean of its patch tokens ("mean", Table 13).
    pool_all_frames: video = mean over all U candidate frames instead of the T selected (authors' code).
    aligned_init: f and g start from the same random matrix when the token dims match (model/init.py)."""

    embed_dim: int = 512
    frame_pooling: Literal["cls", "mean"] = "cls"
    pool_all_frames: bool = False
    aligned_init: bool = True

    def __post_init__(self) -> None:
        if self.frame_pooling not in ("cls", "mean"):
            raise ValueError(
                f"GlobalHeadConfig.frame_pooling must be 'cls' or 'mean', got {self.frame_pooling!r}"
            )


def masked_mean(x: Tensor, mask: Tensor, dim: int) -> Tensor:
    """Mean of `x` over `dim` counting entries where `mask` (x's shape up to `dim`) is True; 0 if none."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim) / weights.sum(dim).clamp(min=1)


class GlobalHead(nn.Module):
    """f: frame token → d, g: sentence token → d; cosine scores between pooled video and sentence."""

    def __init__(self, video_dim: int, text_dim: int, cfg: GlobalHeadConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or GlobalHeadConfig()
        self.frame_proj = nn.Linear(video_dim, self.cfg.embed_dim)
        self.text_proj = nn.Linear(text_dim, self.cfg.embed_dim)
        if self.cfg.aligned_init:
            copy_init(self.frame_proj, self.text_proj)

    def frame_inputs(self, frames: FrameTokens) -> Tensor:
        """The per-frame token f applies to: CLS [B, U, Dv] or the mean of the frame's patches [B, U, Dp]."""
        return frames.global_ if self.cfg.frame_pooling == "cls" else frames.patches.mean(dim=-2)

    def project_frames(self, frame_global: Tensor) -> Tensor:
        """[B, U, Dv] → [B, U, d]."""
        return self.frame_proj(frame_global)

    def project_text(self, sentence: Tensor) -> Tensor:
        """[B, Dt] → [B, d]."""
        return self.text_proj(sentence)

    def pool_video(self, frame_emb: Tensor, mask: Tensor) -> Tensor:
        """Masked mean over frames: [B, T, d], mask [B, T] → [B, d]."""
        return masked_mean(frame_emb, mask, dim=1)

    def encode_video(
        self, frames: FrameTokens, frame_mask: Tensor, indices: Tensor, selected_mask: Tensor
    ) -> Tensor:
        """Video embedding [B, d] from all U candidates and a selection (indices/mask [B, T]).

        Pools the selected frames, or all valid candidates when `pool_all_frames` is set.
        """
        emb = self.project_frames(self.frame_inputs(frames))
        if self.cfg.pool_all_frames:
            return self.pool_video(emb, frame_mask)
        batch = torch.arange(emb.shape[0], device=emb.device)[:, None]
        return self.pool_video(emb[batch, indices], selected_mask)

    @staticmethod
    def scores(video: Tensor, text: Tensor) -> Tensor:
        """Cosine similarity matrix [Bv, Bt] between video [Bv, d] and text [Bt, d] embeddings."""
        return F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).T
