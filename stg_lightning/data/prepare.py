"""`stg prepare`: narrated videos + HowTo100M-style captions → WebDataset shards of clips (JPEG frames, JSON).

One sample per usable ASR sentence: U frames at `fps` on the k/fps grid inside the sentence window (widened to
`min_time` as in the paper's loader), short side resized, JPEG-encoded; a window running past a video's real
end keeps the frames before it, one that a cut-short file cannot fill is skipped. Videos are decoded by a
process pool; the main process writes shards in video order, so output does not depend on the number of
workers. After
every finished shard the run state is saved: a killed run resumes where it stopped and produces the same
shards as an uninterrupted one. The state also records the settings and a fingerprint of the inputs
(the videos' captions, video sizes and mtimes): a rerun into the same folder after they changed, or with a
shard there cut short, stops with an error unless `--overwrite` redoes the folder. `summary.json` lists
shard sizes, counts and every skipped item and reason. The caption file is streamed, keeping only the
captions of the videos being prepared. `--part I/N` prepares the I-th of N slices of the sorted videos
into its own folder, e.g. one SLURM array task each; `stg prepare-merge` (prepare_merge.py) joins them.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image

from stg_lightning.config import parse
from stg_lightning.data.captions import Sentence, clip_window, iter_captions, valid_times
from stg_lightning.data.shards import SUMMARY_NAME, ShardWriter, list_file_entries, sample_key
from stg_lightning.data.video import NotAVideoError, TruncatedVideoError, VideoReader, sample_times
from stg_lightning.errors import StgUserError
from stg_lightning.progress import progress as progress_bar

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv")
STATE_NAME = "_prepare_state.json"
# Fields that change the shards' content; resuming with different values would mix two datasets.
OUTPUT_FIELDS = (
    "videos", "captions", "fps", "num_frames", "min_time", "short_side", "shard_size", "jpeg_quality",
    "shard_prefix",
)  # fmt: skip
# A window's frames may stop this close to a video's stated duration and still count as the real end:
# audio or an edit list can make the container outlast the last frame.
END_SLACK = 1.0


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
    # Every other backbone key for --cache-tokens (max_words, words_with_sentence, local attention, ...), as
    # the training config's `model.backbone` section has them: the cached tokens must be the ones the
    # training's backbone would compute. model_name / pretrained above win over this section's.
    backbone: dict = field(default_factory=dict)
    device: str = "cpu"  # device for --cache-tokens
    overwrite: bool = False  # redo `out` if its shards came from other inputs or settings, or are damaged
    # "I/N" (1-based, as SLURM array ids; "" = all videos): only the I-th of N contiguous runs of the sorted
    # video ids, into <out>/part-000I-of-000N/ (resumable like a whole run); `stg prepare-merge` joins them.
    part: str = ""

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
        if self.part:
            parse_part(self.part)


def parse_part(part: str) -> tuple[int, int]:
    """(I, N) of `--part I/N`, 1 <= I <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(part))
    if match and 1 <= int(match[1]) <= int(match[2]):
        return int(match[1]), int(match[2])
    raise StgUserError(
        f"prepare: part must be 'I/N' with 1 <= I <= N (e.g. --part=2/8: the 2nd of 8 parts), got {part!r}"
    )


def part_folder(out: str | Path, index: int, parts: int) -> Path:
    return Path(out) / f"part-{index:04d}-of-{parts:04d}"


def output_dir(cfg: PrepareConfig) -> Path:
    """Where `cfg`'s shards go: `out`, or its part's folder in it."""
    return part_folder(cfg.out, *parse_part(cfg.part)) if cfg.part else Path(cfg.out)


def part_videos(video_ids: list[str], part: str) -> list[str]:
    """The sorted ids of part "I/N" (all of them for ""): the I-th of N contiguous runs of near-equal
    length. Contiguous runs of a sorted list depend on nothing but the list, and the parts' shards read in
    part order hold the clips in a whole run's order."""
    ids = sorted(video_ids)
    if not part:
        return ids
    index, parts = parse_part(part)
    return ids[(index - 1) * len(ids) // parts : index * len(ids) // parts]


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
        paths = [videos.parent / line for line in list_file_entries(videos)]
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


def ended_early(reader: VideoReader, wanted: list[float], got: list[float]) -> bool:
    """True when frames stopped before the video's stated duration (the file is cut short): only a window
    running past the real end may yield fewer frames than asked (`frames_at` drops a tail of `wanted`)."""
    duration = reader.info.duration  # 0 when the container does not say
    return len(got) < len(wanted) and duration > 0 and wanted[len(got)] < duration - END_SLACK


def clips_for_video(job: VideoJob, cfg: PrepareConfig) -> VideoResult:
    """All samples of one video, in sentence order, with counts and skip reasons."""
    result = VideoResult()
    if not job.sentences:
        result.skip("no_captions", job.video_id)
        return result
    if not os.path.isfile(job.path):  # e.g. a list-file line or a symlink pointing at nothing
        result.skip("missing_video", job.video_id)
        return result
    try:
        reader = VideoReader(job.path, cfg.short_side)
    except NotAVideoError:  # an image or audio file with a video's name
        result.skip("not_a_video", job.video_id)
        return result
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
            wanted = sample_times(start, end, cfg.fps, cfg.num_frames)
            try:
                times, frames = reader.frames_at(wanted)
            except TruncatedVideoError:
                result.skip("truncated_video", job.video_id, sentence.index)
                continue
            except Exception:
                result.skip("decode_error", job.video_id, sentence.index)
                continue
            if ended_early(reader, wanted, times):
                result.skip("truncated_video", job.video_id, sentence.index)
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


def build_jobs(cfg: PrepareConfig) -> tuple[list[VideoJob], int, list[str]]:
    """Jobs of `cfg`'s part in video-id order, the number of captioned videos that have no video file, and
    the sorted ids of all videos found (what the parts are cut from). The captions are streamed: only
    those of the part's videos are parsed and kept."""
    videos = find_videos(cfg.videos)
    video_ids = sorted(videos)
    mine = part_videos(video_ids, cfg.part)
    captions: dict[str, list[Sentence]] = {}
    orphans: set[str] = set()
    for video_id, sentences in iter_captions(cfg.captions, keep=set(mine)):
        if sentences is not None:
            captions[video_id] = sentences
        elif video_id not in videos:
            orphans.add(video_id)
    jobs = [VideoJob(vid, videos[vid], captions.get(vid, [])) for vid in mine]
    return jobs, len(orphans), video_ids


@dataclass
class PrepareState:
    """Progress saved after every finished shard: the next shard starts at sample `skip_samples` of video
    `video_index`; `counts`/`skipped` cover the videos before it."""

    config: dict
    inputs: dict = field(default_factory=dict)  # input_fingerprint() of the run that wrote the shards
    next_shard: int = 0
    video_index: int = 0
    skip_samples: int = 0
    counts: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    shards: dict = field(default_factory=dict)
    shard_bytes: dict = field(default_factory=dict)  # file sizes: a shard cut short later is found by a stat
    done: bool = False

    def add_shard(self, writer: ShardWriter) -> None:
        self.shards[writer.path.name] = writer.count
        self.shard_bytes[writer.path.name] = writer.path.stat().st_size

    def checkpoint(
        self, out: Path, video_index: int, skip_samples: int, counts: Counter, skipped: list
    ) -> None:
        """Record where the next shard starts and the statistics up to there, atomically."""
        self.video_index, self.skip_samples = video_index, skip_samples
        self.counts, self.skipped = dict(counts), list(skipped)
        tmp = out / (STATE_NAME + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, out / STATE_NAME)


def input_fingerprint(cfg: PrepareConfig, jobs: list[VideoJob], video_ids: list[str]) -> dict[str, str]:
    """Digests of what the shards are made from: the jobs' sentences, each video's path, size and mtime
    (file stats, not content: hashing terabytes of video on every rerun would cost too much) and, for a
    part, the list of all videos the parts are cut from (it decides which videos are this part's).

    The sentences as parsed, not the caption file's bytes: hashing HowTo100M's several-GB caption.json
    would add a full read to every run of every part (the streamed parse reads it anyway, and keeps only
    this part's captions), and an edit to other videos' captions changes nothing in these shards."""
    captions = hashlib.sha256()
    for job in jobs:
        sentences = [[s.start, s.end, s.text] for s in job.sentences]
        captions.update(json.dumps([job.video_id, sentences]).encode())
    lines = []
    for job in jobs:
        try:
            stat = os.stat(job.path)
            lines.append(f"{job.path}\t{stat.st_size}\t{stat.st_mtime_ns}")
        except OSError:  # a missing file (skipped as missing_video): its appearing later is a change too
            lines.append(f"{job.path}\tmissing")
    videos = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    inputs = {"captions": captions.hexdigest(), "videos": videos}
    if cfg.part:
        inputs["partition"] = hashlib.sha256("\n".join(video_ids).encode()).hexdigest()
    return inputs


def output_settings(cfg: PrepareConfig) -> dict:
    """The values of OUTPUT_FIELDS, as the run state records them."""
    return {k: getattr(cfg, k) for k in OUTPUT_FIELDS}


def other_settings(state: PrepareState, config: dict) -> str | None:
    """Which settings of `state` differ from `config` (an `output_settings()` dict), or None."""
    if state.config == config:
        return None
    changed = sorted(k for k in config if state.config.get(k) != config[k])
    return f"holds shards prepared with other settings ({', '.join(changed)} differ)"


def stale_reason(state: PrepareState, config: dict, inputs: dict, cfg: PrepareConfig) -> str | None:
    """Why the shards of `state` are not those `cfg` would write now, or None if they are."""
    if problem := other_settings(state, config):
        return problem
    what = {
        "captions": f"the captions of these videos in {cfg.captions}",
        "videos": f"the video files in {cfg.videos}",
        "partition": f"the list of videos in {cfg.videos}, which decides each part's videos",
    }
    changed = [what[k] for k in inputs if state.inputs.get(k) != inputs[k]]
    if changed:
        return f"the inputs changed since the shards in it were written ({' and '.join(changed)})"
    return None


def damaged_shard(out: Path, state: PrepareState) -> str | None:
    """The first shard of `state` that is gone or not the size it was written with (a cut copy, a full disk).

    A stat per shard, not a read: reading every member header of thousands of shards on each rerun is slow,
    and a tar that lost its tail is always shorter than it was."""
    for name, samples in sorted(state.shards.items()):
        path = out / name
        if not path.is_file():
            return f"shard {name} is missing"
        size, written = path.stat().st_size, state.shard_bytes.get(name)
        if written is not None and size < written:
            return f"shard {name} is truncated ({size} of {written} bytes; it held {samples} samples)"
        if size != written:
            return f"shard {name} is not the file that was written ({size} bytes, expected {written})"
    return None


def remove_outputs(out: Path, state: PrepareState) -> None:
    """Delete what an earlier run wrote to `out`: its shards, their cached tokens, summaries and state."""
    prefix = state.config.get("shard_prefix", "clips")
    names = set(state.shards) | {p.name for p in out.glob(f"{prefix}-[0-9]*.tar")}
    for folder in (out, out / "tokens"):  # cached tokens of a replaced shard would be reused as finished
        for name in names:
            (folder / name).unlink(missing_ok=True)
        (folder / SUMMARY_NAME).unlink(missing_ok=True)
    (out / STATE_NAME).unlink(missing_ok=True)


def load_state(out: Path, cfg: PrepareConfig, inputs: dict[str, str]) -> PrepareState:
    """The saved progress in `out` if it matches `cfg` and `inputs` and its shards are intact; otherwise a
    fresh state after clearing `out` (with `cfg.overwrite`) or a StgUserError saying what differs."""
    config = output_settings(cfg)
    path = out / STATE_NAME
    if not path.is_file():
        return PrepareState(config, inputs)
    state = PrepareState(**json.loads(path.read_text()))
    problem = stale_reason(state, config, inputs, cfg) or damaged_shard(out, state)
    if problem is None:
        return state
    if not cfg.overwrite:
        raise StgUserError(f"{out}: {problem}; pass --overwrite to redo it, or choose another --out folder")
    remove_outputs(out, state)
    return PrepareState(config, inputs)


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
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    jobs, orphan_captions, video_ids = build_jobs(cfg)
    state = load_state(out, cfg, input_fingerprint(cfg, jobs, video_ids))
    for stale in out.glob("*.tar.tmp"):  # a shard a killed run was writing
        stale.unlink()
    if not state.done:
        counts, skipped = Counter(state.counts), list(state.skipped)  # of the videos before the current one
        writer: ShardWriter | None = None
        resume_index, resume_skip = state.video_index, state.skip_samples
        bar = progress_bar(len(jobs), "stg prepare", "video", initial=resume_index, disable=not progress)
        for index, result in enumerate(_results(jobs[resume_index:], cfg), start=resume_index):
            first = resume_skip if index == resume_index else 0
            for j in range(first, len(result.samples)):
                if writer is None:
                    writer = ShardWriter(out / f"{cfg.shard_prefix}-{state.next_shard:06d}.tar")
                writer.add(*result.samples[j])
                if writer.count == cfg.shard_size:
                    writer.close()
                    state.add_shard(writer)
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
            state.add_shard(writer)
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

        out = output_dir(cfg)
        shards = [out / name for name in sorted(summary["shards"])]
        backbone = {**cfg.backbone, "model_name": cfg.model_name, "pretrained": cfg.pretrained}
        summary["tokens"] = cache_tokens_for_shards(shards, out / "tokens", backbone, cfg.device, progress)
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
        f" details in {output_dir(cfg) / SUMMARY_NAME}"
    )
    return 0
