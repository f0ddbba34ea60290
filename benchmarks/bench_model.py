"""Cost of frame selection vs. the heads, and peak memory of the local head's pairwise scores.

    python benchmarks/bench_model.py --out bench_results/model.json [--device cuda] [--batch 64 ...]

Times (median of --repeats, after one warm-up): Sinkhorn selection of T of U frames per batch at the
local×local and global×global granularities (with head projections), and one training step of the heads
(global + local pairwise + loss, forward + backward). Peak memory of `LocalHead.pairwise_scores` for a text
chunk of --chunk-size vs. all texts at once (no chunking), forward-only and forward + backward: on CUDA from
torch.cuda.max_memory_allocated, on CPU as VmHWM - VmRSS of a fresh subprocess per configuration (torch's
allocations are invisible to tracemalloc).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from stg_lightning.losses import LossConfig, grounding_loss
from stg_lightning.model import GlobalHead, GlobalHeadConfig, LocalHead, LocalHeadConfig
from stg_lightning.model.grounding_model import global_pair_scores, local_pair_scores, selection_space
from stg_lightning.selection import FrameSelector, SelectionConfig
from stg_lightning.tokens import FrameTokens, TextTokens


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_results/model.json"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=64, help="B (selection and heads)")
    p.add_argument(
        "--memory-batch", type=int, default=None, help="B for the memory probes (default: --batch)"
    )
    p.add_argument("--candidates", type=int, default=80, help="U")
    p.add_argument("--frames", type=int, default=16, help="T")
    p.add_argument("--patches", type=int, default=49, help="N")
    p.add_argument("--words", type=int, default=20, help="K")
    p.add_argument("--dim", type=int, default=512, help="d, the heads' embedding dim")
    p.add_argument("--input-dim", type=int, default=512, help="backbone token dims (Dv = Dp = Dt = Dw)")
    p.add_argument("--variant", default="cross_self_cross")
    p.add_argument("--chunk-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--parts", default="selection,heads,memory", help="comma list of what to measure")
    p.add_argument("--memory-probe", help=argparse.SUPPRESS)  # internal: one CPU memory configuration
    return p.parse_args(argv)


def make_heads(args: argparse.Namespace, chunk_size: int, checkpoint: bool) -> tuple[GlobalHead, LocalHead]:
    torch.manual_seed(0)
    cfg = LocalHeadConfig(
        embed_dim=args.dim, variant=args.variant, chunk_size=chunk_size, checkpoint=checkpoint
    )
    glob = GlobalHead(args.input_dim, args.input_dim, GlobalHeadConfig(embed_dim=args.dim))
    return glob.to(args.device), LocalHead(args.input_dim, args.input_dim, cfg).to(args.device)


def make_tokens(args: argparse.Namespace, batch: int, frames: int) -> tuple[FrameTokens, Tensor, TextTokens]:
    g = torch.Generator().manual_seed(1)
    dv, n, k = args.input_dim, args.patches, args.words

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g).to(args.device)

    word_mask = (torch.arange(k)[None] < torch.randint(3, k + 1, (batch, 1), generator=g)).to(args.device)
    frame_mask = torch.ones(batch, frames, dtype=torch.bool, device=args.device)
    side = int(n**0.5)
    tokens = FrameTokens(randn(batch, frames, dv), randn(batch, frames, n, dv), (side, n // max(side, 1)))
    return tokens, frame_mask, TextTokens(randn(batch, dv), randn(batch, k, dv), word_mask)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_ms(fn, args: argparse.Namespace) -> float:
    fn()  # warm-up (kernels, allocator)
    times = []
    for _ in range(args.repeats):
        sync(args.device)
        start = time.perf_counter()
        fn()
        sync(args.device)
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def time_selection(args: argparse.Namespace, granularity: str) -> float:
    glob, loc = make_heads(args, args.chunk_size, True)
    frames, frame_mask, text = make_tokens(args, args.batch, args.candidates)
    cfg = SelectionConfig(num_frames=args.frames, text_granularity=granularity, video_granularity=granularity)
    selector, space = FrameSelector(cfg), selection_space(cfg, glob, loc)
    return median_ms(lambda: selector(frames, frame_mask, text, space), args)


def time_heads_step(args: argparse.Namespace) -> float:
    glob, loc = make_heads(args, args.chunk_size, True)
    frames, frame_mask, text = make_tokens(args, args.batch, args.frames)

    def step() -> None:
        video = glob.pool_video(glob.project_frames(frames.global_), frame_mask)
        text_emb = glob.project_text(text.sentence)
        scores = {
            "global": global_pair_scores(video, text_emb),
            "local": local_pair_scores(loc, frames.patches, frame_mask, text.words, text.word_mask),
        }
        out = grounding_loss(LossConfig(), scores)
        out["loss"].backward()

    return median_ms(step, args)


def pairwise_once(loc: LocalHead, tokens: tuple[FrameTokens, Tensor, TextTokens], train: bool) -> None:
    frames, frame_mask, text = tokens
    with torch.set_grad_enabled(train):
        scores = loc.pairwise_scores(frames.patches, frame_mask, text.words, text.word_mask)
        if train:
            scores.sum().backward()


MEMORY_CASES = {  # name: (chunked, train)
    "forward_chunked": (True, False),
    "forward_unchunked": (False, False),
    "train_chunked_checkpoint": (True, True),
    "train_unchunked": (False, True),
}


def _case_head(args: argparse.Namespace, case: str, batch: int) -> LocalHead:
    chunked = MEMORY_CASES[case][0]
    return make_heads(args, args.chunk_size if chunked else batch, chunked)[1]


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory_probe_cpu(args: argparse.Namespace) -> None:
    """Child process: peak RSS growth (bytes) of one pairwise call, printed as JSON."""
    batch, train = args.memory_batch or args.batch, MEMORY_CASES[args.memory_probe][1]
    loc = _case_head(args, args.memory_probe, batch)
    pairwise_once(loc, make_tokens(args, 1, args.frames), train)  # warm-up: lazy imports, thread pools
    loc.zero_grad(set_to_none=False)  # keep .grad allocated, as in the measured call
    tokens = make_tokens(args, batch, args.frames)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _vm("VmRSS")
    pairwise_once(loc, tokens, train)
    print(json.dumps({"peak_bytes": _vm("VmHWM") - base}))


def memory_cuda(args: argparse.Namespace, case: str) -> int:
    batch = args.memory_batch or args.batch
    loc = _case_head(args, case, batch)
    tokens = make_tokens(args, batch, args.frames)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    try:
        pairwise_once(loc, tokens, MEMORY_CASES[case][1])
    except torch.OutOfMemoryError:
        return -1
    return torch.cuda.max_memory_allocated() - base


def memory_cpu(case: str, argv: list[str]) -> int:
    cmd = [sys.executable, __file__, *argv, "--memory-probe", case]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        print(f"memory probe {case} failed (rc {done.returncode}): {done.stderr[-500:]}", file=sys.stderr)
        return -1
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.memory_probe:
        memory_probe_cpu(args)
        return
    torch.set_grad_enabled(True)
    shapes = {k: getattr(args, k) for k in ("batch", "candidates", "frames", "patches", "words", "dim")}
    result: dict = {
        "device": args.device,
        "shapes": shapes,
        "variant": args.variant,
        "ms": {},
        "peak_mib": {},
    }
    if args.device.startswith("cuda"):
        result["device_name"] = torch.cuda.get_device_name()
    result["torch_threads"] = torch.get_num_threads()
    parts = set(args.parts.split(","))
    if "selection" in parts:
        for gran in ("local", "global"):
            result["ms"][f"selection_sinkhorn_{gran}_{gran}"] = time_selection(args, gran)
    if "heads" in parts:
        result["ms"]["heads_forward_backward"] = time_heads_step(args)
    if "memory" in parts:
        result["memory_batch"] = args.memory_batch or args.batch
        for case in MEMORY_CASES:
            peak = memory_cuda(args, case) if args.device.startswith("cuda") else memory_cpu(case, argv)
            result["peak_mib"][case] = round(peak / 2**20, 1) if peak >= 0 else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"device {result.get('device_name', args.device)}, shapes {shapes}, variant {args.variant}")
    for section, unit in (("ms", "ms"), ("peak_mib", "MiB")):
        for name, value in result[section].items():
            shown = "OOM/failed" if value is None else f"{value:10.1f} {unit}"
            print(f"  {name:32s} {shown}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
