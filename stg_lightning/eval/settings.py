"""The evaluation settings a number was made with, stored beside the number (docs/evaluation.md §12).

A settings record is a plain dict (JSON- and ``torch.load(weights_only=True)``-safe)::

    {"inference": {InferenceConfig fields}, "scoring": {ScoringConfig fields}, "code_version": "<commit>",
     ...provenance: "dataset", "checkpoint" / "predictions" / "zero_shot", "written_by"}

It is stored in three places: a Lightning checkpoint under :data:`CHECKPOINT_KEY` (the readout the
checkpoint's numbers are read with: `stg demo` writes it), a predictions file's ``settings`` head
(`stg eval --save_predictions`, the demo's saved predictions; read by
`predictions.read_predictions_settings`) and every results JSON `stg eval` writes.
`stg eval --ckpt X` / `--predictions F` start from X's / F's stored ``inference`` and ``scoring`` sections:
dataclass defaults < stored settings < ``--config`` files < ``--key=value`` flags (:func:`base_config`).

Scoring a predictions file never imports torch: the checkpoint functions import it when called.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from stg_lightning.config import Parsed, as_config, from_dict, to_dict
from stg_lightning.errors import StgUserError
from stg_lightning.eval.predictions import read_predictions_settings
from stg_lightning.eval.readout import InferenceConfig
from stg_lightning.eval.scoring import ScoringConfig
from stg_lightning.runs import code_version

CHECKPOINT_KEY = "stg_eval_settings"
# The sections a stored record sets under `stg eval`'s own config, and their dataclasses.
SECTIONS: dict[str, type] = {"inference": InferenceConfig, "scoring": ScoringConfig}
# The flags naming what a tool runs or reads: a predictions file, a checkpoint, a raw open_clip model.
SOURCES = ("predictions", "ckpt", "zero_shot")


def eval_settings(
    inference: InferenceConfig | Mapping[str, Any],
    scoring: ScoringConfig | Mapping[str, Any],
    **provenance: Any,
) -> dict[str, Any]:
    """The record of these settings: both sections in full (dataclass fields as plain values), this code's
    version, and `provenance` (plain values: dataset, checkpoint, predictions, written_by, ...)."""
    record = {
        "inference": to_dict(as_config(inference, InferenceConfig)),
        "scoring": to_dict(as_config(scoring, ScoringConfig)),
        "code_version": code_version(),
        **provenance,
    }
    return _plain(record, "settings")


def store_in_checkpoint(path: str | Path, settings: Mapping[str, Any]) -> None:
    """Write `settings` into the checkpoint at `path` under :data:`CHECKPOINT_KEY`, every other entry kept;
    rewritten atomically (`<path>.tmp`, flushed, then renamed over `path`). The checkpoint must load with
    ``weights_only=True`` (as the ones `stg fit` writes do), so it still does afterwards."""
    import pickle

    import torch

    from stg_lightning.checkpoint_io import AtomicCheckpointIO

    path = Path(path).resolve()  # a `last.ckpt` link: the checkpoint it names gets the settings
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as err:
        raise StgUserError(
            f"{path}: cannot store evaluation settings: not a readable checkpoint "
            f"({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__})"
        ) from err
    if not isinstance(checkpoint, dict):
        raise StgUserError(f"{path}: cannot store evaluation settings: not a checkpoint dict")
    checkpoint[CHECKPOINT_KEY] = _plain(dict(settings), CHECKPOINT_KEY)
    AtomicCheckpointIO().save_checkpoint(checkpoint, path)


def checkpoint_settings(path: str | Path) -> dict[str, Any] | None:
    """The settings stored in the checkpoint at `path`, or None (none stored; no file, or one that does not
    load with ``weights_only=True``: `stg eval` then reports the checkpoint when it loads the model)."""
    import pickle

    import torch

    try:
        checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError):
        return None
    value = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    return dict(value) if isinstance(value, Mapping) else None


def base_config(settings: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """The stored record's sections as a config (`{"inference": {...}, "scoring": {...}}`, every field: the
    first config `stg eval` composes, under `--config` files and flags), and a warning per stored key this
    code no longer has (left out). Values are checked by the one config loader; errors name `where`."""
    base: dict[str, Any] = {}
    warnings = []
    for name, cls in SECTIONS.items():
        section = settings.get(name)
        if section is None:
            continue
        if not isinstance(section, Mapping):
            raise StgUserError(f"{where}: stored {name} settings: expected a mapping, got {section!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            warnings.append(
                f"{where}: stored {name} keys {', '.join(unknown)} are not {cls.__name__} keys (ignored)"
            )
        values = {k: v for k, v in section.items() if k in known}
        base[name] = to_dict(from_dict(cls, values, f"{where}: stored {name} settings"))
    return base, warnings


def overridden(base: Mapping[str, Any], config: Any) -> list[str]:
    """`section.key=value (stored X)` for each stored value the final config (its `--config` files and flags)
    changed."""
    lines = []
    for name, section in base.items():
        final = to_dict(getattr(config, name))
        lines += [
            f"{name}.{key}={final[key]} (stored {value})"
            for key, value in section.items()
            if key in final and final[key] != value
        ]
    return lines


@dataclasses.dataclass(frozen=True)
class StoredSettings:
    """The settings record a run's checkpoint / predictions file carries, and the config it starts from."""

    where: str  # "--ckpt PATH" / "--predictions PATH"
    record: dict[str, Any]  # as stored
    base: dict[str, Any]  # {"inference": {...}, ...}: the first config composed (the tool's sections only)
    warnings: list[str]  # stored keys this code does not have (left out)


def stored_settings(args: Any, sections: Collection[str]) -> StoredSettings | None:
    """The settings stored in the one source the parsed `args` give (`ckpt` or `predictions`), restricted to
    the tool's config `sections`, if it carries any."""
    given = [name for name in SOURCES if getattr(args, name, None)]
    if given == ["ckpt"]:
        where, record = f"--ckpt {args.ckpt}", checkpoint_settings(args.ckpt)
    elif given == ["predictions"]:
        where, record = f"--predictions {args.predictions}", read_predictions_settings(args.predictions)
    else:
        return None
    if record is None:
        return None
    base, warnings = base_config(record, where)
    base = {name: section for name, section in base.items() if name in sections}
    return StoredSettings(where, record, base, warnings) if base else None


def parse_over_stored(
    parse: Callable[[list[str]], Parsed], argv: Sequence[str], sections: Collection[str]
) -> Parsed:
    """A tool's config with its source's stored settings under the user's: `parse(argv)` once to find the
    source (`--ckpt` / `--predictions`), then, when it carries settings, again with them as the first
    `--config` (as `--preset` does). `args.stored` is the `StoredSettings` used, or None."""
    argv = list(argv)
    probe = [a for a in argv if not a.replace("-", "_").startswith("__print_config")]
    parsed = parse(probe)  # `--print_config` waits for the parse that has the stored settings
    stored = stored_settings(parsed.args, sections)
    if stored is not None:
        parsed = parse(["--config", json.dumps(stored.base), *argv])
    elif len(probe) != len(argv):
        parsed = parse(argv)
    parsed.args.stored = stored
    return parsed


def describe_stored(stored: StoredSettings, config: Any, flags: str) -> str:
    """The line a tool prints when it starts from a source's stored settings (`flags`: the flag families that
    override them, e.g. "--inference.*")."""
    changed = overridden(stored.base, config)
    version = stored.record.get("code_version")
    return (
        f"using the {' and '.join(stored.base)} settings stored in {stored.where}"
        + (f" (code {version})" if version else "")
        + f"; --config files and {flags} flags override them"
        + (f"; overridden here: {', '.join(changed)}" if changed else "")
    )


def _plain(value: Any, where: str) -> Any:
    """`value` checked to be plain types (dict with str keys, list/tuple → list, str, int, float, bool, None)."""
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where}: settings keys must be strings, got {list(value)!r}")
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{where}: settings values must be plain types, got {type(value).__name__}")
