"""HowTo100M-style ASR captions: a streamed `caption.json` or a folder of per-video `start,end,text` CSVs."""

from __future__ import annotations

import csv
import math
from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path

from stg_lightning.data.json_stream import (
    JSONStreamError,
    NotAnObjectError,
    error_line,
    object_items,
    restore_non_finite,
)
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


def _json_captions(path: Path, keep: Container[str] | None) -> Iterator[tuple[str, list[Sentence] | None]]:
    """Stream `{video_id: {"start": [...], "end": [...], "text": [...]}}` (HowTo100M `caption.json`)."""
    try:
        with open(path, "rb") as f:
            for video_id, cap in object_items(f):
                if keep is not None and video_id not in keep:
                    yield video_id, None
                    continue
                try:
                    lists = [restore_non_finite(cap[key]) for key in ("start", "end", "text")]
                except (KeyError, TypeError) as err:
                    raise StgUserError(
                        f"{path}: video {video_id!r} needs 'start', 'end' and 'text' lists"
                    ) from err
                yield video_id, _sentences(video_id, *lists, path)
    except JSONStreamError as err:
        raise StgUserError(
            f"{path}: cannot read captions JSON (UTF-8 `{{video_id: {{start, end, text}}}}`): "
            f"{error_line(err)}"
        ) from None
    except NotAnObjectError:
        raise StgUserError(f"{path}: expected a JSON object keyed by video id") from None


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


def iter_captions(
    path: str | Path, keep: Container[str] | None = None
) -> Iterator[tuple[str, list[Sentence] | None]]:
    """(video id, sentences) of every captioned video of a `caption.json` file or a folder of `<video_id>.csv`
    files, in file order, streamed (never the whole file in memory): sentences are read and checked only
    for the ids in `keep` (every id when None), None for the others."""
    path = Path(path)
    if path.is_dir():
        for file in sorted(path.glob("*.csv")):
            yield file.stem, load_caption_csv(file) if keep is None or file.stem in keep else None
    elif path.suffix == ".json" and path.is_file():
        yield from _json_captions(path, keep)
    else:
        raise StgUserError(
            f"captions {str(path)!r} not found: give a HowTo100M caption.json file or a folder of per-video"
            " CSVs (set --captions or `captions:` in configs/data/prepare.yaml)"
        )


def load_captions(path: str | Path, keep: Container[str] | None = None) -> dict[str, list[Sentence]]:
    """Captions by video id (of the ids in `keep`, when given), see `iter_captions`."""
    return {video_id: s for video_id, s in iter_captions(path, keep) if s is not None}


def clip_window(start: float, end: float, min_time: float) -> tuple[float, float]:
    """Widen sentences shorter than `min_time` symmetrically (the paper's loader); never before 0 s."""
    if end - start >= min_time:
        return start, end
    start = max(0.0, start - (min_time - (end - start)) / 2)
    return start, start + min_time
