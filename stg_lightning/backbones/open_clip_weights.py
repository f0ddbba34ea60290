"""Creating an open_clip model with weights from a tag (cache first, network never waited on) or a file."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import open_clip
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from open_clip.convert import convert_state_dict
from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed
from torch import nn

from stg_lightning.backbones.checkpoints import BackboneWeightsUnavailable, read_state_dict

PRETRAINED_KEY = "model.backbone.pretrained"
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
_PROBE_TIMEOUT_S = 3.0


def create_open_clip(
    model_name: str,
    pretrained: str | None,
    image_size: int | None = None,
    cache_dir: str | None = None,
    download: bool = True,
    quick_gelu: bool = False,
) -> tuple[nn.Module, dict]:
    """Build `model_name` (with QuickGELU when `quick_gelu`: building with pretrained=None and loading the
    weights after skips open_clip's own tag → activation choice) and load `pretrained` (None, tag or file).
    Returns (model, tag's pretrained cfg)."""
    if model_name not in open_clip.list_models():
        raise ValueError(
            f"model.backbone.model_name={model_name!r} is not an open_clip model; "
            f"known: {open_clip.list_models()}"
        )
    checkpoint, tag_cfg = None, {}
    if pretrained:
        checkpoint, tag_cfg = resolve_checkpoint(model_name, pretrained, cache_dir, download)
    with _quiet_random_init():  # weights come next (a tag/file here, or a training checkpoint later)
        model = open_clip.create_model(
            model_name, pretrained=None, force_image_size=image_size, force_quick_gelu=quick_gelu
        )
    if checkpoint is not None:
        load_open_clip_weights(model, checkpoint, model_name)
    return model, tag_cfg


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Model initialized randomly" not in record.getMessage()


@contextmanager
def _quiet_random_init() -> Iterator[None]:
    """Drop open_clip's "Model initialized randomly" warning, which it logs for every pretrained=None build."""
    root, drop = logging.getLogger(), _DropRandomInitWarning()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def resolve_checkpoint(
    model_name: str, pretrained: str, cache_dir: str | None, download: bool
) -> tuple[Path, dict]:
    """Local file for `pretrained`: the path itself, or the cached/downloaded file of an open_clip tag."""
    path = Path(pretrained).expanduser()
    if path.is_file():
        return path, {}
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not tag_cfg:
        if path.suffix in _CHECKPOINT_SUFFIXES or os.sep in pretrained:
            raise FileNotFoundError(f"{PRETRAINED_KEY}: checkpoint file not found: {path}")
        raise ValueError(
            f"{PRETRAINED_KEY}={pretrained!r} is neither a file nor a pretrained tag of {model_name!r} "
            f"(tags: {open_clip.list_pretrained_tags_by_model(model_name)})"
        )
    if "file" in tag_cfg:
        return Path(tag_cfg["file"]), tag_cfg
    cached = _cached_file(tag_cfg, cache_dir)
    if cached is not None:
        return cached, tag_cfg
    reason = _why_no_download(tag_cfg, download)
    if reason is None:
        try:
            return Path(open_clip.download_pretrained(tag_cfg, cache_dir=cache_dir)), tag_cfg
        except Exception as err:
            reason = f"download failed: {err}"
    raise BackboneWeightsUnavailable(
        f"Pretrained weights {pretrained!r} of open_clip model {model_name!r} are not in the local cache and "
        f"cannot be fetched ({reason}). Download the checkpoint where there is network access (e.g. "
        f"open_clip.create_model({model_name!r}, pretrained={pretrained!r}) fills the cache), copy the file "
        f"here and pass its path: --{PRETRAINED_KEY}=/path/to/file.pt (config key {PRETRAINED_KEY})."
    )


def load_open_clip_weights(model: nn.Module, checkpoint: str | Path, model_name: str) -> None:
    """Load an open_clip/OpenAI checkpoint file into `model` (strict: every key must match)."""
    state = read_state_dict(checkpoint, PRETRAINED_KEY)
    state = convert_state_dict(model, state)
    if "positional_embedding" in state and not hasattr(model, "positional_embedding"):
        state = convert_to_custom_text_state_dict(state)
    resize_pos_embed(state, model)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise ValueError(
            f"{PRETRAINED_KEY}: {checkpoint} does not fit open_clip model {model_name!r}: {err}"
        ) from err
    if missing or unexpected:
        raise ValueError(
            f"{PRETRAINED_KEY}: {checkpoint} does not fit open_clip model {model_name!r} "
            f"(missing keys {missing[:5]}, unexpected keys {unexpected[:5]}); check model.backbone.model_name"
        )


def _hf_candidates(hf_hub: str) -> tuple[str, list[str]]:
    # open_clip's hf_hub entries are "org/repo/filename" or "org/repo/" (default filename), and it prefers
    # a safetensors twin of .bin/.pth files.
    repo_id, filename = os.path.split(hf_hub)
    filename = filename or HF_WEIGHTS_NAME
    stem, suffix = os.path.splitext(filename)
    if filename == HF_WEIGHTS_NAME:
        return repo_id, [HF_SAFE_WEIGHTS_NAME, filename]
    if suffix in (".bin", ".pth"):
        return repo_id, [stem + ".safetensors", filename]
    return repo_id, [filename]


def _cached_file(tag_cfg: dict, cache_dir: str | None) -> Path | None:
    if tag_cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo_id, names = _hf_candidates(tag_cfg["hf_hub"])
        for name in names:
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str):
                return Path(found)
    if tag_cfg.get("url"):
        file = Path(cache_dir or "~/.cache/clip").expanduser() / os.path.basename(tag_cfg["url"])
        if file.is_file():
            return file
    return None


def _why_no_download(tag_cfg: dict, download: bool) -> str | None:
    """Reason not to try a download, or None. Probing first avoids huggingface_hub's ~45 s of retries."""
    if not download:
        return "model.backbone.download=false"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    host = "huggingface.co" if tag_cfg.get("hf_hub") else urlparse(tag_cfg.get("url", "")).hostname
    if host is None or not _reachable(host):
        return f"no network connection to {host}"
    return None


def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=_PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True
