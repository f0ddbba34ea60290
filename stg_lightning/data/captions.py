"""HowTo100M-style ASR captions: `caption.json` or a folder of per-video `start,end,text` CSV files."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from stg_lightning.errors import StgUserError


@dataclass(frozen=True)
class Sentence:
    """One ASR sentence of a video, times in seconds from the start of the video."""

    index: int
    start: float
    end: float
    text: str


def clean_text(text: object) -> str:
    """Collapse whitespace; non-strings (e.g. NaN cells of a CSV read elsewhere) become empty."""
    return " ".join(text.split()) if isinstance(text, str) else ""


def _sentences(video_id: str, starts: list, ends: list, texts: list, source: Path) -> list[Sentence]:
    if not len(starts) == len(ends) == len(texts):
        raise StgUserError(
            f"{source}: video {video_id!r} has {len(starts)} starts, {len(ends)} ends and {len(texts)} texts;"
            " the three lists must have the same length"
        )
    out = []
    for i, (s, e, t) in enumerate(zip(starts, ends, texts)):
        out.append(
            Sentence(
                i, _time(s, source, video_id, "start", i), _time(e, source, video_id, "end", i), clean_text(t)
            )
        )
    return out


def _time(value: object, source: Path, video_id: str, key: str, i: int) -> float:
    """A sentence time as a float (NaN/inf kept: `bad_times` skips them); anything else is an error."""
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise StgUserError(f"{source}: video {video_id!r}, {key}[{i}] = {value!r} is not a number") from None


def valid_times(sentence: Sentence) -> bool:
    """Finite, non-negative times with end ≥ start (other sentences are skipped as `bad_times`)."""
    return (
        math.isfinite(sentence.start) and math.isfinite(sentence.end) and 0 <= sentence.start <= sentence.end
    )


def load_caption_json(path: Path) -> dict[str, list[Sentence]]:
    """Read `{video_id: {"start": [...], "end": [...], "text": [...]}}` (HowTo100M `caption.json`)."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StgUserError(
            f"{path}: cannot read captions JSON (UTF-8 `{{video_id: {{start, end, text}}}}`): {err}"
        ) from None
    if not isinstance(raw, dict):
        raise StgUserError(f"{path}: expected a JSON object keyed by video id")
    out = {}
    for video_id, cap in raw.items():
        try:
            out[video_id] = _sentences(video_id, cap["start"], cap["end"], cap["text"], path)
        except (KeyError, TypeError) as err:
            raise StgUserError(f"{path}: video {video_id!r} needs 'start', 'end' and 'text' lists") from err
    return out


def load_caption_csv(path: Path) -> list[Sentence]:
    """Read one HowTo100M per-video CSV with header `start,end,text`."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise StgUserError(
            f"{path}: cannot read captions CSV (UTF-8, header start,end,text): {err}"
        ) from None
    if rows and not {"start", "end", "text"} <= set(rows[0]):
        raise StgUserError(f"{path}: expected CSV columns start,end,text, found {sorted(rows[0])}")
    return _sentences(
        path.stem, [r["start"] for r in rows], [r["end"] for r in rows], [r["text"] for r in rows], path
    )


def load_captions(path: str | Path) -> dict[str, list[Sentence]]:
    """Captions by video id from a `caption.json` file or a folder of `<video_id>.csv` files."""
    path = Path(path)
    if path.is_dir():
        return {p.stem: load_caption_csv(p) for p in sorted(path.glob("*.csv"))}
    if path.suffix == ".json" and path.is_file():
        return load_caption_json(path)
    raise StgUserError(
        f"captions {str(path)!r} not found: give a HowTo100M caption.json file or a folder of per-video CSVs"
        " (set --captions or `captions:` in configs/data/prepare.yaml)"
    )


def captions_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a caption file, or of every CSV's name and content in a caption folder; read in chunks
    (HowTo100M's caption.json is several GB)."""
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{file.stat().st_size}\0".encode())  # file boundaries count too
        with open(file, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def clip_window(start: float, end: float, min_time: float) -> tuple[float, float]:
    """Widen sentences shorter than `min_time` symmetrically (the paper's loader); never before 0 s."""
    if end - start >= min_time:
        return start, end
    start = max(0.0, start - (min_time - (end - start)) / 2)
    return start, start + min_time
