"""Two-model predictions: *when* from model A, *where* from model B (the paper's MIL-NCE + RegionCLIP rows).

    stg combine --temporal milnce.json --spatial regionclip.json --out combined.json
    stg eval --config experiments/baselines/milnce_regionclip.yaml --predictions combined.json

Rule: the combined model answers every (second, query) pair that either model answered. Labels, scores,
``num_frames`` and ``step_scores`` are A's (B's score is used only for a pair A never scored); heat, point
and box are B's answer for that same second and query, or nothing when B has none (scored as a miss).
Queries are matched after :func:`normalise_query`. Both files must hold the same videos.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from stg_lightning.eval.predictions import (
    FramePrediction,
    Predictions,
    PredictionsError,
    VideoPredictions,
    read_predictions,
    write_predictions,
)
from stg_lightning.eval.records import normalise_query

Key = tuple[int, str]  # (second, normalised query)


def answers(video: VideoPredictions) -> dict[Key, FramePrediction]:
    """Every (second, query) a model answered: its labelled ``frames`` entries, then ``grounding`` entries."""
    out = {(p.t, normalise_query(p.label)): p for p in video.frames if p.label is not None}
    out.update({(p.t, normalise_query(p.label)): p for p in video.grounding if p.label is not None})
    return out


def _place(entry: FramePrediction, where: FramePrediction | None) -> FramePrediction:
    """``entry`` with the spatial answer of ``where`` (none when ``where`` is None)."""
    if where is None:
        return replace(entry, heat=None, point=None, box=None)
    return replace(entry, heat=where.heat, point=where.point, box=where.box)


def combine_video(temporal: VideoPredictions, spatial: VideoPredictions) -> VideoPredictions:
    """One video: A's per-second labels with B's spatial answers, plus grounding entries for other pairs."""
    spatial_answers = answers(spatial)
    temporal_answers = answers(temporal)
    frames = [
        _place(p, None if p.label is None else spatial_answers.get((p.t, normalise_query(p.label))))
        for p in temporal.frames
    ]
    answered = {(p.t, normalise_query(p.label)) for p in frames if p.label is not None}
    grounding = []
    for key in sorted(temporal_answers.keys() | spatial_answers.keys()):
        if key in answered:  # scoring reads the frames entry for it
            continue
        scored = temporal_answers.get(key) or spatial_answers[key]
        grounding.append(_place(scored, spatial_answers.get(key)))
    return VideoPredictions(frames, grounding, temporal.num_frames, temporal.step_scores)


def combine_predictions(temporal: Predictions, spatial: Predictions) -> Predictions:
    """Per video: labels/scores/step_scores from ``temporal``, heat/point/box from ``spatial`` (module rule)."""
    only_t, only_s = sorted(temporal.keys() - spatial.keys()), sorted(spatial.keys() - temporal.keys())
    if only_t or only_s:
        parts = [
            f"{len(ids)} video(s) only in the {side} predictions, e.g. {ids[0]!r}"
            for side, ids in (("temporal", only_t), ("spatial", only_s))
            if ids
        ]
        raise PredictionsError(
            "temporal and spatial predictions must cover the same videos (same dataset, same --mode): "
            + "; ".join(parts)
        )
    out: Predictions = {}
    for vid, a in temporal.items():
        b = spatial[vid]
        if a.num_frames is not None and b.num_frames is not None and a.num_frames != b.num_frames:
            raise PredictionsError(
                f"video {vid!r}: temporal predictions cover {a.num_frames} seconds but spatial ones "
                f"{b.num_frames}; both models must read the same video files"
            )
        out[vid] = combine_video(a, b)
    return out


def unplaced(predictions: Predictions) -> int:
    """Labelled entries without any spatial answer (pairs the spatial model did not answer)."""
    return sum(
        p.label is not None and p.heat is None and p.point is None and p.box is None
        for v in predictions.values()
        for part in (v.frames, v.grounding)
        for p in part
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stg combine", description="Temporal answers of model A + spatial answers of model B."
    )
    parser.add_argument("--temporal", required=True, help="predictions (.json/.npz) giving labels and scores")
    parser.add_argument(
        "--spatial", required=True, help="predictions giving heat/point/box per second and query"
    )
    parser.add_argument("--out", required=True, help="combined predictions (.json/.npz)")
    args = parser.parse_args(argv)
    try:
        combined = combine_predictions(read_predictions(args.temporal), read_predictions(args.spatial))
        write_predictions(combined, args.out)
    except PredictionsError as err:
        print(f"stg combine: error: {err}", file=sys.stderr)
        return 2
    print(
        f"stg combine: wrote {args.out} ({len(combined)} videos, {unplaced(combined)} answers without a place)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
