"""`stg ground` / `stg view`: the timeline read back from predictions (hand-built known answers), the rendered
outputs, and the whole run on real clips (a random-init ViT-B-32 at 224 px, the paper's shapes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from stg_lightning.backbones import OpenClipConfig
from stg_lightning.cli import main as stg
from stg_lightning.errors import StgUserError
from stg_lightning.eval.predictions import (
    FramePrediction,
    VideoPredictions,
    read_predictions,
    write_predictions,
)
from stg_lightning.eval.settings import store_in_checkpoint
from stg_lightning.ground import RenderConfig, ground_video, view_predictions
from stg_lightning.ground.api import clean_queries
from stg_lightning.ground.render import display_size, heat_layer, render_videos, scaled_heat, source_video
from stg_lightning.ground.timeline import Segment, timeline
from stg_lightning.model import GroundingModel


def grid(value: float, hot: tuple[int, int] | None = None) -> np.ndarray:
    g = np.full((2, 3), value, dtype=np.float32)
    if hot is not None:
        g[hot] = 1.0
    return g


def hand_built() -> VideoPredictions:
    """4 seconds, queries a/b: t0 background, t1-2 'a', t3 'b'; grounding for the other pairs."""
    frames = [
        FramePrediction(0, None, 0.2),
        FramePrediction(1, "a", 0.8, heat=grid(0.0, (0, 0))),
        FramePrediction(2, "a", 0.6, heat=grid(0.0, (1, 2))),
        FramePrediction(3, "b", 0.9),
    ]
    grounding = [
        FramePrediction(0, "a", 0.1, heat=grid(0.5)),
        FramePrediction(1, "b", 0.3),
        FramePrediction(2, "a", 0.0, heat=grid(0.0)),  # loses to the frames entry of the same pair
    ]
    return VideoPredictions(frames, grounding, num_frames=5)


def test_timeline_reads_scores_labels_and_heat_back_from_predictions():
    line = timeline(hand_built(), ["b"])
    assert line.queries == ["b", "a"]  # the given order, then the file's other labels
    assert line.labels.tolist() == [-1, 1, 1, 0, -1]
    expected = np.array([[np.nan, 0.1], [0.3, 0.8], [np.nan, 0.6], [0.9, np.nan], [np.nan, np.nan]])
    np.testing.assert_array_equal(line.scores, expected)
    assert line.heat_of(2, 1)[1, 2] == 1.0  # the frames entry's grid, not grounding's flat one
    assert line.heat_of(0, 0) is None and line.heat_of(0, 1) is not None
    assert line.segments() == [Segment(1, 3, 1, pytest.approx(0.7)), Segment(3, 4, 0, 0.9)]


def test_display_size_keeps_aspect_with_even_sides_and_never_upscales():
    assert display_size(1280, 720, 640) == (640, 360)
    assert display_size(640, 272, 640) == (640, 272)
    assert display_size(175, 143, 640) == (176, 144)  # rounded to even, not scaled
    assert display_size(100, 2000, 640) == (32, 640)


def test_heat_layer_is_opaque_only_where_the_heat_is():
    layer_colour, alpha = heat_layer(
        np.array([[0.0, 0.0], [0.0, 2.0]]), (20, 20), RenderConfig(heat_alpha=0.5)
    )
    assert layer_colour.shape == (20, 20, 3) and alpha.shape == (20, 20, 1)
    assert alpha[0, 0, 0] == 0.0 and alpha[-1, -1, 0] == pytest.approx(0.5)
    np.testing.assert_array_equal(scaled_heat(np.full((2, 2), 3.0)), np.zeros((2, 2)))  # flat: nothing shown


@pytest.mark.parametrize(
    ("queries", "message"),
    [([], "one or more"), (["a", " "], "non-empty"), (["crack  egg", "crack egg"], "twice")],
)
def test_bad_queries_are_refused(queries, message):
    with pytest.raises(StgUserError, match=message):
        clean_queries(queries)


@pytest.fixture(scope="module")
def vit_b32() -> GroundingModel:
    torch.manual_seed(0)
    return GroundingModel(OpenClipConfig(model_name="ViT-B-32", pretrained=None)).eval()


def decoded(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return stream.width, stream.height, count


@pytest.mark.slow
def test_ground_video_on_bigbuckbunny_with_vit_b32_writes_all_four_outputs(vit_b32, real_clips, tmp_path):
    assert (vit_b32.image_size, vit_b32.grid) == (224, (7, 7))
    out = ground_video(vit_b32, real_clips["bigbuckbunny"], ["a rabbit", "a flower"], tmp_path)
    (video,) = read_predictions(out.predictions).values()
    seconds = math.ceil(5.312)  # the clip's duration: seconds 0..5 at 1 fps
    assert video.num_frames == seconds
    line = out.timeline
    assert line.scores.shape == (seconds, 2) and np.isfinite(line.scores).all()  # every (second, query)
    assert len(line.heat) == seconds * 2 and {g.shape for g in line.heat.values()} == {(7, 7)}
    # 1280x720 → 640x360 at 10 fps (the clip is 25 fps): about 10 frames per second of video
    width, height, count = decoded(out.overlay_mp4)
    assert (width, height) == (640, 360) and abs(count - 5.312 * 10) <= 2
    assert decoded(tmp_path / "video.mp4") == (width, height, count)
    with Image.open(out.overlay_gif) as gif:
        assert gif.n_frames >= 10 and gif.size == (320, 180)
    with Image.open(out.timeline_png) as png:
        assert png.size[0] > 600
    page = out.viewer_html.read_text()
    assert "data:video/mp4;base64," in page and '"a rabbit"' in page


def test_overlay_burns_in_the_detected_querys_heat_only(tmp_path, real_clips):
    """A hand-made predictions file on carphone (176x144, 29.97 fps): second 1 labelled with a hot top-left
    cell, the rest background. The overlay differs from the plain copy only in second 1 (and the caption)."""
    hot = np.zeros((2, 2), dtype=np.float32)
    hot[0, 0] = 1.0
    frames = [
        FramePrediction(t, "a" if t == 1 else None, 0.9, heat=hot if t == 1 else None) for t in range(4)
    ]
    line = timeline(VideoPredictions(frames, num_frames=4), ["a"])
    cfg = RenderConfig(fps=5)
    source = source_video(real_clips["carphone"], 4, cfg)
    assert source.size == (176, 144) and source.fps == 5
    render_videos(line, source, tmp_path / "web.mp4", cfg, tmp_path / "o.mp4", tmp_path / "o.gif")

    def frames_of(name: str) -> list[np.ndarray]:
        with av.open(str(tmp_path / name)) as c:
            return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]

    web, overlay = frames_of("web.mp4"), frames_of("o.mp4")
    assert len(web) == len(overlay) == 21  # 4.004 s at 5 fps: t = 0, 0.2, ..., 4.0
    below_caption = slice(30, None)  # the caption band is at the top
    top_left = [np.abs(o - w)[below_caption][:40, :40].mean() for o, w in zip(overlay, web)]
    bottom_right = [np.abs(o - w)[-40:, -40:].mean() for o, w in zip(overlay, web)]
    assert min(top_left[5:10]) > 20 > max(top_left[:5] + top_left[10:])  # second 1 only
    assert max(bottom_right) < 5  # cold there: the frame as it is (codec noise only)


def test_stg_ground_cli_versioned_runs_and_errors(ckpt, real_clips, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    store_in_checkpoint(ckpt, {"inference": {"theta": 0.25, "normalise": "minmax"}})
    args = [
        "ground",
        str(real_clips["carphone"]),
        "--query",
        "a phone",
        "--query",
        "a man",
        "--ckpt",
        str(ckpt),
    ]
    assert stg([*args, "--render.fps=2"]) == 0
    assert "settings stored in --ckpt" in capsys.readouterr().out
    run = tmp_path / "runs" / "ground" / "carphone_pristine" / "v1"
    preds = json.loads((run / "predictions.json").read_text())
    assert preds["settings"]["inference"]["theta"] == 0.25  # the checkpoint's readout
    assert preds["settings"]["queries"] == ["a phone", "a man"]
    assert {p.name for p in run.iterdir()} >= {"run.json", "predictions.json", "timeline.png", "overlay.mp4",
                                              "overlay.gif", "viewer.html", "video.mp4"}  # fmt: skip
    assert stg([*args, "--inference.theta=0.9", "--render.fps=2"]) == 0  # a new version, v1 untouched
    again = json.loads((run.parent / "v2" / "predictions.json").read_text())
    assert again["settings"]["inference"]["theta"] == 0.9
    assert json.loads((run / "predictions.json").read_text()) == preds
    assert stg([*args, "--out", str(run)]) == 2
    assert "already holds predictions.json" in capsys.readouterr().err
    not_a_video = tmp_path / "still.mp4"
    Image.new("RGB", (8, 8)).save(not_a_video, format="PNG")
    assert stg(["ground", str(not_a_video), "--query", "x", "--ckpt", str(ckpt), "--out", "o"]) == 2
    assert "still.mp4: not a video" in capsys.readouterr().err
    assert stg(["ground", str(not_a_video), "--query", "x", "--ckpt", str(ckpt)]) == 2
    assert not (tmp_path / "runs" / "ground" / "still").exists()  # refused before a run folder is made
    assert stg(["ground", str(real_clips["carphone"]), "--ckpt", str(ckpt), "--out", "o2"]) == 2
    assert "one or more non-empty queries" in capsys.readouterr().err


def test_stg_view_builds_a_page_per_video_and_counts_missing_videos(real_clips, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "bikes.mp4").symlink_to(real_clips["bikes"])
    heat = np.eye(3, dtype=np.float32)
    predictions = {
        "bikes": VideoPredictions([FramePrediction(2, "ride", 0.7, heat=heat)], num_frames=10),
        "gone": VideoPredictions([FramePrediction(0, "x", 0.5)], num_frames=3),
    }
    path = tmp_path / "eval_predictions.json"
    write_predictions(predictions, path, {"inference": {"theta": 0.5}})
    result = view_predictions(path, videos, tmp_path / "view", render=RenderConfig(fps=2))
    assert list(result.pages) == ["bikes"] and result.missing == ["gone"]
    page = result.pages["bikes"].read_text()
    data = json.loads(page.split('id="stg-data">')[1].split("</script>")[0])
    assert data["labels"][2] == 0 and data["labels"][3] == -1 and data["grid"] == [3, 3]
    assert data["scores"][2] == [0.7] and data["scores"][0] == [None]  # only what the file holds
    assert "gone" in result.index_html.read_text()
    assert stg(["view", str(path), "--videos", str(tmp_path / "empty"), "--out", str(tmp_path / "v2")]) == 2
    assert "none of the 2 videos" in capsys.readouterr().err
