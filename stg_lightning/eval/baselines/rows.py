"""The text-blind rows printed beside a model: each baseline's predictions scored by ``score_predictions``.

Spatial datasets: chance by area, random object (synthetic splits), motion energy (when the videos are
given); temporal datasets (MiningYouTube): the uniform split. Rows fill only the columns they can answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stg_lightning.eval.baselines.chance import chance_by_area, random_point_predictions
from stg_lightning.eval.baselines.motion_energy import SMOOTH_FRACTION, motion_energy_predictions
from stg_lightning.eval.baselines.random_object import (
    find_synth_meta,
    load_object_boxes,
    random_object_predictions,
)
from stg_lightning.eval.baselines.uniform_split import uniform_split_predictions
from stg_lightning.eval.predictions import Predictions
from stg_lightning.eval.records import EvalDataset
from stg_lightning.eval.scoring import DATASET_METRICS, ScoringConfig, score_predictions

# Row keys (results files) and their names in report tables.
CHANCE_BY_AREA, RANDOM_OBJECT, MOTION_ENERGY, UNIFORM_SPLIT = (
    "chance_area",
    "random_object",
    "motion_energy",
    "uniform_split",
)
TEXT_BLIND_LABELS = {
    CHANCE_BY_AREA: "chance by area",
    RANDOM_OBJECT: "random object",
    MOTION_ENERGY: "motion energy",
    UNIFORM_SPLIT: "text-blind (uniform split)",
}


@dataclass
class BaselineConfig:
    """Baseline hyperparameters."""

    seeds: tuple[int, ...] = (0, 1, 2)  # draws of the random baselines; their scores are averaged
    smooth_fraction: float = SMOOTH_FRACTION  # motion energy: box-filter side / frame short side


def mean_pointing(
    dataset: EvalDataset, predictions: Iterable[Predictions], scoring: ScoringConfig | None = None
) -> dict[str, float]:
    """Mean and standard deviation of the pointing accuracy over several predictions (e.g. seeds)."""
    values = [score_predictions(dataset, p, scoring, metrics=("pointing",))["pointing"] for p in predictions]
    return {"pointing": float(np.mean(values)), "pointing_std": float(np.std(values))}


def uniform_split_row(dataset: EvalDataset, scoring: ScoringConfig | None = None) -> dict[str, float]:
    """Temporal metrics (``temporal_iou``, ``temporal_iod``, ``temporal_mof``) of the uniform split."""
    scores = score_predictions(dataset, uniform_split_predictions(dataset), scoring, metrics=("temporal",))
    return {k: v for k, v in scores.items() if k.startswith("temporal_")}


def text_blind_rows(
    dataset: EvalDataset,
    videos_dir: str | Path | None = None,
    objects: str | Path | None = None,
    config: BaselineConfig | None = None,
    scoring: ScoringConfig | None = None,
) -> dict[str, dict[str, float]]:
    """Every text-blind row that applies to ``dataset``: ``{row name: {metric: value, "seconds": s}}``.

    Spatial datasets: chance by area (``pointing`` analytic, ``pointing_sampled`` over the seeds), random
    object (when ``objects`` — the split's ``objects.json`` — is given, or the annotations are a synthetic
    split: a ``meta.json`` above them), motion energy (when ``videos_dir`` is given). Temporal datasets
    (MYT): the uniform split. ``seconds`` is each row's wall time.
    """
    cfg = config or BaselineConfig()
    rows: dict[str, dict[str, float]] = {}

    def timed(name: str, compute: Callable[[], dict[str, float]]) -> None:
        start = time.perf_counter()
        row = compute()
        rows[name] = row | {"seconds": time.perf_counter() - start}

    metrics = DATASET_METRICS.get(dataset.name, ())
    if "temporal" in metrics:
        timed(UNIFORM_SPLIT, lambda: uniform_split_row(dataset, scoring))
    if "pointing" not in metrics:
        return rows

    def chance() -> dict[str, float]:
        sampled = mean_pointing(dataset, (random_point_predictions(dataset, s) for s in cfg.seeds), scoring)
        return {"pointing": chance_by_area(dataset), "pointing_sampled": sampled["pointing"]}

    timed(CHANCE_BY_AREA, chance)
    if objects is not None or find_synth_meta(dataset.report.source) is not None:

        def random_object() -> dict[str, float]:
            boxes = load_object_boxes(dataset, objects)
            draws = (random_object_predictions(dataset, boxes, s) for s in cfg.seeds)
            return mean_pointing(dataset, draws, scoring)

        timed(RANDOM_OBJECT, random_object)
    if videos_dir is not None:
        timed(
            MOTION_ENERGY,
            lambda: mean_pointing(
                dataset, [motion_energy_predictions(dataset, videos_dir, cfg.smooth_fraction)], scoring
            ),
        )
    return rows
