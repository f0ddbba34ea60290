"""Streaming the items of a JSON object too big to load (HowTo100M's caption.json is several GB) with ijson,
including Python's non-standard NaN / Infinity / -Infinity literals, which `json.dump` writes and ijson's
parser rejects: they reach the parser as marker strings that `restore_non_finite` turns back into floats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson

# What ijson raises for bad JSON (syntax, invalid UTF-8, a file cut short).
JSONStreamError = ijson.JSONError
CHUNK = 1 << 16  # bytes per read; larger chunks measured slower (cache)
# Markers start with a NUL character, which no real caption text does: they are not mistaken for one.
NON_FINITE = {"\0NaN": math.nan, "\0Infinity": math.inf, "\0-Infinity": -math.inf}
_TOKENS = re.compile(rb'\\.|"|-?Infinity|NaN', re.S)  # escapes first: an escaped quote toggles nothing
_ESCAPES = re.compile(rb"\\.", re.S)


class NotAnObjectError(ValueError):
    """The JSON document is not an object (a list, a string, ...)."""


class _NonFiniteAsStrings:
    """A binary JSON file whose NaN / Infinity / -Infinity literals outside strings read as NON_FINITE's
    marker strings. Bytes are passed on up to the last comma read, so no literal or escape is ever split
    between two reads; whether they end inside a string is tracked by counting unescaped quotes."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.pending = b""  # read, not yet passed on
        self.in_string = False  # whether the bytes passed on so far end inside a string
        self.started = False  # whether the first non-blank byte was checked to open an object

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson's binary-or-text probe
            return b""
        while True:
            data = self.f.read(CHUNK)
            buf = self.pending + data
            cut = buf.rfind(b",") + 1 if data else len(buf)
            if cut or not data:
                break
            self.pending = buf  # no comma yet: read on
        if not self.started and buf.strip():
            if buf.lstrip()[:1] != b"{":
                raise NotAnObjectError("expected a JSON object")
            self.started = True
        part, self.pending = buf[:cut], buf[cut:]
        return self._translate(part)

    def _translate(self, part: bytes) -> bytes:
        if b"NaN" not in part and b"Infinity" not in part:  # nearly every chunk: C-speed scans only
            quotes = (_ESCAPES.sub(b"", part) if b"\\" in part else part).count(b'"')
            self.in_string ^= quotes % 2 == 1
            return part
        out, last = [], 0
        for match in _TOKENS.finditer(part):
            token = match.group()
            if token == b'"':
                self.in_string = not self.in_string
            elif not self.in_string and token[:1] != b"\\":
                out += [part[last : match.start()], b'"\\u0000' + token + b'"']
                last = match.end()
        return b"".join(out) + part[last:]


def object_items(f: BinaryIO) -> Iterator[tuple[str, Any]]:
    """(key, value) of the top-level object of the JSON in binary file `f`, one item in memory at a time;
    floats as floats, non-finite literals as NON_FINITE's markers (see `restore_non_finite`). Raises
    JSONStreamError for bad JSON, NotAnObjectError if the document is not an object."""
    return ijson.kvitems(_NonFiniteAsStrings(f), "", use_float=True)


def error_line(err: Exception) -> str:
    """ijson's message (error, the text around it, a caret line; sometimes as bytes) as one line."""
    text = err.args[0] if err.args else str(err)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip() and "(right here)" not in line]
    return f"{lines[0]} (near {lines[1]!r})" if len(lines) > 1 else " ".join(lines)


def restore_non_finite(values: list) -> list:
    """A list of `object_items` values with the non-finite markers back as floats."""
    return [NON_FINITE.get(v, v) if isinstance(v, str) else v for v in values]
