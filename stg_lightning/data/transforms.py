"""Per-clip decoding and augmentation (in DataLoader workers) and batch collation with frame masks.

Frames leave the workers as uint8 [U, 3, S, S] (4× less inter-process traffic than float); the model normalises
them on the training device with its backbone's own mean and std. Cached-token clips keep their fp16 arrays.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg

from stg_lightning.data.batch import ClipBatch
from stg_lightning.tokens import FrameTokens, TextTokens

TOKEN_KEYS = ("frame_global", "frame_patches", "sentence", "words", "word_mask")


@dataclass
class ClipAugment:
    """One spatial crop (random or centre) and optional horizontal flip shared by all frames of a clip,
    after resizing the short side to `image_size`; clips longer than `num_frames` keep a random (or the
    middle) run of `num_frames` consecutive frames."""

    image_size: int
    num_frames: int
    random_crop: bool = True
    flip_prob: float = 0.0

    def temporal(self, n: int, rng: random.Random) -> slice:
        extra = max(0, n - self.num_frames)
        start = rng.randint(0, extra) if self.random_crop else extra // 2
        return slice(start, start + min(n, self.num_frames))

    def __call__(self, frames: Tensor, rng: random.Random) -> Tensor:
        """uint8 [n, 3, H, W] → uint8 [n, 3, image_size, image_size]."""
        size = self.image_size
        height, width = frames.shape[-2:]
        if min(height, width) != size:
            scale = size / min(height, width)
            new = (max(size, round(height * scale)), max(size, round(width * scale)))
            frames = F.interpolate(
                frames.float(), size=new, mode="bilinear", antialias=True, align_corners=False
            )
            frames = frames.round().clamp(0, 255).to(torch.uint8)
            height, width = new
        if self.random_crop:
            top, left = rng.randint(0, height - size), rng.randint(0, width - size)
        else:
            top, left = (height - size) // 2, (width - size) // 2
        frames = frames[..., top : top + size, left : left + size]
        if self.flip_prob > 0 and rng.random() < self.flip_prob:
            frames = frames.flip(-1)
        return frames


def _npy(data: bytes) -> Tensor:
    return torch.from_numpy(np.load(io.BytesIO(data), allow_pickle=False))


def decode_clip(sample: dict, augment: ClipAugment, use_cached_tokens: bool, rng: random.Random) -> dict:
    """A raw WebDataset sample (bytes by extension) → one clip dict; raises on anything unreadable."""
    meta = json.loads(sample["json"])
    clip = {"video_id": meta["video_id"], "text": meta["text"]}
    timestamps = torch.tensor(meta["timestamps"], dtype=torch.float32)
    span = augment.temporal(len(timestamps), rng)
    clip["timestamps"] = timestamps[span]
    if use_cached_tokens:
        missing = [k for k in TOKEN_KEYS if f"{k}.npy" not in sample]
        if missing:
            raise KeyError(
                f"{sample['__key__']}: no cached {missing} (shards from `stg prepare --cache-tokens`?)"
            )
        clip.update({k: _npy(sample[f"{k}.npy"]) for k in TOKEN_KEYS})
        clip["frame_global"], clip["frame_patches"] = clip["frame_global"][span], clip["frame_patches"][span]
        clip["grid"] = tuple(meta["grid"])
    else:
        names = [f"{i:03d}.jpg" for i in range(len(timestamps))][span]
        missing = [n for n in names if n not in sample]
        if missing:
            raise KeyError(f"{sample['__key__']}: frames {missing} missing (truncated shard?)")
        data = [torch.frombuffer(bytearray(sample[n]), dtype=torch.uint8) for n in names]
        clip["frames"] = augment(torch.stack(decode_jpeg(data, mode=ImageReadMode.RGB)), rng)
    return clip


def _pad_frames(tensors: list[Tensor], num_frames: int) -> Tensor:
    """Stack [n_i, ...] tensors into [B, num_frames, ...], zero after each clip's n_i frames."""
    out = tensors[0].new_zeros((len(tensors), num_frames, *tensors[0].shape[1:]))
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out


def collate_clips(
    clips: list[dict], num_frames: int, tokenizer: Callable[[list[str]], Tensor] | None
) -> ClipBatch:
    """Batch clips, padding to `num_frames` with `frame_mask` False on padding (never a valid black frame).

    `tokenizer` None leaves the sentences untokenized (the model's backbone tokenizes them itself).
    """
    lengths = torch.tensor([len(c["timestamps"]) for c in clips])
    texts = [c["text"] for c in clips]
    common = {
        "frame_mask": torch.arange(num_frames)[None, :] < lengths[:, None],
        "timestamps": _pad_frames([c["timestamps"] for c in clips], num_frames),
        "video_id": [c["video_id"] for c in clips],
        "text": texts,
    }
    if "frames" in clips[0]:
        frames = _pad_frames([c["frames"] for c in clips], num_frames)
        return ClipBatch(**common, frames=frames, text_ids=None if tokenizer is None else tokenizer(texts))
    tokens = FrameTokens(
        _pad_frames([c["frame_global"] for c in clips], num_frames),
        _pad_frames([c["frame_patches"] for c in clips], num_frames),
        clips[0]["grid"],
    )
    text = TextTokens(*(torch.stack([c[key] for c in clips]) for key in ("sentence", "words", "word_mask")))
    return ClipBatch(**common, tokens=tokens, text_tokens=text)
