"""Tiny open_clip architectures for tests and CPU demos, registered with open_clip's model registry.

- "stg-tiny-vit": ViT, 64 px frames, 8 px patches (8×8 grid), width 128, 3 vision / 2 text layers,
  context length 32, embed dim 128.
- "stg-tiny-vit-local": the same with 2 vision layers; the backbone runs it with local_attention_radius=1
  by default, so a grid token sees 5×5 patches and stays local (docs/method.md §1). With 3 layers (7×7 of
  the 8×8 grid) and ~1000 pretraining steps, one demo seed's background patches took over the text match
  (zero-shot pointing 0.52); with 2 layers the same seed kept 0.87 and learnt verbs as fast.
- "stg-tiny-vit-clip": the stand-in for CLIP's regime (docs/method.md §1): 3 vision layers, the first two
  with radius-1 local attention (a local trunk), the last attending globally, so context is mixed into every
  patch token as in a real CLIP's late layers while the residual stream keeps each patch's own content.
- "stg-tiny-rn": a tiny ModifiedResNet (2×2 grid at 64 px) for testing the ResNet path.
"""

from __future__ import annotations

from pathlib import Path

import open_clip

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
TINY_MODELS = tuple(sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.json")))

# Backbone default for `local_attention_radius` when the config leaves it None.
DEFAULT_LOCAL_ATTENTION_RADIUS = {"stg-tiny-vit-local": 1, "stg-tiny-vit-clip": 1}
# Backbone default for `local_attention_layers` (leading layers with the local mask) when left None.
DEFAULT_LOCAL_ATTENTION_LAYERS = {"stg-tiny-vit-clip": 2}


def register_tiny_configs() -> None:
    """Make the tiny models known to `open_clip.create_model` (idempotent)."""
    if not set(TINY_MODELS) <= set(open_clip.list_models()):
        open_clip.add_model_config(MODEL_CONFIG_DIR)
