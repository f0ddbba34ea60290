"""Render planned videos to mp4 (PyAV) and write captions and eval annotations in the real file formats.

Ground-truth seconds: the frame at t = k s (frame index k * fps) of a step is drawn, and the box of its
acting object plus hand is measured on exactly that drawn frame.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from stg_lightning.synth.config import SynthConfig, config_to_dict
from stg_lightning.synth.scene import Box, Scene
from stg_lightning.synth.script import VideoPlan, Vocabulary, build_vocabulary, plan_video
from stg_lightning.synth.vocabulary import OBJECT_CATALOGUE

SPLITS = ("train", "gyt", "myt", "yc_inter")
GYT_FILE = "GoundingYouTubeBox.json"  # sic: the name of the released file
MYT_DICT = "weakYouTube_dict.txt"
YC_SEGMENTS, YC_BOXES, YC_JSON = (
    "final_dataset_segments.pkl",
    "final_dataset_annotations.pkl",
    "youcookii_annotations_trainval.json",
)
OBJECTS_FILE = "objects.json"


@dataclass
class RenderedVideo:
    plan: VideoPlan
    boxes: dict[int, Box]  # second k -> box of the acting object + hand in the frame at t = k s
    objects: dict[int, list[Box]]  # eval splits: second k -> every object's box at t = k s


def split_dir(out: Path, split: str) -> Path:
    return out / "train" if split == "train" else out / "eval" / split


def video_id(split: str, index: int) -> str:
    return f"{split}_{index:05d}"


def plan_and_scene(cfg: SynthConfig, vocab: Vocabulary, split: str, index: int) -> tuple[VideoPlan, Scene]:
    """The plan and scene of one video; deterministic in (cfg.seed, split, index)."""
    rng = np.random.default_rng([cfg.seed, 1 + SPLITS.index(split), index])
    plan = plan_video(cfg, vocab, rng, video_id(split, index))
    return plan, Scene(cfg.scene, plan.objects, rng)


def render_video(cfg: SynthConfig, vocab: Vocabulary, split: str, index: int, path: Path) -> RenderedVideo:
    """Plan, draw and encode one video to `path`."""
    plan, scene = plan_and_scene(cfg, vocab, split, index)
    boxes: dict[int, Box] = {}
    objects: dict[int, list[Box]] = {}
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=cfg.fps)
        stream.width = stream.height = cfg.scene.frame_size
        stream.pix_fmt = cfg.pix_fmt
        # x264's lookahead made bytes depend on what the process had encoded before; without it (and with
        # one thread: one process per core already) the same frames always give the same file.
        stream.options = {
            "crf": str(cfg.crf),
            "preset": "veryfast",
            "x264-params": "rc-lookahead=0:sync-lookahead=0:bframes=0",
        }
        stream.codec_context.thread_count = 1
        for i in range(plan.duration * cfg.fps):
            t = i / cfg.fps
            frame, obj_boxes = scene.render(t, plan.activities(t), plan.wandering(t))
            step = plan.step_at(t)
            if i % cfg.fps == 0:
                if split != "train":  # objects.json is written for the eval splits only
                    objects[i // cfg.fps] = scene.object_boxes(t, obj_boxes)
                if step is not None:
                    boxes[i // cfg.fps] = obj_boxes[plan.step_objects[step]]
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=cfg.pix_fmt)
            video_frame.pts, video_frame.time_base = i, Fraction(1, cfg.fps)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    return RenderedVideo(plan, boxes, objects)


def _render_job(job: tuple[SynthConfig, Vocabulary, str, int, Path]) -> RenderedVideo:
    return render_video(*job)


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_train(root: Path, videos: list[RenderedVideo]) -> None:
    """HowTo100M `caption.json`: {video_id: {"start": [...], "end": [...], "text": [...]}}."""
    captions = {
        v.plan.video_id: {
            "start": [c.start for c in v.plan.captions],
            "end": [c.end for c in v.plan.captions],
            "text": [c.text for c in v.plan.captions],
        }
        for v in videos
    }
    _write_json(root / "caption.json", captions)


def write_gyt(root: Path, videos: list[RenderedVideo]) -> None:
    """GroundingYouTube: {video_id: {"<second>": {"box": [x1, y1, x2, y2], "step": "verb object"}}}."""
    data = {}
    for v in videos:
        data[v.plan.video_id] = {
            str(k): {"box": list(box), "step": v.plan.steps[v.plan.step_at(k)].cls.text}
            for k, box in sorted(v.boxes.items())
        }
    _write_json(root / GYT_FILE, data)


def write_myt(root: Path, videos: list[RenderedVideo], vocab: Vocabulary) -> None:
    """MiningYouTube: one `.srt` per video (UTF-8 BOM, CRLF) and the class dictionary."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for v in videos:
        blocks = [
            f"{i}\r\n{_srt_time(s.start)} --> {_srt_time(s.end)}\r\n{s.cls.label}\r\n\r\n"
            for i, s in enumerate(v.plan.steps, start=1)
        ]
        (root / "annotations" / f"{v.plan.video_id}.srt").write_bytes(
            ("\ufeff" + "".join(blocks)).encode("utf-8")
        )
    # Like the released file: one class per line with a trailing space, then `background`.
    lines = [f"{c.label} \n" for c in vocab.classes] + ["background\n"]
    (root / MYT_DICT).write_text("".join(lines), encoding="utf-8")


def write_yc_inter(root: Path, videos: list[RenderedVideo]) -> None:
    """YouCook2-Interactions pickles + YouCook2 JSON.

    YouCook2 segments are inclusive integer seconds, so a step covering frames start <= t < end is written
    as [start, end - 1]; box key k (1-based) is the frame at t = k - 1 s.
    """
    segments = {(v.plan.video_id, s.start, s.end - 1) for v in videos for s in v.plan.steps}
    boxes = {v.plan.video_id: {k + 1: tuple(box) for k, box in sorted(v.boxes.items())} for v in videos}
    database = {
        v.plan.video_id: {
            "duration": float(v.plan.duration),
            "subset": "validation",
            "recipe_type": str(v.plan.task),
            "video_url": "",
            "annotations": [
                {"segment": [s.start, s.end - 1], "id": i, "sentence": s.cls.sentence}
                for i, s in enumerate(v.plan.steps)
            ],
        }
        for v in videos
    }
    with open(root / YC_SEGMENTS, "wb") as f:
        pickle.dump(_SortedSet(segments), f)
    with open(root / YC_BOXES, "wb") as f:
        pickle.dump(boxes, f)
    _write_json(root / YC_JSON, {"database": database})


def write_objects(root: Path, videos: list[RenderedVideo]) -> None:
    """`objects.json` of an eval split: {video_id: {"<second>": [[x1, y1, x2, y2], ...]}}.

    Every second of every video, the inclusive pixel box of each on-screen object in object order
    (`Scene.object_boxes`): what the random-object baseline draws from, without re-rendering the scene.
    """
    data = {
        v.plan.video_id: {str(k): [list(box) for box in boxes] for k, boxes in sorted(v.objects.items())}
        for v in videos
    }
    _write_json(root / OBJECTS_FILE, data)


class _SortedSet:
    """Pickles as a plain `set` whose items are stored sorted: same bytes whatever the string-hash seed."""

    def __init__(self, items: set) -> None:
        self.items = items

    def __reduce__(self) -> tuple:
        return set, (sorted(self.items),)


def _write_json(path: Path, data: object, indent: int | None = None) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=indent)


def write_meta(out: Path, cfg: SynthConfig, vocab: Vocabulary, counts: dict[str, dict[str, int]]) -> None:
    meta = {
        "config": config_to_dict(cfg),
        "frame_size": [cfg.scene.frame_size, cfg.scene.frame_size],  # width, height
        "fps": cfg.fps,
        "objects": {
            o: {"shape": OBJECT_CATALOGUE[o].shape, "colour": list(OBJECT_CATALOGUE[o].colour)}
            for o in vocab.objects
        },
        "verbs": list(vocab.verbs),
        "classes": [
            {"label": c.label, "text": c.text, "verb": c.verb, "object": c.obj} for c in vocab.classes
        ],
        "tasks": [[c.label for c in task] for task in vocab.tasks],
        "counts": counts,
    }
    _write_json(out / "meta.json", meta, indent=1)


def generate(
    cfg: SynthConfig, out: str | Path, workers: int = 0, progress: bool = True
) -> dict[str, dict[str, int]]:
    """Write the whole benchmark under `out` (layout: see `stg_lightning.synth`); returns counts per split."""
    out = Path(out)
    vocab = build_vocabulary(cfg)
    sizes = {"train": cfg.train_videos} | {s: cfg.eval_videos for s in SPLITS[1:]}
    jobs = []
    for split, n in sizes.items():
        (split_dir(out, split) / "videos").mkdir(parents=True, exist_ok=True)
        jobs += [
            (cfg, vocab, split, i, split_dir(out, split) / "videos" / f"{video_id(split, i)}.mp4")
            for i in range(n)
        ]
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc="stg synth", unit="video", disable=not progress)
    if workers == 1:
        results = [_tick(bar, _render_job(job)) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = [_tick(bar, r) for r in pool.imap(_render_job, jobs, chunksize=4)]
    bar.close()
    by_split: dict[str, list[RenderedVideo]] = {s: [] for s in sizes}
    for (_, _, split, _, _), result in zip(jobs, results):
        by_split[split].append(result)
    write_train(split_dir(out, "train"), by_split["train"])
    write_gyt(split_dir(out, "gyt"), by_split["gyt"])
    write_myt(split_dir(out, "myt"), by_split["myt"], vocab)
    write_yc_inter(split_dir(out, "yc_inter"), by_split["yc_inter"])
    for split in SPLITS[1:]:
        write_objects(split_dir(out, split), by_split[split])
    counts = {
        split: {
            "videos": len(vids),
            "steps": sum(len(v.plan.steps) for v in vids),
            "captions": sum(len(v.plan.captions) for v in vids),
            "seconds": sum(v.plan.duration for v in vids),
        }
        for split, vids in by_split.items()
    }
    write_meta(out, cfg, vocab, counts)
    return counts


def _tick(bar: tqdm, result: RenderedVideo) -> RenderedVideo:
    bar.update()
    return result
