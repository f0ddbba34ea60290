"""The models `stg eval` runs: a training checkpoint's GroundingModel, or a raw open_clip model (zero-shot)."""

from __future__ import annotations

from pathlib import Path

import torch

from stg_lightning.backbones import OpenClipConfig, backbone_config
from stg_lightning.errors import StgUserError
from stg_lightning.lit_module import GroundingModule
from stg_lightning.model import GroundingModel


def load_model(ckpt: str | Path, device: str) -> GroundingModel:
    """The GroundingModel of a training checkpoint; backbone weights come from the checkpoint itself
    (no pretrained download is attempted)."""
    path = Path(ckpt)
    if not path.is_file():
        raise StgUserError(f"--ckpt {path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        hparams = dict(checkpoint["hyper_parameters"])
        hparams["backbone"] = backbone_config(hparams.get("backbone")).without_weights()
        module = GroundingModule(**hparams)
        module.load_state_dict(checkpoint["state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as err:
        raise StgUserError(f"--ckpt {path}: not a GroundingModule checkpoint ({err})") from err
    return module.model.to(device).eval()


def zero_shot_model(spec: str, device: str) -> GroundingModel:
    """`MODEL[:TAG]` → a GroundingModel whose backbone is that open_clip model (heads unused)."""
    name, _, tag = spec.partition(":")
    return GroundingModel(OpenClipConfig(model_name=name, pretrained=tag or None)).to(device).eval()


def resolve_device(name: str) -> str:
    """``auto`` → cuda when available, else cpu; any other name as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name
