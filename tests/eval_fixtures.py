"""Shared builders of the evaluation tests: a tiny synthetic split, a tiny model and its checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lightning as L
import torch

from stg_lightning.backbones import OpenClipConfig
from stg_lightning.data.memory import MemoryDataModule
from stg_lightning.eval.records import DatasetReport, EvalDataset, Segment, VideoRecord
from stg_lightning.lit_module import GroundingModule
from stg_lightning.model import GlobalHeadConfig, LocalHeadConfig
from stg_lightning.selection import SelectionConfig
from stg_lightning.synth import PRESETS, ScriptConfig, SynthConfig, generate


def tiny_model(seed: int = 0) -> GroundingModule:
    """The random-init tiny ViT with 32-d heads (selection picks 4 of MemoryDataModule's 8 frames)."""
    torch.manual_seed(seed)
    return GroundingModule(
        backbone=OpenClipConfig(model_name="stg-tiny-vit", pretrained=None),
        selection=SelectionConfig(num_frames=4),
        global_head=GlobalHeadConfig(embed_dim=32),
        local_head=LocalHeadConfig(embed_dim=32, num_heads=4),
    )


def tiny_data() -> MemoryDataModule:
    return MemoryDataModule(num_frames=8, batch_size=4, train_size=4, val_size=4)


def tiny_split_config() -> SynthConfig:
    """The synthetic benchmark of `write_tiny_split`: no training videos, two short videos per eval split."""
    script = ScriptConfig(step_seconds=(2, 3), gap_seconds=(1, 2), edge_seconds=(1, 2))
    return dataclasses.replace(PRESETS["demo"], train_videos=0, eval_videos=2, script=script)


def write_tiny_split(out: Path) -> Path:
    """Two short videos per evaluation split of the synthetic benchmark (a few seconds to render)."""
    generate(tiny_split_config(), out, workers=1, progress=False)
    return out


def save_tiny_checkpoint(path: Path) -> Path:
    """One Lightning training step of the tiny model on random clips, saved as a regular checkpoint."""
    trainer = L.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=path.parent,
    )
    trainer.fit(tiny_model(), tiny_data())
    trainer.save_checkpoint(path)
    return path


def tiny_gyt() -> EvalDataset:
    """Step "a" at seconds 1–2 of a 4-second 20×10 video: a small box at t=1, the right half at t=2."""
    rec = VideoRecord(
        video_id="v1",
        frame_size=(20, 10),
        num_frames=4,
        segments=[Segment("a", "a", 1, 3)],
        labels={1: "a", 2: "a"},
        boxes={1: (0, 0, 4, 4), 2: (10, 0, 19, 9)},
        queries=["a"],
    )
    return EvalDataset("gyt", [rec], DatasetReport("gyt", "hand-built"))
