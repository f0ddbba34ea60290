import math

import pytest
import torch
from torch import nn

from stg_lightning.optim import OptimConfig, build_optimizer, build_param_groups, warmup_cosine_factor


def test_warmup_then_cosine_known_values():
    # warmup 4 of 14 steps: ramps 0.25, 0.5, 0.75, 1.0, then cosine over the 10 remaining steps.
    assert [warmup_cosine_factor(s, 14, 4, 0.0) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_cosine_factor(4, 14, 4, 0.0) == pytest.approx(1.0)
    assert warmup_cosine_factor(9, 14, 4, 0.0) == pytest.approx(0.5)
    assert warmup_cosine_factor(14, 14, 4, 0.0) == pytest.approx(0.0)
    assert warmup_cosine_factor(14, 14, 4, 0.1) == pytest.approx(0.1)
    assert warmup_cosine_factor(6, 14, 4, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))


def test_param_groups_carry_their_learning_rates_and_skip_frozen():
    heads, backbone = nn.Linear(3, 3), nn.Linear(3, 3)
    cfg = OptimConfig(head_lr=1e-4, backbone_lr=1e-7)
    groups = build_param_groups([heads], backbone, cfg)
    assert [(g["name"], g["lr"]) for g in groups] == [("heads", 1e-4), ("backbone", 1e-7)]
    backbone.requires_grad_(False)
    assert [g["name"] for g in build_param_groups([heads], backbone, cfg)] == ["heads"]


def test_scheduler_scales_each_group_from_its_own_peak():
    heads, backbone = nn.Linear(2, 2), nn.Linear(2, 2)
    cfg = OptimConfig(head_lr=1e-3, backbone_lr=1e-6, warmup_steps=2)
    optimizer, scheduler = build_optimizer(build_param_groups([heads], backbone, cfg), cfg, total_steps=10)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([5e-4, 5e-7])
    optimizer.step()
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-3, 1e-6])
    assert isinstance(optimizer, torch.optim.AdamW)
