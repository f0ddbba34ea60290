"""Reading a JSON file whose top level must be an object, with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson


def read_json_object(path: Path, what: str, expected: str, error: type[Exception]) -> dict[str, Any]:
    """The top-level object of `path`; unreadable JSON or another top level raises `error` naming the file."""
    try:
        data = orjson.loads(path.read_bytes())  # several times faster than json on large prediction files
    except (OSError, json.JSONDecodeError) as exc:
        raise error(f"{path}: cannot read {what} JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: {expected}")
    return data
