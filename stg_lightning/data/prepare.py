"""`stg prepare`: narrated videos + HowTo100M-style captions → WebDataset shards of clips (JPEG frames, JSON).

One sample per usable ASR sentence: U frames at `fps` on the k/fps grid inside the sentence window (widened to
`min_time` as in the paper's loader), short side resized, JPEG-encoded. Videos are decoded by a process pool;
the main process writes shards in video order, so output does not depend on the number of workers. After
every finished shard the run state is saved: a killed run resumes where it stopped and produces the same
shards as an uninterrupted one. `summary.json` lists shard sizes, counts and every skipped item and reason.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from stg_lightning.config import parse
from stg_lightning.data.captions import Sentence, clip_window, load_captions, valid_times
from stg_lightning.data.shards import SUMMARY_NAME, ShardWriter, sample_key
from stg_lightning.data.video import VideoReader, sample_times
from stg_lightning.errors import StgUserError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv")
STATE_NAME = "_prepare_state.json"
# Fields that change the shards' content; resuming with different values would mix two datasets.
OUTPUT_FIELDS = (
    "videos", "captions", "fps", "num_frames", "min_time", "short_side", "shard_size", "jpeg_quality",
    "shard_prefix",
)  # fmt: skip


@dataclass
class PrepareConfig:
    """Settings of `stg prepare` (YAML keys of configs/data/prepare.yaml; each also a flag, --num_frames=16)."""

    videos: str = "data/videos"  # folder of .mp4/.webm/.mkv (recursive) or a text file with one path per line
    captions: str = "data/caption.json"  # caption.json or a folder of <video_id>.csv (start,end,text)
    out: str = "data/shards"
    fps: float = 5.0  # paper: U=80 frames at 5 fps = 16 s around the sentence
    num_frames: int = 80  # U
    min_time: float = 16.0  # shorter sentences are widened symmetrically to this many seconds
    short_side: int = 224  # stored frame size; the DataModule crops image_size squares from it
    shard_size: int = 1000  # samples per shard
    workers: int = 2  # decoding processes; 0 decodes in the main process
    jpeg_quality: int = 90
    shard_prefix: str = "clips"
    cache_tokens: bool = False  # also run the frozen backbone once and write token shards to <out>/tokens
    model_name: str = "ViT-B-32"  # open_clip architecture for --cache-tokens
    pretrained: str | None = None  # open_clip pretrained tag or local checkpoint path for --cache-tokens
    device: str = "cpu"  # device for --cache-tokens

    def __post_init__(self) -> None:
        checks = [
            (
                "fps",
                isinstance(self.fps, int | float) and self.fps > 0,
                "a positive number of frames per second",
            ),
            ("num_frames", isinstance(self.num_frames, int) and self.num_frames >= 1, "an integer >= 1"),
            ("min_time", isinstance(self.min_time, int | float) and self.min_time >= 0, "a number >= 0"),
            ("shard_size", isinstance(self.shard_size, int) and self.shard_size >= 1, "an integer >= 1"),
            ("workers", isinstance(self.workers, int) and self.workers >= 0, "an integer >= 0"),
        ]
        for key, ok, what in checks:
            if not ok:
                raise StgUserError(f"prepare: {key} must be {what}, got {getattr(self, key)!r} (--{key}=...)")


@dataclass
class VideoJob:
    video_id: str
    path: str
    sentences: list[Sentence]


@dataclass
class VideoResult:
    samples: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    skipped: list[dict] = field(default_factory=list)

    def skip(self, reason: str, video_id: str, sentence: int | None = None) -> None:
        self.counts[f"skipped_{reason}"] += 1
        self.skipped.append({"video_id": video_id, "sentence_index": sentence, "reason": reason})


def find_videos(videos: str | Path) -> dict[str, str]:
    """Video id (file stem) → path, from a folder (recursive) or a list file (paths relative to it)."""
    videos = Path(videos)
    if videos.is_dir():
        paths = [p for p in sorted(videos.rglob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS]
    elif videos.is_file():
        lines = [ln.strip() for ln in videos.read_text().splitlines()]
        paths = [videos.parent / ln for ln in lines if ln and not ln.startswith("#")]
    else:
        raise StgUserError(f"videos {str(videos)!r} not found: give a video folder or a list file (--videos)")
    found: dict[str, str] = {}
    for path in paths:
        if path.stem in found:
            raise StgUserError(f"two videos share the id {path.stem!r}: {found[path.stem]} and {path}")
        found[path.stem] = str(path)
    return found


def encode_jpeg(image, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def clips_for_video(job: VideoJob, cfg: PrepareConfig) -> VideoResult:
    """All samples of one video, in sentence order, with counts and skip reasons."""
    result = VideoResult()
    if not job.sentences:
        result.skip("no_captions", job.video_id)
        return result
    try:
        reader = VideoReader(job.path, cfg.short_side)
    except Exception:  # PyAV raises many error types for unreadable files; all mean "corrupt"
        result.skip("corrupt_video", job.video_id)
        return result
    result.counts["videos_read"] += 1
    with reader:
        for sentence in job.sentences:
            if not sentence.text:
                result.skip("empty_sentence", job.video_id, sentence.index)
                continue
            if not valid_times(sentence):  # negative, reversed, NaN or infinite times
                result.skip("bad_times", job.video_id, sentence.index)
                continue
            start, end = clip_window(sentence.start, sentence.end, cfg.min_time)
            try:
                times, frames = reader.frames_at(sample_times(start, end, cfg.fps, cfg.num_frames))
            except Exception:
                result.skip("decode_error", job.video_id, sentence.index)
                continue
            if not frames:
                result.skip("window_past_end", job.video_id, sentence.index)
                continue
            meta = {
                "video_id": job.video_id,
                "sentence_index": sentence.index,
                "text": sentence.text,
                "start": sentence.start,
                "end": sentence.end,
                "window": [start, end],
                "timestamps": times,
                "fps": cfg.fps,
                "source_size": [reader.info.width, reader.info.height],
                "frame_size": list(reader.size),
            }
            files = {"json": json.dumps(meta).encode()}
            files.update({f"{i:03d}.jpg": encode_jpeg(f, cfg.jpeg_quality) for i, f in enumerate(frames)})
            result.samples.append((sample_key(job.video_id, sentence.index), files))
            result.counts["sentences_written"] += 1
    return result


def build_jobs(cfg: PrepareConfig) -> tuple[list[VideoJob], int]:
    """Jobs in video-id order, and the number of captioned videos that have no video file."""
    videos = find_videos(cfg.videos)
    captions = load_captions(cfg.captions)
    jobs = [VideoJob(vid, path, captions.get(vid, [])) for vid, path in sorted(videos.items())]
    return jobs, len(set(captions) - set(videos))


@dataclass
class PrepareState:
    """Progress saved after every finished shard: the next shard starts at sample `skip_samples` of video
    `video_index`; `counts`/`skipped` cover the videos before it."""

    config: dict
    next_shard: int = 0
    video_index: int = 0
    skip_samples: int = 0
    counts: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    shards: dict = field(default_factory=dict)
    done: bool = False

    def checkpoint(
        self, out: Path, video_index: int, skip_samples: int, counts: Counter, skipped: list
    ) -> None:
        """Record where the next shard starts and the statistics up to there, atomically."""
        self.video_index, self.skip_samples = video_index, skip_samples
        self.counts, self.skipped = dict(counts), list(skipped)
        tmp = out / (STATE_NAME + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, out / STATE_NAME)


def load_state(out: Path, cfg: PrepareConfig) -> PrepareState:
    config = {k: getattr(cfg, k) for k in OUTPUT_FIELDS}
    path = out / STATE_NAME
    if not path.is_file():
        return PrepareState(config)
    state = PrepareState(**json.loads(path.read_text()))
    if state.config != config:
        changed = sorted(k for k in config if state.config.get(k) != config[k])
        raise StgUserError(
            f"{out} holds shards prepared with other settings ({', '.join(changed)} differ); "
            "use a new --out folder or delete the old one"
        )
    return state


def _results(jobs: list[VideoJob], cfg: PrepareConfig) -> Iterator[VideoResult]:
    work = partial(clips_for_video, cfg=cfg)
    if cfg.workers <= 0:
        yield from map(work, jobs)
        return
    # spawn: workers need no torch/CUDA state from the parent, and fork is unsafe once threads exist
    with multiprocessing.get_context("spawn").Pool(cfg.workers) as pool:
        yield from pool.imap(work, jobs)


def write_shards(cfg: PrepareConfig, progress: bool = True) -> dict:
    """Write (or finish writing) the JPEG shards of `cfg`; returns the summary also saved as summary.json."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs, orphan_captions = build_jobs(cfg)
    state = load_state(out, cfg)
    for stale in out.glob("*.tar.tmp"):  # a shard a killed run was writing
        stale.unlink()
    if not state.done:
        counts, skipped = Counter(state.counts), list(state.skipped)  # of the videos before the current one
        writer: ShardWriter | None = None
        resume_index, resume_skip = state.video_index, state.skip_samples
        bar = tqdm(total=len(jobs), initial=resume_index, desc="stg prepare", disable=not progress)
        for index, result in enumerate(_results(jobs[resume_index:], cfg), start=resume_index):
            first = resume_skip if index == resume_index else 0
            for j in range(first, len(result.samples)):
                if writer is None:
                    writer = ShardWriter(out / f"{cfg.shard_prefix}-{state.next_shard:06d}.tar")
                writer.add(*result.samples[j])
                if writer.count == cfg.shard_size:
                    writer.close()
                    state.shards[writer.path.name] = writer.count
                    state.next_shard += 1
                    writer = None
                    if j + 1 < len(result.samples):
                        state.checkpoint(out, index, j + 1, counts, skipped)
                    else:
                        state.checkpoint(out, index + 1, 0, counts + result.counts, skipped + result.skipped)
            counts.update(result.counts)
            skipped.extend(result.skipped)
            bar.update()
        bar.close()
        if writer is not None:
            writer.close()
            state.shards[writer.path.name] = writer.count
        state.done = True
        state.checkpoint(out, len(jobs), 0, counts, skipped)
    summary = {
        "config": asdict(cfg),
        "videos_total": len(jobs),
        "captioned_videos_without_file": orphan_captions,
        **{k: state.counts.get(k, 0) for k in ("videos_read", "sentences_written")},
        "skipped_counts": {
            k.removeprefix("skipped_"): v for k, v in sorted(state.counts.items()) if k.startswith("skipped_")
        },
        "skipped": state.skipped,
        "shards": state.shards,
        "pattern": shard_pattern(cfg.shard_prefix, len(state.shards), out),
    }
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=1))
    return summary


def shard_pattern(prefix: str, num_shards: int, out: Path) -> str:
    """Brace pattern of the shards, e.g. data/shards/clips-{000000..000011}.tar."""
    if num_shards <= 1:
        return str(out / f"{prefix}-000000.tar")
    return str(out / f"{prefix}-{{000000..{num_shards - 1:06d}}}.tar")


def prepare(cfg: PrepareConfig, progress: bool = True) -> dict:
    """JPEG shards, then (with `cache_tokens`) the token shards in <out>/tokens."""
    summary = write_shards(cfg, progress)
    if cfg.cache_tokens:
        from stg_lightning.data.cache_tokens import cache_tokens_for_shards  # imports torch + the backbone

        out = Path(cfg.out)
        shards = [out / name for name in sorted(summary["shards"])]
        summary["tokens"] = cache_tokens_for_shards(
            shards, out / "tokens", cfg.model_name, cfg.pretrained, cfg.device, progress
        )
        (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=1))
    return summary


def parse_config(argv: list[str] | None) -> PrepareConfig:
    """Dataclass defaults, overridden by --config YAML files (left to right), overridden by --key=value flags."""
    return parse(PrepareConfig, argv, prog="stg prepare", description=__doc__.split("\n\n")[0]).config


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(argv)
    summary = prepare(cfg)
    print(
        f"stg prepare: {summary['sentences_written']} clips from {summary['videos_read']} videos in "
        f"{len(summary['shards'])} shards ({summary['pattern']}); skipped {summary['skipped_counts']};"
        f" details in {Path(cfg.out) / SUMMARY_NAME}"
    )
    return 0
