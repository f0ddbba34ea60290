"""ShardDataModule: exact round trip from prepared shards, masks, rank splitting, bad-input accounting."""

from __future__ import annotations

import gc
import random
import tarfile
from pathlib import Path

import open_clip
import pytest
import torch
from test_data_prepare import VIDEO_FPS, frame_index, small_config

from stg_lightning.backbones import InputSpec
from stg_lightning.data.batch import ClipBatch
from stg_lightning.data.datamodule import ShardDataModule, SkipMonitor
from stg_lightning.data.prepare import write_shards
from stg_lightning.data.shards import ShardWriter, iter_shard
from stg_lightning.data.transforms import ClipAugment
from stg_lightning.errors import StgUserError, user_message


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """3 clips in 2 shards (see test_data_prepare.CAPTIONS): a__00000, a__00003 | b__00000."""
    root = tmp_path_factory.mktemp("corpus")
    write_shards(small_config(root), progress=False)
    return root / "out"


def module(pattern: str | list[str], **kw) -> ShardDataModule:
    base = dict(batch_size=2, num_workers=0, num_frames=8, inputs=InputSpec(image_size=24), shuffle_buffer=0)
    return ShardDataModule(train_shards=pattern, **{**base, **kw})


def batches(dm: ShardDataModule, dataset) -> list[ClipBatch]:
    """Batches as the LightningModule receives them (hooks applied, no device move)."""
    return [dm.on_after_batch_transfer(dm.on_before_batch_transfer(b, 0), 0) for b in dataset]


def clip_ids(batch_list: list[ClipBatch]) -> list[tuple[str, float]]:
    return [(v, b.timestamps[i, 0].item()) for b in batch_list for i, v in enumerate(b.video_id)]


def test_round_trip_frames_timestamps_text_and_masks(shards):
    dm = module(str(shards / "clips-*.tar"), val_holdout_shards=1)
    (first,) = batches(dm, dm.val_dataset(0, 1, num_workers=0))  # held-out shard = b__00000 alone
    assert first.video_id == ["b"] and first.text == ["pour milk"]
    dm = module(str(shards / "clips-{000000..000001}.tar"), val_shards=str(shards / "clips-000000.tar"))
    (batch,) = batches(dm, dm.val_dataset(0, 1, num_workers=0))
    assert batch.video_id == ["a", "a"] and batch.text == ["crack egg", "stir"]
    expected = [[0, 0.5, 1, 1.5, 2, 2.5], [13.5, 14, 14.5]]
    mask = torch.tensor([[True] * 6 + [False] * 2, [True] * 3 + [False] * 5])
    assert torch.equal(batch.frame_mask, mask)
    assert torch.equal(batch.timestamps, torch.tensor([t + [0.0] * (8 - len(t)) for t in expected]))
    frames = batch.frames
    assert frames.shape == (2, 8, 3, 24, 24) and frames.dtype == torch.uint8  # the model normalises
    images = frames.permute(0, 1, 3, 4, 2).numpy()
    for i, times in enumerate(expected):
        assert [frame_index(images[i, u]) for u in range(len(times))] == [round(t * VIDEO_FPS) for t in times]
    assert torch.equal(batch.text_ids, open_clip.get_tokenizer("ViT-B-32")(["crack egg", "stir"]))


def test_clip_augment_crops_flips_and_resizes():
    frames = torch.arange(2 * 3 * 4 * 6, dtype=torch.uint8).view(2, 3, 4, 6)
    centre = ClipAugment(image_size=4, num_frames=8, random_crop=False)
    assert torch.equal(centre(frames, rng=None), frames[..., :, 1:5])
    flipped = ClipAugment(image_size=4, num_frames=8, random_crop=False, flip_prob=1.0)
    assert torch.equal(flipped(frames, rng=__import__("random").Random(0)), frames[..., :, 1:5].flip(-1))
    small = ClipAugment(image_size=2, num_frames=8, random_crop=False)
    assert small(torch.full((1, 3, 4, 6), 7, dtype=torch.uint8), rng=None).shape == (1, 3, 2, 2)
    assert centre.temporal(10, rng=None) == slice(1, 9)  # the middle 8 of 10 frames


def test_ranks_get_disjoint_samples_and_equal_batch_counts(many_shards):
    pattern = str(many_shards / "clips-{000000..000005}.tar")
    dm = module(pattern, num_frames=2, epoch_length=12)
    per_rank = [batches(dm, dm.train_dataset(rank, world_size=2)) for rank in (0, 1)]
    ids = [clip_ids(b) for b in per_rank]
    assert len(per_rank[0]) == len(per_rank[1]) == 3 == len(dm.train_dataset(0, 2))
    assert not set(ids[0]) & set(ids[1]) and len(set(ids[0]) | set(ids[1])) == 12


def test_few_shards_still_give_equal_batch_counts(many_shards):
    # 3 shards over 2 ranks: rank 0 owns 2, rank 1 owns 1 and repeats it; both step 5 batches.
    dm = module(str(many_shards / "clips-{000000..000002}.tar"), num_frames=2, epoch_length=20)
    counts = [len(list(dm.train_dataset(rank, world_size=2))) for rank in (0, 1)]
    assert counts == [5, 5]


def test_too_few_shards_without_resampling_is_a_clear_error(many_shards):
    dm = module(str(many_shards / "clips-{000000..000002}.tar"), num_workers=2, epoch_length=8)
    with pytest.raises(StgUserError, match=r"data\.resample"):
        dm.train_dataset(0, world_size=2)
    resampled = module(
        str(many_shards / "clips-{000000..000002}.tar"), num_frames=2, resample=True, epoch_length=8
    )
    assert len(list(resampled.train_dataset(1, world_size=2))) == 2


def test_missing_shards_name_the_key_and_the_fix(tmp_path):
    with pytest.raises(StgUserError, match=r"data.train_shards.*stg prepare.*make data"):
        module(str(tmp_path / "clips-{000000..000003}.tar")).train_dataset(0, 1)


def test_epoch_length_defaults_to_the_prepared_sample_count(many_shards):
    dm = module(str(many_shards / "clips-*.tar"), num_frames=2, batch_size=4)
    assert len(dm.train_dataset(0, 1)) == 3  # 12 samples / 4


def test_pipe_urls_stream_through_gopen(many_shards):
    urls = [f"pipe:cat {many_shards}/clips-00000{k}.tar" for k in range(2)]
    dm = module(urls, val_shards=urls, num_frames=2)
    got = batches(dm, dm.val_dataset(0, 1, num_workers=0))  # read to the end: no half-read pipe left behind
    assert [b.video_id for b in got] == [["p", "p"], ["p", "p"]]


def test_worker_processes_deliver_the_announced_batch_count(many_shards):
    dm = module(
        str(many_shards / "clips-*.tar"), num_frames=2, num_workers=2, epoch_length=12, shuffle_buffer=4
    )
    loader = dm.train_dataloader()
    assert len(list(loader)) == len(loader) == 6
    del loader  # stop the persistent workers now; torch waits 5 s per worker when gc finds them later
    gc.collect()


def test_unreadable_samples_and_truncated_shards_are_skipped_and_counted(shards, tmp_path):
    (a0, a0_files), (a3, a3_files) = list(iter_shard(shards / "clips-000000.tar"))
    bad = ShardWriter(tmp_path / "bad-000000.tar")
    bad.add(a0, {**a0_files, "001.jpg": b"not a jpeg"})  # corrupt frame
    bad.add(a3, {k: v for k, v in a3_files.items() if k != "002.jpg"})  # missing frame
    bad.add("good", a0_files)
    bad.close()
    with tarfile.open(shards / "clips-000001.tar") as tar:  # cut inside the 4th frame of b__00000
        cut = tar.getmember("b__00000.003.jpg").offset_data + 10
    (tmp_path / "bad-000001.tar").write_bytes((shards / "clips-000001.tar").read_bytes()[:cut])
    dm = module(str(tmp_path / "bad-00000{0..1}.tar"), val_shards=str(tmp_path / "bad-00000{0..1}.tar"))
    raw = list(dm.val_dataset(0, 1, num_workers=0))
    assert sum(b.size for b in raw) == 1
    # 2 bad samples + the truncated shard: its read error (seen by tar and shard readers) + partial sample
    assert sum(b.skipped for b in raw) == 5
    reasons = " ".join(r for b in raw for r in b.skip_reasons)
    assert "Not a JPEG" in reasons and "unexpected end of data" in reasons and "b__00000: frames" in reasons
    dm.skips.min_samples = 1
    with pytest.raises(StgUserError, match="max_skip_rate"):
        batches(dm, raw)


def test_skip_monitor_allows_rates_below_the_limit():
    monitor = SkipMonitor(max_rate=0.09, min_samples=20)
    monitor.update(delivered=1, skipped=1, reasons=["bad jpeg"])  # 50% but too early to judge
    monitor.update(delivered=18, skipped=0, reasons=[])
    assert monitor.rate == pytest.approx(0.05)
    with pytest.raises(StgUserError, match=r"2 of 21 samples unreadable.*bad jpeg"):
        monitor.update(delivered=0, skipped=1, reasons=["bad jpeg"])


def test_shuffled_training_order_is_set_by_the_seed(many_shards):
    """The shuffle buffer draws from a seeded generator (webdataset's default seeds from pid and clock)."""

    def order(seed: int, shuffle: int) -> list[tuple[str, float]]:
        random.seed(1234)  # what the DataLoader does in each worker (here: the main process, no workers)
        dm = module(str(many_shards / "clips-*.tar"), num_frames=2, epoch_length=12, shuffle_buffer=shuffle)
        dm.hparams.seed = seed
        return clip_ids(batches(dm, dm.train_dataset(0, world_size=1)))

    assert order(0, 8) == order(0, 8)
    assert order(0, 8) != order(1, 8)
    assert sorted(order(0, 8)) == sorted(order(0, 0)) != order(0, 8)  # same clips, another order


def test_clips_per_video_keeps_groups_of_one_video_together_through_the_shuffle(many_shards):
    """12 clips of 2 videos, 2 per shard (a video's clips in a row): groups of 2 stay whole through the
    shuffle, so every batch of 2 is one video; without groups the shuffle mixes the videos."""
    pattern = str(many_shards / "clips-*.tar")

    def run(clips_per_video: int) -> list[ClipBatch]:
        random.seed(1234)
        dm = module(pattern, num_frames=2, epoch_length=12, shuffle_buffer=8, clips_per_video=clips_per_video)
        return batches(dm, dm.train_dataset(0, world_size=1))

    grouped, mixed = run(2), run(1)
    assert [len(set(b.video_id)) for b in grouped] == [1] * 6
    assert any(len(set(b.video_id)) == 2 for b in mixed)
    assert sorted(clip_ids(grouped)) == sorted(clip_ids(mixed))  # the same clips, once each
    with pytest.raises(StgUserError, match=r"data.clips_per_video must be in \[1, batch_size=2\], got 3"):
        module(pattern, clips_per_video=3)


@pytest.mark.parametrize("resample", [True, False])
def test_every_shard_unreadable_stops_with_a_clear_error(tmp_path, resample):
    # Without the guard a resampling stream retries forever, and a non-resampling one ends its epochs empty.
    for i in range(3):
        (tmp_path / f"junk-{i:06d}.tar").write_bytes(b"not a tar file" * 100)
    dm = module(
        str(tmp_path / "junk-{000000..000002}.tar"), resample=resample, epoch_length=8, max_failed_reads=20
    )
    match = (
        r"21 reads failed in a row without a batch" if resample else r"a pass over the shards gave no batch"
    )
    with pytest.raises(StgUserError, match=match):
        next(iter(dm.train_dataset(0, 1)))


def test_a_worker_error_prints_as_its_one_line_message(tmp_path):
    # Through DataLoader worker processes the error comes back wrapped with the worker's traceback.
    for i in range(2):
        (tmp_path / f"junk-{i:06d}.tar").write_bytes(b"not a tar file" * 100)
    dm = module(
        str(tmp_path / "junk-{000000..000001}.tar"), resample=True, epoch_length=8, max_failed_reads=5
    )
    loader = torch.utils.data.DataLoader(dm.train_dataset(0, 1), batch_size=None, num_workers=1)
    with pytest.raises(StgUserError) as err:
        next(iter(loader))
    assert "Original Traceback" in str(err.value)
    assert user_message(err.value).startswith("data: 6 reads failed in a row without a batch")


def test_a_loader_resumed_mid_epoch_delivers_what_the_uninterrupted_one_did(many_shards):
    """2 worker processes, shuffle buffer, random crops, 2 epochs of 6 batches: stopping after 3 batches (the
    next one is worker 1's) and resuming from the saved position gives the same batches, frames included."""

    def loader():
        dm = module(str(many_shards / "clips-*.tar"), num_frames=2, epoch_length=12, shuffle_buffer=8,
                    num_workers=2, random_crop=True, inputs=InputSpec(image_size=16))  # fmt: skip
        return dm.train_dataloader()

    straight = loader()
    straight = list(straight) + list(straight)
    interrupted = loader()
    head = []
    for batch in interrupted:
        head.append(batch)
        if len(head) == 3:
            break
    state = interrupted.state_dict()
    assert state == {"epoch": 0, "delivered": 3}
    resumed = loader()
    resumed.load_state_dict(state)
    got = head + list(resumed) + list(resumed)  # the rest of epoch 0, then epoch 1
    assert clip_ids(got) == clip_ids(straight) and len(straight) == 12
    for a, b in zip(got, straight):
        assert torch.equal(a.frames, b.frames)
    assert clip_ids(straight[:6]) != clip_ids(straight[6:])  # each epoch has its own order
