"""Backbone configurations, one class per backbone (docs/method.md §1); `--model.backbone.<field>`.

The CLI selects a backbone by its fields (an S3D-only key picks `S3DConfig`) or explicitly:
`model.backbone: {class_path: stg_lightning.backbones.S3DConfig, init_args: {...}}`. Checkpoints store the
same `{class_path, init_args}` form (`config_to_dict`), so a run reloads with the backbone it trained with.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, replace
from typing import Any

import open_clip

from stg_lightning.backbones.tiny_configs import register_tiny_configs


@dataclass(frozen=True)
class InputSpec:
    """What a data pipeline must deliver for a backbone: square frames of `image_size` pixels, and token ids
    of the open_clip tokenizer `tokenizer` padded to `context_length` (None: raw sentences only; the backbone
    tokenizes them itself, as S3D-word2vec does)."""

    image_size: int = 224
    tokenizer: str | None = "ViT-B-32"
    context_length: int = 77


@dataclass
class OpenClipConfig:
    """Any open_clip CLIP model (incl. the project's tiny registered ones).

    model_name: open_clip model name ("ViT-B-32", "RN50", "stg-tiny-vit", ...).
    pretrained: None (random init), an open_clip tag ("openai", "laion2b_s34b_b79k") or a local checkpoint
        file. Tags are read from the local cache first; a missing tag without network raises
        `BackboneWeightsUnavailable`.
    finetune: train the backbone (own learning rate, set by the LightningModule); frozen and in eval mode
        otherwise.
    max_words: K, word tokens kept per sentence (padded/truncated, with a mask).
    words_with_sentence: the last of the K word slots holds the sentence (EOT) token: the one text token that
        CLIP-style pretraining aligns with images, so the local head's word→region attention starts from it.
        The method's words exclude it (docs/method.md §1), hence off by default.
    local_attention_radius: ViT only. Patch tokens attend only to patches within this Chebyshev radius on
        the grid (CLS attends to all), so grid tokens stay local. None = the model's default (1 for
        "stg-tiny-vit-local" and "stg-tiny-vit-clip", global attention otherwise).
    local_attention_layers: how many leading vision layers use that local mask; the later ones attend
        globally and mix context into every patch token, as a real CLIP's late layers do. None = the model's
        default (2 for "stg-tiny-vit-clip", every layer otherwise).
    image_size: frame side in pixels; None = the model's native size (other sizes resize the positional
        embedding).
    download: allow fetching a tag's weights when they are not cached (never when HF_HUB_OFFLINE=1).
    cache_dir: open_clip/HF cache directory (None = their defaults).
    quick_gelu: the towers' activation. None = what the weights were trained with: the pretrained tag's
        setting (QuickGELU for OpenAI's CLIP weights: "ViT-B-32" + "openai"), else the model config's (plain
        GELU unless the name ends in "-quickgelu"). Set it for a local file of QuickGELU weights.
    """

    model_name: str = "ViT-B-32"
    pretrained: str | None = "openai"
    finetune: bool = False
    max_words: int = 20
    words_with_sentence: bool = False
    local_attention_radius: int | None = None
    local_attention_layers: int | None = None
    image_size: int | None = None
    download: bool = True
    cache_dir: str | None = None
    quick_gelu: bool | None = None

    def uses_quick_gelu(self) -> bool:
        """Whether to force QuickGELU: `quick_gelu` when set, else the pretrained tag's setting."""
        if self.quick_gelu is not None:
            return self.quick_gelu
        if not self.pretrained:  # a file or an unknown name has no tag config: {}
            return False
        return bool(open_clip.get_pretrained_cfg(self.model_name, self.pretrained).get("quick_gelu", False))

    def input_spec(self) -> InputSpec:
        """Frame size and tokenizer the data must use for this model (read from its open_clip config)."""
        register_tiny_configs()
        model_cfg = open_clip.get_model_config(self.model_name)
        if model_cfg is None:
            raise ValueError(
                f"model.backbone.model_name={self.model_name!r} is not an open_clip model; "
                f"known: {open_clip.list_models()}"
            )
        size = self.image_size or model_cfg["vision_cfg"]["image_size"]
        size = size if isinstance(size, int) else int(size[0])
        context = model_cfg.get("text_cfg", {}).get("context_length", 77)
        return InputSpec(image_size=size, tokenizer=self.model_name, context_length=context)

    def without_weights(self) -> OpenClipConfig:
        """The same architecture with nothing loaded (weights come from a checkpoint's state dict); the
        activation the tag implied is kept."""
        return replace(self, pretrained=None, quick_gelu=self.uses_quick_gelu())


@dataclass
class S3DConfig:
    """MIL-NCE S3D video network + word2vec text module (one token per 8 frames).

    checkpoint: MIL-NCE `s3d_howto100m.pth` (public key names) or a checkpoint of our own S3D backbone.
    dictionary: MIL-NCE `s3d_dict.npy` (word list; word i has embedding row i + 1, row 0 = padding).
    vocabulary: word list used instead of a dictionary file (random-init tests and demos).
    embed_dim: joint video-text space of MIL-NCE (video fc and text fc2 output).
    word_dim: word2vec embedding size.
    text_hidden_dim: MIL-NCE text fc1 width (per-word features = word tokens).
    project_patches: apply the video fc to every mixed_5c grid cell (patches share the global token's
        space, as for CLIP); False keeps the raw 1024-d mixed_5c features.
    pool_padding: the sentence max-pool also sees padding positions (embedding row 0), as the released
        MIL-NCE model does; False pools over real words only.
    finetune, max_words: as for open_clip. image_size: frames are resized to it (grid = size / 32).
    """

    checkpoint: str | None = None
    dictionary: str | None = None
    vocabulary: list[str] | None = None
    embed_dim: int = 512
    word_dim: int = 300
    text_hidden_dim: int = 2048
    project_patches: bool = True
    pool_padding: bool = True
    finetune: bool = False
    max_words: int = 20
    image_size: int = 224

    def input_spec(self) -> InputSpec:
        return InputSpec(image_size=self.image_size, tokenizer=None)

    def without_weights(self) -> S3DConfig:
        return replace(self, checkpoint=None)


BackboneConfig = OpenClipConfig | S3DConfig
BACKBONE_CONFIGS: tuple[type, ...] = (OpenClipConfig, S3DConfig)


def config_to_dict(cfg: BackboneConfig) -> dict[str, Any]:
    """`{class_path, init_args}`: plain types (checkpoint hparams stay loadable with weights_only)."""
    cls = type(cfg)
    return {"class_path": f"stg_lightning.backbones.{cls.__name__}", "init_args": asdict(cfg)}


def backbone_config(value: BackboneConfig | dict[str, Any] | None) -> BackboneConfig:
    """A backbone config from an instance, a `{class_path, init_args}` dict, or None (open_clip defaults)."""
    if value is None:
        return OpenClipConfig()
    if isinstance(value, BACKBONE_CONFIGS):
        return value
    if isinstance(value, dict) and "class_path" in value:
        module, _, name = str(value["class_path"]).rpartition(".")
        cls = getattr(importlib.import_module(module), name, None)
        if cls not in BACKBONE_CONFIGS:
            raise ValueError(
                f"model.backbone.class_path={value['class_path']!r} is not a backbone config; choose one "
                f"of {[c.__name__ for c in BACKBONE_CONFIGS]}"
            )
        return cls(**value.get("init_args", {}))
    if isinstance(value, dict):
        # A plain mapping of fields: the config class whose fields it names (as the CLI decides).
        for cls in BACKBONE_CONFIGS:
            if set(value) <= set(cls.__dataclass_fields__):
                return cls(**value)
        raise ValueError(f"model.backbone: keys {sorted(value)} fit no backbone config")
    raise TypeError(f"expected a backbone config or dict, got {type(value).__name__}")
