import contextlib
import math
from dataclasses import replace

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from stg_lightning.backbones import OpenClipConfig
from stg_lightning.data.batch import ClipBatch
from stg_lightning.data.memory import MemoryDataModule
from stg_lightning.data.text_negatives import TextNegativesConfig
from stg_lightning.lit_module import GroundingModule
from stg_lightning.losses import LossConfig
from stg_lightning.model import GlobalHeadConfig, LocalHeadConfig
from stg_lightning.optim import OptimConfig, build_optimizer, build_param_groups
from stg_lightning.selection import SelectionConfig


def tiny_module(finetune: bool = False, strategy: str = "sinkhorn") -> GroundingModule:
    return GroundingModule(
        backbone=OpenClipConfig(model_name="stg-tiny-vit", pretrained=None, finetune=finetune, max_words=8),
        selection=SelectionConfig(strategy=strategy, num_frames=2),
        global_head=GlobalHeadConfig(embed_dim=32),
        local_head=LocalHeadConfig(embed_dim=32, num_heads=2),
        loss=LossConfig(margin=0.001),
        optim=OptimConfig(head_lr=3e-3, backbone_lr=1e-5),
    )


def tiny_batch(module: GroundingModule, batch_size: int = 4, frames: int = 4) -> ClipBatch:
    g = torch.Generator().manual_seed(0)
    texts = ["crack the egg", "pour milk", "stir the batter", "flip the pancake"][:batch_size]
    return ClipBatch(
        frames=torch.randn(batch_size, frames, 3, 64, 64, generator=g),
        frame_mask=torch.tensor([[True] * frames] * (batch_size - 1) + [[True] * (frames - 1) + [False]]),
        timestamps=torch.arange(frames, dtype=torch.float32).expand(batch_size, frames),
        video_id=[f"v{i}" for i in range(batch_size)],
        text_ids=module.model.tokenize(texts),
        text=texts,
    )


def test_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    module = tiny_module()
    batch = tiny_batch(module)
    optimizer, _ = build_optimizer(
        build_param_groups(module.model.heads(), module.model.backbone, module.optim_cfg),
        module.optim_cfg,
        100,
    )
    losses = []
    for _ in range(12):
        out = module.compute_losses(batch)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].item())
    assert set(out) >= {"loss", "loss_global", "loss_local", "select/mean_position", "select/plan_entropy"}
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("finetune", [False, True])
def test_backbone_gradients_only_when_finetuned(finetune):
    module = tiny_module(finetune=finetune)
    module.train()
    module.compute_losses(tiny_batch(module))["loss"].backward()
    backbone_grads = [p.grad for p in module.model.backbone.parameters()]
    head_grads = [p.grad for p in module.model.local_head.parameters()]
    assert all(g is not None for g in head_grads)
    if finetune:
        assert any(g is not None and g.abs().sum() > 0 for g in backbone_grads)
    else:
        assert all(g is None for g in backbone_grads)
        assert not module.model.backbone.training  # frozen backbone stays in eval mode


def test_param_groups_carry_configured_learning_rates():
    frozen = build_param_groups(
        tiny_module().model.heads("global"), tiny_module().model.backbone, OptimConfig()
    )
    assert [g["name"] for g in frozen] == ["heads"]
    module = tiny_module(finetune=True)
    groups = build_param_groups(module.model.heads(), module.model.backbone, module.optim_cfg)
    assert [(g["name"], g["lr"]) for g in groups] == [("heads", 3e-3), ("backbone", 1e-5)]


def test_cached_tokens_batch_gives_the_same_loss_as_frames():
    torch.manual_seed(0)
    module = tiny_module(strategy="topk").eval()
    batch = tiny_batch(module)
    with torch.no_grad():
        frames, _ = module.model.encode_video(batch.frames, batch.frame_mask)
        text = module.model.encode_text(batch.text_ids)
        cached = replace(
            batch, frames=None, text_ids=None, tokens=frames.to(torch.half), text_tokens=text.to(torch.half)
        )
        expected = module.compute_losses(batch)["loss"]
        got = module.compute_losses(cached)["loss"]
    assert got == pytest.approx(expected.item(), rel=2e-3)


def test_word_swapped_negatives_only_add_terms_to_the_video_to_text_softmax():
    torch.manual_seed(0)
    module = tiny_module(strategy="topk").eval()
    batch = tiny_batch(module)
    with torch.no_grad():
        plain = module.compute_losses(batch)
        module.negatives_cfg = TextNegativesConfig(per_clip=2, word_groups=[["egg", "milk", "pancake"]])
        out = module(batch, torch.Generator().manual_seed(0))
        swapped = module._loss_terms(out)
    # "stir the batter" has no grouped word; "pour milk" → "pour egg", "pour pancake", and so on.
    assert out.scores["local"].negative_mask.tolist() == [
        [True, True],
        [True, True],
        [False, False],
        [True, True],
    ]
    for head in ("global", "local"):
        assert out.scores[head].video_to_negatives.shape == (4, 2)
        assert swapped[f"loss_{head}"] > plain[f"loss_{head}"]


def test_validation_logs_the_chance_of_the_batches_it_scored():
    """Held-out batches of 4 and 2 clips: the epoch's chance is their clip-weighted mean, not the
    training batch's 2·ln 4."""
    torch.manual_seed(0)
    module = tiny_module(strategy="topk")
    held_out = DataLoader([tiny_batch(module, 4), tiny_batch(module, 2)], batch_size=None)
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    logged = trainer.validate(module, held_out, verbose=False)[0]
    nce = (4 * 2 * math.log(4) + 2 * 2 * math.log(2)) / 6
    for head in ("global", "local"):
        assert logged[f"val/chance_loss_{head}"] == pytest.approx(nce, rel=1e-6)
    assert logged["val/chance_loss"] == pytest.approx(2 * nce, rel=1e-6)
    assert logged["val/chance_top1"] == pytest.approx((4 / 4 + 2 / 2) / 6)


class Killed(Exception):
    pass


class RecordLosses(L.Callback):
    """Every step's training loss by step; raises `Killed` after step `kill_after` (a killed run)."""

    def __init__(self, kill_after: int | None = None) -> None:
        self.losses: dict[int, float] = {}
        self.kill_after = kill_after

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses[trainer.global_step] = float(outputs["loss"])
        if trainer.global_step == self.kill_after:
            raise Killed


def fit(tmp_path, data, max_steps: int, ckpt_path=None, kill_after=None) -> tuple[GroundingModule, dict]:
    L.seed_everything(0, workers=True)
    module = tiny_module(strategy="random")  # random frame selection: the model draws from torch's RNG
    record = RecordLosses(kill_after)
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=tmp_path / "ckpt", filename="{step}", every_n_train_steps=2, save_top_k=-1
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[checkpoint, record],
        deterministic=True,
    )
    with contextlib.suppress(Killed):
        trainer.fit(module, data, ckpt_path=ckpt_path)
    return module, record.losses


def memory_data() -> MemoryDataModule:
    # 6 batches per epoch, 2 worker processes, a new order every epoch.
    return MemoryDataModule(num_frames=4, batch_size=4, train_size=24, val_size=4, num_workers=2)


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_bit_for_bit(tmp_path):
    """10 steps straight == 5 steps, killed, resumed from the step-4 checkpoint (mid-epoch: 6 batches per
    epoch) to 10: every later loss equal bit for bit (data order, workers, random selection, optimiser,
    schedule), and the final weights."""
    straight, straight_losses = fit(tmp_path / "a", memory_data(), 10)
    fit(tmp_path / "b", memory_data(), 10, kill_after=5)
    resumed, resumed_losses = fit(
        tmp_path / "c", memory_data(), 10, ckpt_path=tmp_path / "b" / "ckpt" / "step=4.ckpt"
    )
    assert sorted(resumed_losses) == list(range(5, 11))
    assert {s: straight_losses[s] for s in resumed_losses} == resumed_losses
    assert len(set(straight_losses.values())) == 10  # the steps do differ
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_predict_step_reports_the_selected_frames_and_each_clips_own_scores():
    module = tiny_module(strategy="topk").eval()
    batch = tiny_batch(module)
    with torch.no_grad():
        out = module.predict_step(batch, 0)
        scores = module(batch).scores
    assert out["video_id"] == batch.video_id and out["selected_frames"].shape == (4, 2)
    picked = out["selected_frames"][0]
    torch.testing.assert_close(out["selected_times"][0], batch.timestamps[0][picked])
    torch.testing.assert_close(out["score_global"], scores["global"].video_to_text.diagonal())
    torch.testing.assert_close(out["score_local"], scores["local"].video_to_text.diagonal())
