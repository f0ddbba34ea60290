"""One full training step of GroundingModule at paper shapes: backbone encode, selection, heads + loss.

    python benchmarks/bench_train_step.py --device cuda --batch 64 --precision bf16 --out bench_results/train_step.json

Random-init open_clip ViT-B-32 (frozen), U candidate frames at 224 px, T selected, K words; times are medians
of --repeats steps after one warm-up. On a CPU use small shapes (e.g. --batch 4 --candidates 16).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from results import write_result

from stg_lightning.backbones import OpenClipConfig
from stg_lightning.data.batch import ClipBatch
from stg_lightning.lit_module import GroundingModule
from stg_lightning.selection import SelectionConfig


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_results/train_step.json"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--candidates", type=int, default=80, help="U")
    p.add_argument("--frames", type=int, default=16, help="T")
    p.add_argument("--words", type=int, default=20, help="K")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    p.add_argument("--repeats", type=int, default=3)
    return p.parse_args()


def timed(fn, device: str, repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` runs after a warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    module = GroundingModule(
        backbone=OpenClipConfig(model_name=args.model, pretrained=None, max_words=args.words),
        selection=SelectionConfig(num_frames=args.frames),
    ).to(args.device)
    model = module.model
    size = model.image_size
    texts = ["crack the egg into the bowl and whisk it well"] * args.batch
    batch = ClipBatch(
        frames=torch.randn(args.batch, args.candidates, 3, size, size, device=args.device),
        frame_mask=torch.ones(args.batch, args.candidates, dtype=torch.bool, device=args.device),
        timestamps=torch.zeros(args.batch, args.candidates, device=args.device),
        video_id=["bench"] * args.batch,
        text=texts,
        text_ids=model.tokenize(texts).to(args.device),
    )
    autocast = (
        torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16)
        if args.precision == "bf16"
        else nullcontext()
    )

    def encode() -> None:
        with autocast:
            module.tokens(batch)

    with autocast:
        frames, frame_mask, text = module.tokens(batch)

    def select() -> None:
        with autocast:
            model.select_frames(frames, frame_mask, text)

    def step() -> None:
        with autocast:
            loss = module.compute_losses(batch)["loss"]
        loss.backward()
        module.zero_grad(set_to_none=True)

    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = {
        "backbone_encode": timed(encode, args.device, args.repeats),
        "selection": timed(select, args.device, args.repeats),
        "full_step": timed(step, args.device, args.repeats),
    }
    result = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "precision": args.precision,
        "shapes": {
            "batch": args.batch,
            "U": args.candidates,
            "T": args.frames,
            "K": args.words,
            "image": size,
        },
        "seconds": seconds,
        "selection_fraction_of_step": seconds["selection"] / seconds["full_step"],
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else None,
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
