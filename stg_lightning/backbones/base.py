"""Abstract backbone: frames → FrameTokens, text → TextTokens, frozen unless fine-tuned."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from stg_lightning.tokens import FrameTokens, TextTokens


class Backbone(nn.Module, ABC):
    """Common interface of the video/text backbones (docs/architecture.md).

    Subclasses set the attributes below in `__init__`, implement `tokenize`, `_encode_frames` and
    `_encode_text`, and call `_set_trainable()` last. A frozen backbone has no trainable parameters,
    stays in eval mode whatever `train()` is asked, and builds no autograd graph.

    temporal_stride: input frames per output time step (1 for image models, 8 for S3D); token t covers
        frames [t * stride, (t + 1) * stride).
    """

    frame_dim: int
    patch_dim: int
    sentence_dim: int
    word_dim: int
    grid: tuple[int, int]
    max_words: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    temporal_stride: int = 1

    def __init__(self, finetune: bool) -> None:
        super().__init__()
        self.finetune = finetune

    def _set_trainable(self) -> None:
        self.requires_grad_(self.finetune)
        self.train(self.training)

    def train(self, mode: bool = True) -> Backbone:
        # A frozen backbone keeps eval behaviour (BatchNorm statistics, dropout) during fit.
        return super().train(mode and self.finetune)

    def normalize(self, frames: Tensor) -> Tensor:
        """Map frames [..., 3, H, W] (uint8 0..255 or float in [0, 1]) to the backbone's normalised input."""
        if frames.shape[-3] != 3:
            raise ValueError(f"frames must have 3 channels at dim -3, got shape {tuple(frames.shape)}")
        x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
        mean = torch.tensor(self.mean, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(3, 1, 1)
        return (x - mean) / std

    def encode_frames(self, frames: Tensor) -> FrameTokens:
        """frames [B, U, 3, H, W] normalised → FrameTokens (global_ [B, U', Dv], patches [B, U', N, Dp])."""
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be [B, U, 3, H, W], got shape {tuple(frames.shape)}")
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            return self._encode_frames(frames)

    def encode_text(self, token_ids: Tensor) -> TextTokens:
        """token_ids [B, L] from `tokenize` → TextTokens (sentence [B, Dt], words [B, K, Dw], word_mask)."""
        if token_ids.ndim != 2:
            raise ValueError(f"token_ids must be [B, L], got shape {tuple(token_ids.shape)}")
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            return self._encode_text(token_ids)

    @abstractmethod
    def tokenize(self, texts: list[str]) -> Tensor:
        """Sentences → LongTensor [B, L] accepted by `encode_text`."""

    @abstractmethod
    def _encode_frames(self, frames: Tensor) -> FrameTokens: ...

    @abstractmethod
    def _encode_text(self, token_ids: Tensor) -> TextTokens: ...
