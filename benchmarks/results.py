"""The one way a benchmark script hands back its measurement: a JSON result file, echoed to stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_result(out: str | Path, result: dict[str, Any]) -> None:
    """Write `result` to `out` (parents created) and print the same JSON."""
    text = json.dumps(result, indent=1)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    print(text)
