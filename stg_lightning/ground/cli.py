"""`stg ground` (a model on your own video) and `stg view` (the viewer for any predictions file).

    stg ground my.mp4 --query "crack egg" --query "whisk" --ckpt runs/x/latest/checkpoints/last.ckpt
    stg ground my.mp4 --query "crack egg" --zero_shot ViT-B-32:openai --out out/ --inference.theta=0.3
    stg view runs/eval/gyt_predictions.json --videos data/groundingyoutube/videos --max_videos 10

`stg ground`'s readout starts from the settings stored in the checkpoint (the ones its numbers were made
with, as `stg eval --ckpt` does): dataclass defaults < stored < `--config` files < `--key=value` flags.
Without `--out` each run writes a new `runs/ground/<video name>/v<N>/` (run.json says what made it).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from jsonargparse import ArgumentParser

from stg_lightning.config import Parsed, parse, to_dict
from stg_lightning.errors import StgUserError
from stg_lightning.eval.readout import zero_shot_readout
from stg_lightning.eval.scoring import ScoringConfig
from stg_lightning.eval.settings import describe_stored, eval_settings, parse_over_stored
from stg_lightning.ground.api import PREDICTIONS, clean_queries, ground_video, video_record, view_predictions
from stg_lightning.ground.config import GroundConfig, ViewConfig
from stg_lightning.runs import new_run

RUNS_ROOT = Path("runs/ground")


def _ground_flags(parser: ArgumentParser) -> None:
    parser.add_argument("video", type=str, help="a video file (any length, size and codec PyAV reads)")
    parser.add_argument(
        "--query", type=str, action="append", default=None, help="a query (repeat for several)"
    )
    parser.add_argument("--ckpt", type=str | None, default=None, help="a GroundingModule checkpoint")
    parser.add_argument(
        "--zero_shot", type=str | None, default=None, help="raw open_clip model MODEL[:TAG] instead"
    )
    parser.add_argument("--device", type=str, default="auto", help="auto | cpu | cuda | cuda:1 ...")
    parser.add_argument("--overwrite", type=bool, default=False, help="replace the outputs already in --out")


def _parse_ground(argv: list[str]) -> Parsed:
    return parse(
        GroundConfig,
        argv,
        prog="stg ground",
        description="Where and when each query happens in one video: predictions, timeline, overlay "
        "video/GIF and an HTML viewer.",
        extra=_ground_flags,
    )


def ground_main(argv: list[str] | None = None) -> int:
    from stg_lightning.eval.models import load_model, resolve_device, zero_shot_model  # imports torch

    argv = list(sys.argv[1:] if argv is None else argv)
    cfg, args = parse_over_stored(_parse_ground, argv, ("inference",))
    if bool(args.ckpt) == bool(args.zero_shot):
        raise StgUserError("give exactly one of --ckpt CKPT and --zero_shot MODEL[:TAG]")
    if args.stored is not None:
        print(f"stg ground: {describe_stored(args.stored, cfg, '--inference.*')}")
    video, queries = Path(args.video), clean_queries(args.query or [])
    video_record(video, queries)  # a bad video or query fails before a run folder or a model exists
    device = resolve_device(args.device)
    if args.zero_shot:
        model = zero_shot_model(args.zero_shot, device)
        cfg.inference = zero_shot_readout(cfg.inference)
        source = {"zero_shot": args.zero_shot}
    else:
        model = load_model(args.ckpt, device)
        source = {"checkpoint": args.ckpt}
    if cfg.out is None:
        out = new_run(RUNS_ROOT / video.stem, shlex.join(["stg", "ground", *argv])).dir
    else:
        out = Path(cfg.out)
        if (out / PREDICTIONS).exists() and not args.overwrite:
            raise StgUserError(f"--out {out} already holds {PREDICTIONS}; pass --overwrite or another --out")
    settings = eval_settings(
        cfg.inference, ScoringConfig(), **source, video=str(video), queries=queries, written_by="stg ground",
        stored_settings=args.stored is not None, render=to_dict(cfg.render),
    )  # fmt: skip
    result = ground_video(model, video, queries, out, cfg.inference, cfg.render, settings)
    line = result.timeline
    segments = [f"{line.queries[s.query]} {s.start}-{s.end} s" for s in line.segments()]
    print(f"stg ground: detected {', '.join(segments) or 'no query above θ'}")
    print(f"stg ground: wrote {out}/ (predictions.json, timeline.png, overlay.mp4, overlay.gif, viewer.html)")
    print(f"stg ground: open {result.viewer_html}")
    return 0


def _view_flags(parser: ArgumentParser) -> None:
    parser.add_argument("predictions", type=str, help="a predictions file (.json / .npz)")


def view_main(argv: list[str] | None = None) -> int:
    cfg, args = parse(
        ViewConfig,
        argv,
        prog="stg view",
        description="An HTML viewer page per video of a predictions file (any model's, any dataset's).",
        extra=_view_flags,
    )
    if cfg.videos is None:
        raise StgUserError("--videos is required: the folder of <video_id>.mp4 or <video_id>/<second>.jpg")
    path = Path(args.predictions)
    out = Path(cfg.out) if cfg.out else path.with_name(f"{path.stem}_viewer")
    result = view_predictions(path, cfg.videos, out, cfg.video_ids, cfg.max_videos, cfg.render)
    skipped = f"; {len(result.missing)} without a video file skipped" if result.missing else ""
    print(f"stg view: {len(result.pages)} viewer page(s) in {out}{skipped}; open {result.index_html}")
    return 0
