"""Reading backbone weight files: raw state dicts, {"state_dict": ...}, "module." prefixes, safetensors,
and TorchScript archives (OpenAI's original CLIP .pt files)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from torch import Tensor

from stg_lightning.errors import StgUserError

# Non-weight entries of OpenAI's TorchScript CLIP archives.
_TORCHSCRIPT_EXTRAS = ("input_resolution", "context_length", "vocab_size")


class BackboneWeightsUnavailable(StgUserError, RuntimeError):
    """Pretrained weights were asked for by tag but are neither cached nor downloadable."""


def checkpoint_file(path: str | Path, key: str) -> Path:
    """The existing file at `path`, or a FileNotFoundError naming the config key to fix."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"{key}: checkpoint file not found: {file}. Pass an existing file (--{key}=/path)."
        )
    return file


def read_state_dict(path: str | Path, key: str) -> dict[str, Tensor]:
    """Load the weights stored at `path` as a flat state dict; `key` names the config entry in errors."""
    file = checkpoint_file(path, key)
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(file), device="cpu")
    elif _is_torchscript(file):
        state = dict(torch.jit.load(str(file), map_location="cpu").state_dict())
        for extra in _TORCHSCRIPT_EXTRAS:
            state.pop(extra, None)
    else:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"{key}: cannot read {file} as a PyTorch checkpoint: {err}") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(
            f"{key}: {file} holds no state dict (expected name → tensor, or {{'state_dict': ...}})"
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def _is_torchscript(file: Path) -> bool:
    if not zipfile.is_zipfile(file):
        return False
    with zipfile.ZipFile(file) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())
