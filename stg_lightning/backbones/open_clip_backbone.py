"""open_clip backbone: frame CLS + patch-grid tokens and sentence (EOT) + word (BPE) tokens (docs/method.md §1)."""

from __future__ import annotations

import open_clip
import torch
from open_clip.modified_resnet import ModifiedResNet
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import VisionTransformer
from torch import Tensor, nn

from stg_lightning.backbones.base import Backbone
from stg_lightning.backbones.config import OpenClipConfig
from stg_lightning.backbones.open_clip_weights import create_open_clip
from stg_lightning.backbones.tiny_configs import (
    DEFAULT_LOCAL_ATTENTION_LAYERS,
    DEFAULT_LOCAL_ATTENTION_RADIUS,
    register_tiny_configs,
)
from stg_lightning.tokens import FrameTokens, TextTokens


class OpenClipBackbone(Backbone):
    """Any open_clip CLIP with a ViT or ModifiedResNet image tower and a CLIP text transformer.

    Frames: global = [CLS] after ln_post and proj; patches = patch tokens after ln_post and the same proj
    (row-major grid). ResNet towers: global = attention-pool output; patches = the pool's value and output
    projections applied at every grid cell (MaskCLIP). Text: sentence = EOT token after ln_final and
    text_projection; words = the tokens strictly between SOT and EOT with the same projection.
    """

    def __init__(self, cfg: OpenClipConfig) -> None:
        super().__init__(cfg.finetune)
        register_tiny_configs()
        model, tag_cfg = create_open_clip(
            cfg.model_name, cfg.pretrained, cfg.image_size, cfg.cache_dir, cfg.download, cfg.uses_quick_gelu()
        )
        self.visual = model.visual
        self._init_text_tower(model, cfg.model_name)
        self.tokenizer = open_clip.get_tokenizer(cfg.model_name)
        if not isinstance(self.tokenizer, SimpleTokenizer):
            raise NotImplementedError(
                f"{cfg.model_name}: only CLIP BPE tokenizers (SOT ... EOT) give word tokens; "
                f"got {type(self.tokenizer).__name__}"
            )
        self._init_visual_layout(cfg)

        preprocess = getattr(self.visual, "preprocess_cfg", {})
        self.mean = tuple(tag_cfg.get("mean") or preprocess.get("mean") or open_clip.OPENAI_DATASET_MEAN)
        self.std = tuple(tag_cfg.get("std") or preprocess.get("std") or open_clip.OPENAI_DATASET_STD)
        self.max_words = cfg.max_words
        self.words_with_sentence = cfg.words_with_sentence
        self.frame_dim = self.patch_dim = self.visual.output_dim
        proj = self.text.text_projection
        self.sentence_dim = self.word_dim = (
            self.text.ln_final.normalized_shape[0]
            if proj is None
            else (proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1])
        )
        self._set_trainable()

    # ------------------------------------------------------------------ construction
    def _init_text_tower(self, model: nn.Module, model_name: str) -> None:
        # CLIP keeps the text tower's modules on the model itself, CustomTextCLIP under `model.text`; we
        # hold them under `self.text` with open_clip's names either way (see `open_clip_state_dict`).
        self._flat_text = not hasattr(model, "text")
        if self._flat_text:
            self.text = nn.Module()
            for name in (
                "token_embedding",
                "positional_embedding",
                "transformer",
                "ln_final",
                "text_projection",
            ):
                setattr(self.text, name, getattr(model, name))
            self.text.register_buffer("attn_mask", model.attn_mask, persistent=False)
        else:
            self.text = model.text
        if not hasattr(self.text, "token_embedding") or getattr(self.text, "cls_emb", None) is not None:
            raise NotImplementedError(
                f"{model_name}: only CLIP-style text transformers (no HF / CoCa towers)"
            )
        # Kept (not trained) so that `open_clip_state_dict` is a complete open_clip checkpoint.
        self.register_buffer("logit_scale", model.logit_scale.detach().clone())

    def _init_visual_layout(self, cfg: OpenClipConfig) -> None:
        radius = cfg.local_attention_radius
        if radius is None:
            radius = DEFAULT_LOCAL_ATTENTION_RADIUS.get(cfg.model_name)
        if isinstance(self.visual, VisionTransformer):
            if self.visual.attn_pool is not None or self.visual.pool_type not in ("tok", "avg"):
                raise NotImplementedError(
                    f"{cfg.model_name}: ViTs with attentional pooling are not supported"
                )
            size = self.visual.image_size
            self.grid = tuple(self.visual.grid_size)
            mask = None if radius is None else local_attention_mask(self.grid, radius)
            self.register_buffer("vit_attn_mask", mask, persistent=False)
            depth = len(self.visual.transformer.resblocks)
            local = cfg.local_attention_layers
            if local is None:
                local = DEFAULT_LOCAL_ATTENTION_LAYERS.get(cfg.model_name, depth)
            if not 0 <= local <= depth:
                raise ValueError(
                    f"model.backbone.local_attention_layers must be in [0, {depth}] for {cfg.model_name}, "
                    f"got {local}"
                )
            self.local_layers = local
        elif isinstance(self.visual, ModifiedResNet):
            if radius is not None or cfg.local_attention_layers is not None:
                raise ValueError(
                    "model.backbone.local_attention_radius / local_attention_layers apply to ViT towers only"
                )
            size = self.visual.image_size
            side = size // 32  # ModifiedResNet downsamples by 32
            self.grid = (side, side)
        else:
            raise NotImplementedError(
                f"{cfg.model_name}: image tower {type(self.visual).__name__} is not supported "
                "(ViT or ModifiedResNet)"
            )
        size = (size, size) if isinstance(size, int) else tuple(size)
        if size[0] != size[1]:
            raise NotImplementedError(f"{cfg.model_name}: non-square image size {size}")
        self.image_size = size[0]

    # ------------------------------------------------------------------ text
    def tokenize(self, texts: list[str]) -> Tensor:
        return self.tokenizer(list(texts))

    def _encode_text(self, token_ids: Tensor) -> TextTokens:
        length = token_ids.shape[1]
        text = self.text
        x = text.token_embedding(token_ids) + text.positional_embedding[:length]
        mask = None if text.attn_mask is None else text.attn_mask[:length, :length]
        x = text.ln_final(text.transformer(x, attn_mask=mask))
        x = _project(x, text.text_projection)
        eot = (token_ids == self.tokenizer.eot_token_id).int().argmax(dim=1)  # first EOT
        rows = torch.arange(token_ids.shape[0], device=token_ids.device)
        sentence = x[rows, eot]
        words, word_mask = _span(x, start=1, end=eot, max_len=self.max_words - int(self.words_with_sentence))
        if self.words_with_sentence:
            words = torch.cat([words, sentence[:, None]], dim=1)
            word_mask = torch.cat([word_mask, word_mask.new_ones(word_mask.shape[0], 1)], dim=1)
        return TextTokens(sentence=sentence, words=words, word_mask=word_mask)

    def open_clip_state_dict(self) -> dict[str, Tensor]:
        """Weights under open_clip's key names: a file that `pretrained=<path>` (or open_clip) loads."""
        state = self.state_dict()
        return {k.removeprefix("text.") if self._flat_text else k: v for k, v in state.items()}

    # ------------------------------------------------------------------ frames
    def _encode_frames(self, frames: Tensor) -> FrameTokens:
        b, u, _, h, w = frames.shape
        if (h, w) != (self.image_size, self.image_size):
            raise ValueError(
                f"frames are {h}×{w} px but the backbone expects {self.image_size}×{self.image_size} "
                "(resize frames, or set model.backbone.image_size)"
            )
        images = frames.flatten(0, 1)
        if isinstance(self.visual, VisionTransformer):
            global_, patches = self._vit_tokens(images)
        else:
            global_, patches = self._resnet_tokens(images)
        return FrameTokens(
            global_=global_.view(b, u, -1), patches=patches.view(b, u, patches.shape[1], -1), grid=self.grid
        )

    def _vit_tokens(self, images: Tensor) -> tuple[Tensor, Tensor]:
        # VisionTransformer.forward without patch dropout (it would break the grid), with our attention mask.
        vit = self.visual
        x = vit.conv1(images).flatten(2).transpose(1, 2)  # [n, N, width], row-major grid
        cls = vit.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + vit.positional_embedding.to(x.dtype)
        x = vit.ln_pre(x)
        if not vit.transformer.batch_first:
            raise NotImplementedError("open_clip ViTs with sequence-first transformers are not supported")
        for i, block in enumerate(vit.transformer.resblocks):
            x = block(x, attn_mask=self.vit_attn_mask if i < self.local_layers else None)
        if vit.final_ln_after_pool:
            pooled = vit.ln_post(_vit_pool(x, vit.pool_type))
            x = vit.ln_post(x)
        else:
            x = vit.ln_post(x)
            pooled = _vit_pool(x, vit.pool_type)
        return _project(pooled, vit.proj), _project(x[:, 1:], vit.proj)

    def _resnet_tokens(self, images: Tensor) -> tuple[Tensor, Tensor]:
        rn = self.visual
        x = rn.layer4(rn.layer3(rn.layer2(rn.layer1(rn.stem(images)))))
        pool = rn.attnpool
        cells = x.flatten(2).transpose(1, 2) + pool.positional_embedding[1:].to(x.dtype)
        return pool(x), pool.c_proj(pool.v_proj(cells))


def local_attention_mask(grid: tuple[int, int], radius: int) -> Tensor:
    """Additive mask [1 + N, 1 + N] over (CLS, patches): CLS sees all; a patch sees patches within Chebyshev
    `radius` only. Patches do not see CLS: it mixes in the whole image after one layer, so locality would
    leak through it."""
    if radius < 0:
        raise ValueError(f"model.backbone.local_attention_radius must be >= 0, got {radius}")
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    near = torch.maximum((rows[:, None] - rows[None]).abs(), (cols[:, None] - cols[None]).abs()) <= radius
    allowed = torch.ones(1 + near.shape[0], 1 + near.shape[0], dtype=torch.bool)
    allowed[1:, 0] = False
    allowed[1:, 1:] = near
    return torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))


def _vit_pool(x: Tensor, pool_type: str) -> Tensor:
    return x[:, 0] if pool_type == "tok" else x[:, 1:].mean(dim=1)


def _project(x: Tensor, proj: nn.Module | Tensor | None) -> Tensor:
    if proj is None:
        return x
    return proj(x) if isinstance(proj, nn.Module) else x @ proj


def _span(x: Tensor, start: int, end: Tensor, max_len: int) -> tuple[Tensor, Tensor]:
    """Positions start..end-1 of x [B, L, D] per row, padded/truncated to max_len (zeros + False mask)."""
    pos = start + torch.arange(max_len, device=x.device)[None, :]
    mask = pos < end[:, None]
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    gathered = x[rows, pos.clamp(max=x.shape[1] - 1)]
    return gathered * mask[..., None].to(gathered.dtype), mask
