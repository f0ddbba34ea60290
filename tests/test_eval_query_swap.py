import numpy as np
import pytest

from stg_lightning.eval.predictions import FramePrediction, VideoPredictions
from stg_lightning.eval.query_swap import swap_queries, swap_record, swapped_query
from stg_lightning.eval.records import DatasetReport, EvalDataset, Segment, VideoRecord
from stg_lightning.eval.scoring import score_predictions

# A 100 x 100 video: the tomato sits in the top-left quadrant, the lemon in the bottom-right one.
BOXES = {"tomato": (0.0, 0.0, 49.0, 49.0), "lemon": (50.0, 50.0, 99.0, 99.0)}
STEPS = [("shake tomato", 0, 2), ("pour lemon", 2, 4)]


def record() -> VideoRecord:
    segments = [Segment(q.replace(" ", "_"), q, float(a), float(b)) for q, a, b in STEPS]
    labels = {t: q for q, a, b in STEPS for t in range(a, b)}
    boxes = {t: BOXES[q.split()[-1]] for t, q in labels.items()}
    return VideoRecord("v", (100, 100), 4, segments, labels, boxes, [q for q, _, _ in STEPS])


def dataset() -> EvalDataset:
    return EvalDataset("gyt", [record()], DatasetReport("gyt", "hand-built"))


def heat_at(obj: str) -> np.ndarray:
    """A 2 x 2 heat map peaked on the object's quadrant."""
    heat = np.zeros((2, 2))
    heat[(0, 0) if obj == "tomato" else (1, 1)] = 1.0
    return heat


def predictions(text_following: bool) -> dict[str, VideoPredictions]:
    """Every (second, query) answered: heat on the queried object, or on the shown step's object."""
    shown = record().labels
    grounding = [
        FramePrediction(t, q, heat=heat_at((q if text_following else shown[t]).split()[-1]))
        for t in range(4)
        for q, _, _ in STEPS
    ]
    return {"v": VideoPredictions([FramePrediction(t, None) for t in range(4)], grounding, num_frames=4)}


def test_the_swap_is_the_next_step_naming_another_object():
    steps = ["shake tomato", "spin tomato", "pour lemon", "roll egg"]
    assert swapped_query("shake tomato", steps) == "pour lemon"
    assert swapped_query("pour lemon", steps) == "roll egg"
    assert swapped_query("roll egg", steps) == "shake tomato"  # cyclic
    assert swapped_query("spin tomato", ["shake tomato", "spin tomato"]) is None


def test_swap_record_keeps_the_boxes_and_drops_unswappable_seconds():
    swapped, dropped = swap_record(record())
    assert dropped == 0
    assert swapped.boxes == record().boxes
    assert swapped.labels == {0: "pour lemon", 1: "pour lemon", 2: "shake tomato", 3: "shake tomato"}
    same_object = VideoRecord("w", (100, 100), 2, [Segment("a", "cut egg", 0, 2)], {0: "cut egg", 1: "cut egg"},
                              {0: BOXES["tomato"], 1: BOXES["tomato"]}, ["cut egg"])  # fmt: skip
    one_step = swap_queries(EvalDataset("gyt", [same_object], DatasetReport("gyt", "hand-built")))
    assert one_step.records[0].boxes == {}
    assert one_step.report.counts == {"swapped_seconds": 0, "unswappable_seconds": 2}


@pytest.mark.parametrize(("text_following", "own", "swapped"), [(True, 1.0, 0.0), (False, 1.0, 1.0)])
def test_heat_that_follows_the_query_falls_and_text_blind_heat_does_not(text_following, own, swapped):
    preds = predictions(text_following)
    assert score_predictions(dataset(), preds, metrics=("pointing",))["pointing"] == own
    assert score_predictions(swap_queries(dataset()), preds, metrics=("pointing",))["pointing"] == swapped
