"""Optimiser with per-parameter-group learning rates and a linear-warmup + cosine schedule (docs/method.md §6)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class OptimConfig:
    """Heads and backbone get separate learning rates; the backbone group exists only when it trains."""

    head_lr: float = 1e-4
    backbone_lr: float = 1e-7
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    # Cosine decays to this fraction of each group's peak learning rate.
    min_lr_ratio: float = 0.0


def build_param_groups(
    heads: list[nn.Module], backbone: nn.Module | None, cfg: OptimConfig
) -> list[dict[str, object]]:
    """One group for the heads, one for the trainable backbone parameters (if any), each with its own lr."""
    head_params = [p for m in heads for p in m.parameters() if p.requires_grad]
    groups: list[dict[str, object]] = [{"name": "heads", "params": head_params, "lr": cfg.head_lr}]
    if backbone is not None:
        backbone_params = [p for p in backbone.parameters() if p.requires_grad]
        if backbone_params:
            groups.append({"name": "backbone", "params": backbone_params, "lr": cfg.backbone_lr})
    return groups


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the peak lr at `step`: linear ramp over `warmup_steps`, then cosine to `min_lr_ratio`."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    groups: list[dict[str, object]], cfg: OptimConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    optimizer = torch.optim.AdamW(groups, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine_factor(step, total_steps, cfg.warmup_steps, cfg.min_lr_ratio),
    )
    return optimizer, scheduler
