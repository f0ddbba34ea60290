"""S3D-G video network of MIL-NCE (Miech et al., CVPR 2020; Xie et al., ECCV 2018), up to mixed_5c.

Module and parameter names follow the public PyTorch port of the HowTo100M model
(`s3d_howto100m.pth`), so its video weights load under the prefix mapping of `s3d_backbone.py`.
Input: [B, 3, T, H, W] in [0, 1] (no mean/std). The space-to-depth stem halves T, H, W; the
network then downsamples H, W by 16 and T by 4 more, so mixed_5c is [B, 1024, T/8, ~H/32, ~W/32]
(7×7 at 224 px). The released model used T = 32 (16 also works).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

MIXED_5C_DIM = 1024
TEMPORAL_STRIDE = 8

# Inception blocks: (name, branch widths 0a, 1a, 1b, 2a, 2b, 3b); a max pool (name, kernel, stride) between.
_STAGES: tuple = (
    ("mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("maxpool_4a", (3, 3, 3), (2, 2, 2)),
    ("mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("maxpool_5a", (2, 2, 2), (2, 2, 2)),
    ("mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("mixed_5c", (384, 192, 384, 48, 128, 128)),
)


class STConv3D(nn.Module):
    """Conv3d + BN + ReLU; `separable` splits a t×k×k kernel into 1×k×k then t×1×1 (each with BN + ReLU)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        kernel: tuple[int, int, int],
        stride: int = 1,
        padding: int | tuple[int, int, int] = 0,
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.separable = separable
        pad = (padding,) * 3 if isinstance(padding, int) else padding
        if separable:
            t, k = kernel[0], kernel[1:]
            self.conv1 = nn.Conv3d(in_dim, out_dim, (1, *k), (1, stride, stride), (0, *pad[1:]), bias=False)
            self.bn1 = nn.BatchNorm3d(out_dim)
            self.conv2 = nn.Conv3d(out_dim, out_dim, (t, 1, 1), (stride, 1, 1), (pad[0], 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(out_dim)
        else:
            self.conv1 = nn.Conv3d(in_dim, out_dim, kernel, stride, pad, bias=False)
            self.bn1 = nn.BatchNorm3d(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x))) if self.separable else x


class SelfGating(nn.Module):
    """S3D-G feature gating: channels scaled by sigmoid(fc(spatio-temporal mean))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * weights[:, :, None, None, None]


class InceptionBlock(nn.Module):
    """Four gated branches: 1×1×1 | 1×1×1 → sep 3×3×3 | 1×1×1 → sep 3×3×3 | max pool → 1×1×1."""

    def __init__(self, in_dim: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.conv_b0 = STConv3D(in_dim, w0, (1, 1, 1))
        self.conv_b1_a = STConv3D(in_dim, w1a, (1, 1, 1))
        self.conv_b1_b = STConv3D(w1a, w1b, (3, 3, 3), padding=1, separable=True)
        self.conv_b2_a = STConv3D(in_dim, w2a, (1, 1, 1))
        self.conv_b2_b = STConv3D(w2a, w2b, (3, 3, 3), padding=1, separable=True)
        self.maxpool_b3 = nn.MaxPool3d(3, stride=1, padding=1)
        self.conv_b3_b = STConv3D(in_dim, w3b, (1, 1, 1))
        self.gating_b0, self.gating_b1 = SelfGating(w0), SelfGating(w1b)
        self.gating_b2, self.gating_b3 = SelfGating(w2b), SelfGating(w3b)
        self.output_dim = w0 + w1b + w2b + w3b

    def forward(self, x: Tensor) -> Tensor:
        b0 = self.gating_b0(self.conv_b0(x))
        b1 = self.gating_b1(self.conv_b1_b(self.conv_b1_a(x)))
        b2 = self.gating_b2(self.conv_b2_b(self.conv_b2_a(x)))
        b3 = self.gating_b3(self.conv_b3_b(self.maxpool_b3(x)))
        return torch.cat([b0, b1, b2, b3], dim=1)


class MaxPool3dSame(nn.Module):
    """Max pool with TensorFlow 'SAME' padding (zero pad, ceil mode), as the ported TF weights expect."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        # F.pad order is (W, H, T), each (before, after); total padding max(k - s, 0), the extra one after.
        pads = [max(k - s, 0) for k, s in zip(kernel, stride)]
        self.padding = tuple(p for total in reversed(pads) for p in (total // 2, total - total // 2))
        self.pool = nn.MaxPool3d(kernel, stride, ceil_mode=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(F.pad(x, self.padding))


class S3D(nn.Module):
    """S3D-G with the space-to-depth stem; `features` → mixed_5c map, `fc` → MIL-NCE joint space."""

    def __init__(self, embed_dim: int = 512) -> None:
        super().__init__()
        self.conv1 = STConv3D(24, 64, (2, 4, 4), padding=(1, 2, 2))
        self.conv_2b = STConv3D(64, 64, (1, 1, 1))
        self.conv_2c = STConv3D(64, 192, (3, 3, 3), padding=1, separable=True)
        self.gating = SelfGating(192)
        self.maxpool_2a = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.maxpool_3a = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        dim = 192
        self.stages: list[str] = []
        for name, *spec in _STAGES:
            if name.startswith("maxpool"):
                setattr(self, name, MaxPool3dSame(*spec))
            else:
                block = InceptionBlock(dim, spec[0])
                setattr(self, name, block)
                dim = block.output_dim
            self.stages.append(name)
        self.fc = nn.Linear(MIXED_5C_DIM, embed_dim)

    def features(self, video: Tensor) -> Tensor:
        """video [B, 3, T, H, W] in [0, 1] → mixed_5c [B, 1024, T/8, H', W']."""
        _, _, t, h, w = video.shape
        if t % 2 or h % 2 or w % 2:
            raise ValueError(f"S3D needs an even number of frames and even frame sides, got T={t}, {h}×{w}")
        x = self.conv1(space_to_depth(video))[:, :, 1:, 1:, 1:]  # crop replicates TF 'SAME' padding
        x = self.maxpool_2a(x)
        x = self.gating(self.conv_2c(self.conv_2b(x)))
        x = self.maxpool_3a(x)
        for name in self.stages:
            x = getattr(self, name)(x)
        return x

    def forward(self, video: Tensor) -> Tensor:
        """MIL-NCE video embedding [B, embed_dim] (mixed_5c averaged over time and space, then fc)."""
        return self.fc(self.features(video).mean(dim=(2, 3, 4)))


def space_to_depth(x: Tensor) -> Tensor:
    """[B, C, T, H, W] → [B, 8C, T/2, H/2, W/2]; channel order (dt, dh, dw, c) as the ported TF stem."""
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t // 2, 2, h // 2, 2, w // 2, 2).permute(0, 3, 5, 7, 1, 2, 4, 6)
    return x.reshape(b, 8 * c, t // 2, h // 2, w // 2)


def s3d_grid_side(size: int) -> int:
    """Side of the mixed_5c grid for frames of `size` px (224 → 7)."""
    side = size // 2  # space to depth; the stem conv keeps the side
    for _ in range(3):  # maxpool_2a, maxpool_3a, maxpool_4a halve it (ceil)
        side = math.ceil(side / 2)
    return math.ceil(side / 2)  # maxpool_5a
