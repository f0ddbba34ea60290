"""Reading a JSON file whose top level must be an object, with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(path: Path, what: str, expected: str, error: type[Exception]) -> dict[str, Any]:
    """The top-level object of `path`; unreadable JSON or another top level raises `error` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: cannot read {what} JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: {expected}")
    return data
