"""ClipBatch: the one batch format every DataModule delivers and the training module reads."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from torch import Tensor

from stg_lightning.tokens import FrameTokens, TextTokens


@dataclass
class ClipBatch:
    """B narrated clips of up to U frames.

    frame_mask [B, U]: True on real frames (padding after a short clip is never a valid black frame);
    timestamps [B, U]: seconds in the source video; video_id, text: B strings.
    Frames come as exactly one of `frames` [B, U, 3, H, W] (uint8 pixels, or float already normalised) or
    `tokens` (cached backbone outputs, `stg prepare --cache-tokens`). Text comes as `text_ids` [B, L] (the
    backbone's tokenizer, run in the workers), as cached `text_tokens`, or as neither: the model tokenizes
    `text` itself (backbones with their own tokenizer, e.g. S3D-word2vec).
    skipped / skip_reasons: samples the workers dropped since the previous batch, and why.
    """

    frame_mask: Tensor
    timestamps: Tensor
    video_id: list[str]
    text: list[str]
    frames: Tensor | None = None
    tokens: FrameTokens | None = None
    text_ids: Tensor | None = None
    text_tokens: TextTokens | None = None
    skipped: int = 0
    skip_reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if (self.frames is None) == (self.tokens is None):
            raise ValueError("ClipBatch: give exactly one of frames (pixels) and tokens (cached)")

    @property
    def size(self) -> int:
        return self.frame_mask.shape[0]

    def pin_memory(self) -> ClipBatch:
        """Pinned host copies of the tensors (DataLoader pin_memory calls this on custom batches)."""

        def pin(value: object) -> object:
            if isinstance(value, Tensor):
                return value.pin_memory()
            if isinstance(value, FrameTokens | TextTokens):
                return type(value)(**{f.name: pin(getattr(value, f.name)) for f in fields(value)})
            return value

        return replace(self, **{f.name: pin(getattr(self, f.name)) for f in fields(self)})
