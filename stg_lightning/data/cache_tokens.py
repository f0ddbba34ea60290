"""Cached tokens for a frozen backbone: one pass over JPEG clip shards → token shards of the same names.

Each output sample keeps the clip's JSON (plus `grid`) and stores fp16 arrays `frame_global.npy` [n, Dv],
`frame_patches.npy` [n, N, Dp], `sentence.npy` [Dt], `words.npy` [K, Dw] and bool `word_mask.npy` [K].
Frames are centre-cropped (no augmentation), exactly as the DataModule does for validation, so training on
cached tokens matches on-the-fly training without augmentation. Finished shards are kept on reruns.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stg_lightning.data.shards import SUMMARY_NAME, ShardWriter, count_shard_samples, iter_shard
from stg_lightning.data.transforms import ClipAugment, decode_clip
from stg_lightning.progress import track


def _npy(tensor: torch.Tensor, dtype: type) -> bytes:
    buf = io.BytesIO()
    np.save(buf, tensor.detach().cpu().numpy().astype(dtype), allow_pickle=False)
    return buf.getvalue()


@torch.no_grad()
def encode_clip(
    backbone: nn.Module, key: str, files: dict[str, bytes], device: torch.device
) -> dict[str, bytes]:
    """JPEG clip sample → token sample (see module docstring)."""
    meta = json.loads(files["json"])
    augment = ClipAugment(backbone.image_size, len(meta["timestamps"]), random_crop=False)
    clip = decode_clip({**files, "__key__": key}, augment, use_cached_tokens=False, rng=random.Random(0))
    frames = backbone.normalize(clip["frames"].to(device))
    frame_tokens = backbone.encode_frames(frames[None])
    text_tokens = backbone.encode_text(backbone.tokenize([meta["text"]]).to(device))
    meta["grid"] = list(frame_tokens.grid)
    return {
        "json": json.dumps(meta).encode(),
        "frame_global.npy": _npy(frame_tokens.global_[0], np.float16),
        "frame_patches.npy": _npy(frame_tokens.patches[0], np.float16),
        "sentence.npy": _npy(text_tokens.sentence[0], np.float16),
        "words.npy": _npy(text_tokens.words[0], np.float16),
        "word_mask.npy": _npy(text_tokens.word_mask[0], np.bool_),
    }


def cache_tokens(
    shards: list[Path],
    out_dir: Path,
    backbone: nn.Module,
    device: str = "cpu",
    progress: bool = True,
    about: dict | None = None,
) -> dict:
    """Write `out_dir/<shard name>` for every JPEG shard not done yet; returns (and saves) the summary, with
    `about`'s entries (e.g. the backbone's config) added."""
    if getattr(backbone, "temporal_stride", 1) != 1:
        raise ValueError("cached tokens need one token per frame; this backbone pools frames over time")
    out_dir.mkdir(parents=True, exist_ok=True)
    backbone = backbone.to(device).eval()
    counts = {}
    for shard in track(shards, "cache tokens", "shard", disable=not progress):
        dst = out_dir / shard.name
        if not dst.is_file():
            writer = ShardWriter(dst)
            for key, files in iter_shard(shard):
                writer.add(key, encode_clip(backbone, key, files, torch.device(device)))
            writer.close()
        counts[dst.name] = count_shard_samples(dst)
    summary = {"source": [str(s) for s in shards], "shards": counts, **(about or {})}
    (out_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=1))
    return summary


def cache_tokens_for_shards(
    shards: list[Path], out_dir: Path, backbone: dict, device: str, progress: bool
) -> dict:
    """Build the frozen backbone the `model.backbone`-style mapping names and cache its tokens; the summary
    records that config, so a training can be checked against it."""
    from stg_lightning.backbones import backbone_config, build_backbone, config_to_dict

    config = backbone_config({**backbone, "finetune": False})
    about = {"backbone": config_to_dict(config)}
    return cache_tokens(shards, out_dir, build_backbone(config), device, progress, about)
