"""Inference (docs/evaluation.md §1): temporal labelling with known answers, clip windows, streaming predictions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from eval_fixtures import tiny_model
from PIL import Image

from stg_lightning.backbones import S3DConfig
from stg_lightning.data.video import iter_frames_at_fps
from stg_lightning.errors import StgUserError
from stg_lightning.eval.combine import combine_predictions, unplaced
from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.inference import (
    PartialPredictionsError,
    frame_batch,
    postprocess_scores,
    predict_clips,
    predict_dataset,
    predict_video,
    second_windows,
    temporal_labels,
    video_queries,
)
from stg_lightning.eval.predictions import validate_predictions
from stg_lightning.eval.readout import InferenceConfig, clip_record, clip_windows, scored_dataset
from stg_lightning.eval.records import DatasetReport, EvalDataset, Segment, VideoRecord
from stg_lightning.model import GlobalHeadConfig, GroundingModel, LocalHeadConfig
from stg_lightning.selection import SelectionConfig

SIM = torch.tensor([[0.6, 0.2], [0.4, 0.45], [0.1, 0.7], [0.55, 0.5]])


@pytest.fixture(scope="module")
def gyt(split: Path):
    return load_dataset("gyt", split / "eval" / "gyt" / "GoundingYouTubeBox.json")


@pytest.fixture(scope="module")
def model():
    return tiny_model().model.eval()


def _video(split: Path, vid: str) -> Path:
    return split / "eval" / "gyt" / "videos" / f"{vid}.mp4"


# ----------------------------------------------------------------------------------------- temporal labels
def test_theta_and_background_on_raw_scores():
    labels, best = temporal_labels(postprocess_scores(SIM, InferenceConfig()), theta=0.5)
    assert labels.tolist() == [0, -1, 1, 0]
    assert torch.allclose(best, torch.tensor([0.6, 0.45, 0.7, 0.55]))


def test_minmax_normalises_the_whole_video():
    scores = postprocess_scores(SIM, InferenceConfig(normalise="minmax"))
    assert torch.allclose(scores, (SIM - 0.1) / 0.6)
    # 0.45 → 0.583 now clears θ = 0.5.
    assert temporal_labels(scores, 0.5)[0].tolist() == [0, 1, 1, 0]
    assert postprocess_scores(torch.full((3, 2), 0.3), InferenceConfig(normalise="minmax")).eq(0).all()


def test_query_minmax_normalises_each_query_over_the_video():
    scores = postprocess_scores(SIM, InferenceConfig(normalise="query_minmax"))
    # Column 0 spans [0.1, 0.6], column 1 [0.2, 0.7]: each maps to [0, 1] on its own.
    expected = torch.tensor([[1.0, 0.0], [0.6, 0.5], [0.0, 1.0], [0.9, 0.6]])
    assert torch.allclose(scores, expected)
    assert temporal_labels(scores, 0.5)[0].tolist() == [0, 0, 1, 0]
    flat = torch.tensor([[0.3, 0.1], [0.3, 0.5]])  # a constant query becomes 0, the other is still scaled
    flat_scores = postprocess_scores(flat, InferenceConfig(normalise="query_minmax"))
    assert torch.equal(flat_scores, torch.tensor([[0.0, 0.0], [0.0, 1.0]]))


def test_median_smoothing_replicates_edges_and_removes_spikes():
    scores = postprocess_scores(SIM, InferenceConfig(median_window=3))
    # Column 0 padded [.6 .6 .4 .1 .55 .55] → [.6 .4 .4 .55]; column 1 [.2 .2 .45 .7 .5 .5] → [.2 .45 .5 .5].
    assert torch.allclose(scores, torch.tensor([[0.6, 0.2], [0.4, 0.45], [0.4, 0.5], [0.55, 0.5]]))
    assert temporal_labels(scores, 0.5)[0].tolist() == [0, -1, 1, 0]
    spike = torch.tensor([[0.0], [0.0], [1.0], [0.0], [0.0]])
    assert postprocess_scores(spike, InferenceConfig(median_window=3)).eq(0).all()


def test_config_rejects_even_median_window():
    with pytest.raises(ValueError, match="median_window"):
        InferenceConfig(median_window=4)


# ----------------------------------------------------------------------------------------- clip windows
def _record() -> VideoRecord:
    segments = [
        Segment("a", "a", 2, 6),
        Segment("b", "b", 10, 14),
        Segment("c", "c", 20.5, 22),
        Segment("a", "a", 25, 29),
    ]
    labels = {t: s.query for s in segments for t in s.frames()}
    return VideoRecord(
        "v",
        (64, 48),
        30,
        segments,
        labels,
        boxes={11: (1, 2, 3, 4), 3: (0, 0, 9, 9)},
        queries=["a", "b", "c"],
    )


def test_clip_windows_are_the_segments_padded_by_their_length():
    windows = clip_windows(_record())
    assert [(w.clip_id, w.start, w.end) for w in windows] == [
        ("v#0", 0, 10),  # [2, 6) ± 4, clipped at 0
        ("v#1", 6, 18),  # [10, 14) ± 4
        ("v#2", 19, 24),  # [20.5, 22) ± 1.5 → [19, 23.5) → seconds 19..23
        ("v#3", 21, 30),  # [25, 29) ± 4, clipped at the video's 30 frames
    ]


def test_clip_record_shifts_gt_and_keeps_only_its_step():
    rec = _record()
    clip = clip_record(rec, clip_windows(rec)[1])
    assert clip.num_frames == 12 and clip.queries == ["b"]
    assert clip.labels == {4: "b", 5: "b", 6: "b", 7: "b"}
    assert clip.boxes == {5: (1, 2, 3, 4)}
    assert clip.segments == [Segment("b", "b", 4, 8)]
    dataset = EvalDataset("gyt", [rec], DatasetReport("gyt", "memory"))
    assert [r.video_id for r in scored_dataset(dataset, "clip").records] == ["v#0", "v#1", "v#2", "v#3"]


# ----------------------------------------------------------------------------------------- predictions
def test_predict_video_writes_one_entry_per_second_with_grid_heat(split, gyt, model):
    rec = gyt.records[0]
    path = _video(split, rec.video_id)
    seconds = sum(1 for _ in iter_frames_at_fps(path, 1))
    preds = predict_video(model, path, rec, InferenceConfig(theta=-1.0))  # θ = -1: every second labelled
    validate_predictions({rec.video_id: preds})
    assert preds.num_frames == seconds and [p.t for p in preds.frames] == list(range(seconds))
    assert all(p.label in rec.queries for p in preds.frames)
    for p in preds.frames + preds.grounding:
        assert p.heat.shape == model.backbone.grid
        assert p.heat.sum() == pytest.approx(1.0, abs=1e-4)
    # Every GT box second has an answer for its GT query: the frame entry or a grounding entry.
    grounding = {(p.t, p.label) for p in preds.grounding}
    for t in rec.boxes:
        assert preds.frames[t].label == rec.labels[t] or (t, rec.labels[t]) in grounding
    assert preds.step_scores.shape == (seconds, len(rec.segments))


def test_chunk_size_does_not_change_predictions(split, gyt, model):
    rec = gyt.records[0]
    a = predict_video(model, _video(split, rec.video_id), rec, InferenceConfig(chunk_size=32, theta=-1.0))
    b = predict_video(model, _video(split, rec.video_id), rec, InferenceConfig(chunk_size=3, theta=-1.0))
    assert [p.label for p in a.frames] == [p.label for p in b.frames]
    for p, q in zip(a.frames + a.grounding, b.frames + b.grounding):
        np.testing.assert_allclose(p.heat, q.heat, atol=1e-5)
    np.testing.assert_allclose(a.step_scores, b.step_scores, atol=1e-5)


def test_frame_folder_gives_the_mp4_predictions(split, gyt, model, tmp_path):
    rec = gyt.records[1]
    path = _video(split, rec.video_id)
    folder = tmp_path / rec.video_id
    folder.mkdir()
    for t, frame in iter_frames_at_fps(path, 1):
        Image.fromarray(frame).save(folder / f"{int(t)}.png")  # lossless, so the inputs are identical
    cfg = InferenceConfig(theta=-1.0, spatial="patch_similarity")
    a, b = predict_video(model, path, rec, cfg), predict_video(model, folder, rec, cfg)
    assert a.num_frames == b.num_frames
    assert [p.label for p in a.frames] == [p.label for p in b.frames]
    np.testing.assert_allclose([p.score for p in a.frames], [p.score for p in b.frames], atol=1e-5)
    np.testing.assert_allclose(a.frames[0].heat, b.frames[0].heat, atol=1e-5)


def test_clip_mode_predicts_each_padded_segment_in_clip_time(split, gyt, model):
    rec = gyt.records[0]
    cfg = InferenceConfig(theta=-1.0, spatial="patch_similarity")
    preds = predict_clips(model, _video(split, rec.video_id), rec, cfg)
    windows = clip_windows(rec)
    assert list(preds) == [w.clip_id for w in windows]
    for w in windows:
        p = preds[w.clip_id]
        assert p.num_frames == w.end - w.start
        assert {f.label for f in p.frames} == {rec.segments[w.index].query}
    validate_predictions(preds)


def test_patch_similarity_and_raw_features(split, gyt, model):
    rec = gyt.records[0]
    cfg = InferenceConfig(theta=-1.0, spatial="patch_similarity", raw_features=True, heat_dtype="float16")
    preds = predict_video(model, _video(split, rec.video_id), rec, cfg)
    assert preds.frames[0].heat.dtype == np.float16
    assert preds.frames[0].heat.astype(np.float32).sum() == pytest.approx(1.0, abs=1e-2)


def test_two_frames_per_second_average_into_the_same_seconds(split, gyt, model):
    rec = gyt.records[0]
    one = predict_video(model, _video(split, rec.video_id), rec, InferenceConfig(heatmaps=False))
    two = predict_video(model, _video(split, rec.video_id), rec, InferenceConfig(heatmaps=False, fps=2))
    assert two.num_frames == one.num_frames and two.grounding == []
    assert not np.allclose(one.step_scores, two.step_scores)


def test_predict_dataset_missing_video(split, gyt, model, tmp_path):
    with pytest.raises(StgUserError, match="--videos"):
        predict_dataset(model, gyt, tmp_path, progress=False)
    assert predict_dataset(model, gyt, tmp_path, progress=False, lenient=True) == {}
    cfg = InferenceConfig(mode="clip", heatmaps=False)
    clips = predict_dataset(model, gyt, split / "eval" / "gyt" / "videos", cfg, progress=False)
    assert set(clips) == {r.video_id for r in scored_dataset(gyt, "clip").records}


def test_patch_pool_scores_are_the_pooled_patch_cosines(split, gyt, model):
    rec = gyt.records[0]
    path = _video(split, rec.video_id)
    cfg = InferenceConfig(theta=-1.0, temporal="patch_pool", patch_pool_temperature=0.05, heatmaps=False)
    preds = predict_video(model, path, rec, cfg)
    steps = [s.query for s in rec.segments]
    _, frame = next(iter_frames_at_fps(path, 1))
    with torch.no_grad():
        x = torch.from_numpy(frame).permute(2, 0, 1).float()[None]
        size = model.backbone.image_size
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        patches = model.backbone.encode_frames(model.backbone.normalize(x / 255.0)[None]).patches[0, 0]
        queries = model.global_head.project_text(
            model.backbone.encode_text(model.backbone.tokenize(steps)).sentence
        )
        cos = F.normalize(model.global_head.project_frames(patches), dim=-1) @ F.normalize(queries, dim=-1).T
    expected = ((cos / 0.05).softmax(0) * cos).sum(0)  # softmax over the N patches, per query
    np.testing.assert_allclose(preds.step_scores[0], expected.numpy(), atol=1e-5)
    # Temperature 0 reads the best patch: never below the softmax-weighted mean.
    best = predict_video(model, path, rec, InferenceConfig(temporal="patch_pool", patch_pool_temperature=0.0))
    np.testing.assert_allclose(best.step_scores[0], cos.amax(0).numpy(), atol=1e-5)
    assert (best.step_scores >= preds.step_scores - 1e-6).all()


# ----------------------------------------------------------------------------------------- temporal stride
def test_second_windows_are_centred_and_padded_at_the_edges():
    frames = ((k / 2, np.full((1,), k)) for k in range(6))  # 3 seconds at 2 fps
    windows = [(t, [int(f[0]) for f in w]) for t, w in second_windows(frames, fps=2, window=4, start=0)]
    # Second s: frames 2s − 1 … 2s + 2, indices outside the video repeat its first / last frame.
    assert windows == [(0.0, [0, 0, 1, 2]), (1.0, [1, 2, 3, 4]), (2.0, [3, 4, 5, 5])]


@pytest.fixture(scope="module")
def s3d_model():
    torch.manual_seed(0)
    backbone = S3DConfig(vocabulary=["crack", "egg", "cut", "tomato", "bowl"], image_size=64)
    selection = SelectionConfig(text_granularity="global")  # S3D's words are not in its sentence space
    return GroundingModel(
        backbone, selection, global_head=GlobalHeadConfig(embed_dim=16), local_head=LocalHeadConfig(16, 4)
    ).eval()


def test_s3d_predictions_score_each_second_from_its_window(split, gyt, s3d_model):
    rec = gyt.records[0]
    cfg = InferenceConfig(fps=2, window_frames=8, chunk_size=16, theta=-1.0)  # every second labelled
    preds = predict_video(s3d_model, _video(split, rec.video_id), rec, cfg)
    validate_predictions({rec.video_id: preds})
    frames = list(iter_frames_at_fps(_video(split, rec.video_id), 2))
    assert preds.num_frames == math.ceil(len(frames) / 2) and len(preds.frames) == preds.num_frames
    # Oracle for second 3: its window (frames 3 … 10 at 2 fps) through the backbone, cosines averaged
    # over the window's two S3D steps.
    queries = video_queries(rec)
    window = [frames[min(max(k, 0), len(frames) - 1)][1] for k in range(2 * 3 - 3, 2 * 3 + 5)]
    with torch.no_grad():
        pixels = frame_batch(s3d_model, window)
        tokens, _ = s3d_model.encode_video(pixels, torch.ones(1, 8, dtype=torch.bool))
        expected = s3d_model.frame_query_scores(tokens, s3d_model.encode_queries(queries)).mean(0)
    np.testing.assert_allclose(
        preds.step_scores[3], expected[[queries.index(s.query) for s in rec.segments]].numpy(), atol=1e-5
    )
    heats = [p.heat for p in preds.frames if p.heat is not None]
    assert heats and all(h.shape == s3d_model.grid and abs(h.sum() - 1) < 1e-4 for h in heats)


def test_s3d_window_must_be_a_multiple_of_the_stride(split, gyt, s3d_model):
    rec = gyt.records[0]
    with pytest.raises(StgUserError, match=r"window_frames .* multiple"):
        predict_video(s3d_model, _video(split, rec.video_id), rec, InferenceConfig(window_frames=12))


def test_grounding_all_lets_combine_place_another_models_labels(split, gyt, model):
    # Model A labels every second; model B (another init) writes its heat for every query at every second,
    # so the combined file has B's heat for A's label everywhere: no answer left without a place.
    rec = gyt.records[0]
    video = _video(split, rec.video_id)
    a = predict_video(model, video, rec, InferenceConfig(theta=-1.0))
    b_model = tiny_model(seed=1).model.eval()
    b = predict_video(b_model, video, rec, InferenceConfig(theta=2.0, grounding="all"))
    assert all(p.label is None for p in b.frames)  # B labels nothing, yet answers every pair
    assert len(b.grounding) == b.num_frames * len(video_queries(rec))
    combined = combine_predictions({rec.video_id: a}, {rec.video_id: b})
    assert unplaced(combined) == 0
    p = combined[rec.video_id].frames[3]
    b_answer = next(g for g in b.grounding if (g.t, g.label) == (3, p.label))
    np.testing.assert_array_equal(p.heat, b_answer.heat)


def test_an_undecodable_video_keeps_the_predictions_before_it(split, gyt, model, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    first, second = gyt.records[0].video_id, gyt.records[1].video_id
    for rec in gyt.records:
        (videos / f"{rec.video_id}.mp4").write_bytes(_video(split, rec.video_id).read_bytes())
    (videos / f"{second}.mp4").write_bytes(b"not a video" * 100)
    cfg = InferenceConfig(heatmaps=False)
    with pytest.raises(PartialPredictionsError, match=rf"{second}.mp4: cannot decode .*--lenient") as err:
        predict_dataset(model, gyt, videos, cfg, progress=False)
    assert set(err.value.predictions) == {first}
    lenient = predict_dataset(model, gyt, videos, cfg, progress=False, lenient=True)
    assert set(lenient) == {r.video_id for r in gyt.records} - {second}
