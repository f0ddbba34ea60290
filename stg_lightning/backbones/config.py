"""Configuration of the video/text backbone (DESIGN §3.1); exposed as `--model.backbone.<field>`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BackboneConfig:
    """Which backbone to build and how to load it.

    kind: "open_clip" (any open_clip CLIP model, incl. our tiny registered ones) or "s3d_word2vec"
        (MIL-NCE S3D video network + word2vec text module).
    model_name: open_clip model name ("ViT-B-32", "RN50", "stg-tiny-vit", ...); ignored for S3D.
    pretrained: None (random init), an open_clip tag ("openai", "laion2b_s34b_b79k") or a local checkpoint
        file. Tags are read from the local cache first; a missing tag without network raises
        `BackboneWeightsUnavailable`.
    finetune: train the backbone (own learning rate, set by the LightningModule); frozen and in eval mode
        otherwise.
    max_words: K, word tokens kept per sentence (padded/truncated, with a mask).
    words_with_sentence: open_clip only. The last of the K word slots holds the sentence (EOT) token: the one
        text token that CLIP-style pretraining aligns with images, so the local head's word→region attention
        starts from it. DESIGN §2's words exclude it, hence off by default.
    local_attention_radius: ViT only. Patch tokens attend only to patches within this Chebyshev radius on
        the grid (CLS attends to all), so grid tokens stay local. None = the model's default (1 for
        "stg-tiny-vit-local", global attention otherwise).
    image_size: frame side in pixels. open_clip: None = the model's native size (other sizes resize the
        positional embedding). S3D: the size frames are resized to (grid = size / 32).
    download: allow fetching a tag's weights when they are not cached (never when HF_HUB_OFFLINE=1).
    cache_dir: open_clip/HF cache directory (None = their defaults).
    s3d_checkpoint: MIL-NCE `s3d_howto100m.pth` (public key names) or a checkpoint of our own S3D backbone.
    s3d_dictionary: MIL-NCE `s3d_dict.npy` (word list; word i has embedding row i + 1, row 0 = padding).
    s3d_vocabulary: word list used instead of a dictionary file (random-init tests and demos).
    s3d_embed_dim: joint video-text space of MIL-NCE (video fc and text fc2 output).
    s3d_word_dim: word2vec embedding size.
    s3d_text_hidden_dim: MIL-NCE text fc1 width (per-word features = word tokens).
    s3d_project_patches: apply the video fc to every mixed_5c grid cell (patches share the global token's
        space, as for CLIP); False keeps the raw 1024-d mixed_5c features.
    s3d_pool_padding: the sentence max-pool also sees padding positions (embedding row 0), as the released
        MIL-NCE model does; False pools over real words only.
    """

    kind: str = "open_clip"
    model_name: str = "ViT-B-32"
    pretrained: str | None = "openai"
    finetune: bool = False
    max_words: int = 20
    words_with_sentence: bool = False
    local_attention_radius: int | None = None
    image_size: int | None = None
    download: bool = True
    cache_dir: str | None = None
    s3d_checkpoint: str | None = None
    s3d_dictionary: str | None = None
    s3d_vocabulary: list[str] | None = None
    s3d_embed_dim: int = 512
    s3d_word_dim: int = 300
    s3d_text_hidden_dim: int = 2048
    s3d_project_patches: bool = True
    s3d_pool_padding: bool = True
