"""Query-swap test: does a heat map follow the query, or point at the same place whatever it is asked?

Each GT-boxed second is asked about *another* step of the same video, one that names a different object
(the last word of the query: the object of the synthetic `verb object` steps), and the answer is scored
against the box of the step actually shown. A heat map that reads the text falls on this test, because it
points at the other object; a text-blind one scores what it scores with the right query. The trimmed
pointing game of the swapped dataset is the test's number (`demo_eval`: rows `<row>_swapped_query`).
"""

from __future__ import annotations

from dataclasses import replace

from stg_lightning.eval.records import EvalDataset, VideoRecord


def named_object(query: str) -> str:
    """The object a `verb object` query names: its last word."""
    words = query.split()
    return words[-1] if words else ""


def swapped_query(query: str, steps: list[str]) -> str | None:
    """The first query after `query` in the video's ordered `steps` (cyclically) naming another object;
    None when every step names the same object."""
    start = steps.index(query) + 1 if query in steps else 0
    for other in steps[start:] + steps[:start]:
        if named_object(other) != named_object(query):
            return other
    return None


def swap_record(record: VideoRecord) -> tuple[VideoRecord, int]:
    """`record` with the query of every boxed second swapped (its box kept); seconds without a swap are
    dropped from the boxes. Returns the record and the number of seconds dropped."""
    steps = list(dict.fromkeys(s.query for s in record.segments))
    labels, boxes, dropped = dict(record.labels), {}, 0
    for t, box in record.boxes.items():
        if t not in record.labels:
            continue
        other = swapped_query(record.labels[t], steps)
        if other is None:
            dropped += 1
            continue
        labels[t], boxes[t] = other, box
    return replace(record, labels=labels, boxes=boxes), dropped


def swap_queries(dataset: EvalDataset) -> EvalDataset:
    """Every record swapped (`swap_record`); the report counts the swapped and the dropped seconds."""
    records, swapped, dropped = [], 0, 0
    for record in dataset.records:
        new, n = swap_record(record)
        records.append(new)
        swapped, dropped = swapped + len(new.boxes), dropped + n
    counts = {**dataset.report.counts, "swapped_seconds": swapped, "unswappable_seconds": dropped}
    return replace(dataset, records=records, report=replace(dataset.report, counts=counts))
