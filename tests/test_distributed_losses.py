"""A real 2-process gloo run of the global + local losses equals the single-process loss on one batch.

The cross-rank scores come from the model's API (`GroundingModel.global_scores / local_scores`); the loss sees
only those scores."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from stg_lightning.backbones import OpenClipConfig
from stg_lightning.losses import LossConfig, grounding_loss
from stg_lightning.model import GlobalHead, GlobalHeadConfig, GroundingModel, LocalHead, LocalHeadConfig

WORLD, PER_RANK = 2, 3
CFG = LossConfig(global_weight=1.0, local_weight=0.7, margin=0.05, temperature=0.5)


def _model() -> GroundingModel:
    """A model whose heads are small double-precision ones on 6-d patches and 5-d words."""
    model = GroundingModel(OpenClipConfig(model_name="stg-tiny-vit", pretrained=None))
    torch.manual_seed(0)
    model.global_head = GlobalHead(6, 5, GlobalHeadConfig(embed_dim=8)).double()
    model.local_head = LocalHead(6, 5, LocalHeadConfig(embed_dim=8, num_heads=2, chunk_size=2)).double()
    return model


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    b = WORLD * PER_RANK
    frame_mask = torch.ones(b, 3, dtype=torch.bool)
    frame_mask[[1, 4], 2] = False
    word_mask = torch.ones(b, 4, dtype=torch.bool)
    word_mask[[0, 5], 2:] = False
    return {
        "frames": torch.randn(b, 3, 6, generator=g, dtype=torch.double),
        "patches": torch.randn(b, 3, 2, 6, generator=g, dtype=torch.double),
        "frame_mask": frame_mask,
        "sentence": torch.randn(b, 5, generator=g, dtype=torch.double),
        "words": torch.randn(b, 4, 5, generator=g, dtype=torch.double),
        "word_mask": word_mask,
    }


def _loss_and_grads(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict, list[torch.Tensor]]:
    """Loss, gradients wrt the float inputs, and parameter gradients of both heads."""
    model = _model()
    glob = model.global_head
    inputs = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in batch.items()}
    video = glob.pool_video(glob.project_frames(inputs["frames"]), inputs["frame_mask"])
    text = glob.project_text(inputs["sentence"])
    scores = {
        "global": model.global_scores(video, text),
        "local": model.local_scores(
            inputs["patches"], inputs["frame_mask"], inputs["words"], inputs["word_mask"]
        ),
    }
    loss = grounding_loss(CFG, scores)["loss"]
    loss.backward()
    input_grads = {k: v.grad for k, v in inputs.items() if v.requires_grad}
    params = [p.grad for m in model.heads() for p in m.parameters()]
    return loss.detach(), input_grads, params


def _worker(rank: int, port: int, out_path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    local = {k: v[rank * PER_RANK : (rank + 1) * PER_RANK] for k, v in _batch().items()}
    loss, input_grads, param_grads = _loss_and_grads(local)
    for g in param_grads:  # what DDP does: average parameter gradients over ranks
        dist.all_reduce(g)
        g /= WORLD
    losses = [torch.zeros_like(loss) for _ in range(WORLD)]
    dist.all_gather(losses, loss)
    torch.save({"losses": losses, "inputs": input_grads, "params": param_grads}, f"{out_path}.{rank}")
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_rank_gloo_loss_and_gradients_equal_single_process(tmp_path):
    out = str(tmp_path / "rank")
    mp.spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(WORLD)]
    loss, input_grads, param_grads = _loss_and_grads(_batch())
    torch.testing.assert_close(torch.stack(ranks[0]["losses"]).mean(), loss, atol=1e-5, rtol=0)
    for r, res in enumerate(ranks):
        for got, want in zip(res["params"], param_grads):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
        rows = slice(r * PER_RANK, (r + 1) * PER_RANK)
        for name, grad in res["inputs"].items():
            # a rank's own inputs carry d(Σ_r loss_r)/dx = WORLD × the single-process gradient (see losses.py)
            torch.testing.assert_close(grad / WORLD, input_grads[name][rows], atol=1e-5, rtol=0)
