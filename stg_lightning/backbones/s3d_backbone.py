"""S3D-word2vec backbone (MIL-NCE, HowTo100M) behind the common Backbone interface.

Frames [B, U, 3, H, W] in [0, 1] (mean 0, std 1) become one token set per 8 frames: time step t covers
frames [8t, 8t + 8), so FrameTokens hold U' = U / 8 steps (`temporal_stride` = 8). patches [B, U', N, D]
are the mixed_5c grid cells of step t (N = 7×7 at 224 px), projected by the video fc when
`project_patches`; global_ [B, U', 512] is fc(mean of mixed_5c over the step's grid), so the mean
over steps is exactly MIL-NCE's video embedding. Text: see `word2vec_text.py`.
"""

from __future__ import annotations

from torch import Tensor

from stg_lightning.backbones.base import Backbone
from stg_lightning.backbones.checkpoints import read_state_dict
from stg_lightning.backbones.config import S3DConfig
from stg_lightning.backbones.s3d import MIXED_5C_DIM, S3D, TEMPORAL_STRIDE, s3d_grid_side
from stg_lightning.backbones.word2vec_text import Word2VecSentence, Word2VecTokenizer, load_dictionary
from stg_lightning.tokens import FrameTokens, TextTokens

CHECKPOINT_KEY = "model.backbone.checkpoint"
# Public MIL-NCE checkpoint: video network at the top level, text module under "text_module.".
_PUBLIC_TEXT_PREFIX = "text_module."


class S3DWord2VecBackbone(Backbone):
    """MIL-NCE S3D video network + word2vec sentence module."""

    temporal_stride = TEMPORAL_STRIDE

    def __init__(self, cfg: S3DConfig) -> None:
        super().__init__(cfg.finetune)
        vocabulary = _vocabulary(cfg)
        self.tokenizer = Word2VecTokenizer(vocabulary, cfg.max_words)
        self.video = S3D(cfg.embed_dim)
        self.text_module = Word2VecSentence(
            len(self.tokenizer),
            cfg.word_dim,
            cfg.text_hidden_dim,
            cfg.embed_dim,
            cfg.pool_padding,
        )
        if cfg.checkpoint:
            self.load_checkpoint(cfg.checkpoint)
        self.project_patches = cfg.project_patches
        self.image_size = cfg.image_size
        side = s3d_grid_side(self.image_size)
        self.grid = (side, side)
        self.max_words = cfg.max_words
        self.mean, self.std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        self.frame_dim = self.sentence_dim = cfg.embed_dim
        self.patch_dim = cfg.embed_dim if self.project_patches else MIXED_5C_DIM
        self.word_dim = cfg.text_hidden_dim
        self._set_trainable()

    def load_checkpoint(self, path: str) -> None:
        """Load our own checkpoint or the public `s3d_howto100m.pth` (explicit key mapping, strict)."""
        state = read_state_dict(path, CHECKPOINT_KEY)
        if not any(k.startswith("video.") for k in state):
            state = map_public_keys(state)
        # Old checkpoints lack BatchNorm batch counters; they do not affect outputs.
        for name, buffer in self.state_dict().items():
            if name.endswith("num_batches_tracked"):
                state.setdefault(name, buffer.clone())
        embd = state.get("text_module.word_embd.weight")
        if embd is not None and embd.shape[0] != len(self.tokenizer):
            raise ValueError(
                f"{CHECKPOINT_KEY}: {path} has {embd.shape[0]} word embeddings but the dictionary gives "
                f"{len(self.tokenizer)} (words + padding); pass the matching model.backbone.dictionary"
            )
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(
                f"{CHECKPOINT_KEY}: {path} does not fit the S3D-word2vec backbone: {err}"
            ) from err

    def tokenize(self, texts: list[str]) -> Tensor:
        return self.tokenizer(texts)

    def _encode_text(self, token_ids: Tensor) -> TextTokens:
        sentence, words, mask = self.text_module(token_ids)
        return TextTokens(sentence=sentence, words=words, word_mask=mask)

    def _encode_frames(self, frames: Tensor) -> FrameTokens:
        u = frames.shape[1]
        if u % TEMPORAL_STRIDE:
            raise ValueError(f"S3D needs a multiple of {TEMPORAL_STRIDE} frames per clip, got U={u}")
        maps = self.video.features(frames.transpose(1, 2))  # [B, 1024, U/8, h, w]
        grid = (maps.shape[3], maps.shape[4])
        cells = maps.flatten(3).permute(0, 2, 3, 1)  # [B, U/8, N, 1024], row-major grid
        global_ = self.video.fc(cells.mean(dim=2))
        patches = self.video.fc(cells) if self.project_patches else cells
        return FrameTokens(global_=global_, patches=patches, grid=grid)


def map_public_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Public MIL-NCE names → ours: video network keys gain "video.", "text_module.*" is kept."""
    return {k if k.startswith(_PUBLIC_TEXT_PREFIX) else f"video.{k}": v for k, v in state.items()}


def _vocabulary(cfg: S3DConfig) -> list[str]:
    if cfg.dictionary and cfg.vocabulary:
        raise ValueError("set only one of model.backbone.dictionary and model.backbone.vocabulary")
    if cfg.dictionary:
        return load_dictionary(cfg.dictionary)
    if cfg.vocabulary:
        return list(cfg.vocabulary)
    raise ValueError(
        "the s3d_word2vec backbone needs a word list: model.backbone.dictionary=/path/to/s3d_dict.npy "
        "(MIL-NCE release) or model.backbone.vocabulary=[...] for a random-init model"
    )
