"""Rank sync: two gloo processes each updating half of the videos equal one process with all."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from stg_lightning.eval.metrics import IoUPointing, PointingGame, SpatialMAP, TemporalAlignment, VideoMAP

FRAME = (16, 12)


def _videos(n: int = 6, frames: int = 8) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        xy = torch.rand(frames, 2, generator=g) * torch.tensor([10.0, 7.0])
        wh = torch.rand(frames, 2, generator=g) * 5 + 1
        labels = torch.randint(-1, 3, (frames,), generator=g)
        out.append(
            {
                "gt": labels,
                "pred": torch.where(
                    torch.rand(frames, generator=g) < 0.7,
                    labels,
                    torch.randint(-1, 3, (frames,), generator=g),
                ),
                "gt_boxes": torch.cat([xy, xy + wh], 1),
                "heat": torch.rand(frames, 3, 3, generator=g),
                "scores": torch.rand(frames, generator=g),
                "sim": torch.rand(frames, 3, generator=g),
                "steps": torch.tensor([-1, 0, 0, 1, 1, -1, 2, 2]),
            }
        )
    return out


def _metrics() -> dict:
    return {
        "pointing": PointingGame(),
        "spatial_map": SpatialMAP(),
        "iou_pointing": IoUPointing(),
        "video_map": VideoMAP(),
        "temporal": TemporalAlignment(),
    }


def _run(videos: list[dict]) -> dict[str, float]:
    metrics = _metrics()
    for v in videos:
        metrics["pointing"].update(v["gt_boxes"], FRAME, heat=v["heat"])
        metrics["spatial_map"].update(v["gt"].clamp(min=0), v["scores"], v["gt_boxes"], FRAME, heat=v["heat"])
        metrics["iou_pointing"].update(v["pred"], v["gt"], v["gt_boxes"], FRAME, heat=v["heat"])
        metrics["video_map"].update(v["pred"], v["scores"], v["gt"], v["gt_boxes"], FRAME, heat=v["heat"])
        metrics["temporal"].update(v["steps"], similarity=v["sim"])
    out = {}
    for name, metric in metrics.items():
        value = metric.compute()
        out.update(
            {k: float(x) for k, x in value.items()} if isinstance(value, dict) else {name: float(value)}
        )
    return out


def _worker(rank: int, port: int, result_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        out = _run(_videos()[rank::2])
        if rank == 0:
            torch.save(out, result_file)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(tmp_path):
    expected = _run(_videos())
    result_file = os.fspath(tmp_path / "rank0.pt")
    mp.spawn(_worker, args=(_free_port(), result_file), nprocs=2, join=True)
    synced = torch.load(result_file)
    assert synced.keys() == expected.keys()
    for key, value in expected.items():
        assert synced[key] == pytest.approx(value, abs=1e-6), key
    assert 0 < expected["video_map"] < 1 and 0 < expected["iou"] < 1  # a non-trivial case
