"""Loaders on small files written in the documented formats, and the real GYT / MYT counts."""

import json
import pickle

import pytest

from stg_lightning.eval.datasets import load_dataset
from stg_lightning.eval.loaders import load_gyt, load_myt, load_yc_inter, shared_data_root
from stg_lightning.eval.records import AnnotationError

GYT_FILE = shared_data_root() / "groundingyoutube" / "GoundingYouTubeBox.json"
MYT_DIR = shared_data_root() / "miningyoutube" / "annotations"
needs_gyt = pytest.mark.skipif(
    not GYT_FILE.exists(), reason=f"GroundingYouTube not found at {GYT_FILE} (STG_SHARED_DATA)"
)
needs_myt = pytest.mark.skipif(
    not MYT_DIR.exists(), reason=f"MiningYouTube not found at {MYT_DIR} (STG_SHARED_DATA)"
)


def _gyt(tmp_path, data) -> str:
    path = tmp_path / "gyt.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_gyt_runs_queries_and_clipping(tmp_path):
    entry = lambda box, step: {"box": box, "step": step}  # noqa: E731
    path = _gyt(
        tmp_path,
        {
            "v1": {
                "3": entry([10, 20, 480, 629], "Crack eggs"),
                "4": entry([10, 20, 480, 400], "Crack eggs"),
                "6": entry([500, 5, 480, 50], "Crack eggs"),
                "7": entry([0, 0, 9, 9], "add_salt"),
            }
        },
    )
    rec = load_gyt(path).records[0]
    assert [(s.label, s.start, s.end) for s in rec.segments] == [
        ("Crack eggs", 3, 5),
        ("Crack eggs", 6, 7),
        ("add_salt", 7, 8),
    ]
    assert rec.queries == ["crack eggs", "add salt"]
    assert rec.labels[7] == "add salt" and rec.num_frames == 8 and rec.frame_size == (640, 480)
    assert rec.boxes[3] == (10, 20, 480, 629)
    assert load_gyt(path, clip_to_frame=True).records[0].boxes[3] == (10, 20, 480, 479)
    report = load_gyt(path).report.counts
    assert (report["runs"], report["x2_eq_480"], report["zero_area"], report["y2_over_480"]) == (3, 3, 1, 1)
    assert report["inverted"] == 1  # the zero-area box has x2 < x1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "cannot read GroundingYouTube JSON"),
        (
            '{"vid": {"5": {"box": [1, 2, 3], "step": "x"}}}',
            r"video 'vid', second '5': box must be 4 numbers",
        ),
        ('{"vid": {"five": {"box": [1, 2, 3, 4], "step": "x"}}}', r"video 'vid', second 'five'"),
        # float() would take these: strings, booleans and empty step names are refused
        ('{"vid": {"5": {"box": ["1", 2, 3, 4], "step": "x"}}}', r"second '5': box must be 4 numbers"),
        ('{"vid": {"5": {"box": [true, 2, 3, 4], "step": "x"}}}', r"second '5': box must be 4 numbers"),
        ('{"vid": {"5": {"box": [1, 2, 3, 4], "step": "  _ "}}}', r"second '5': key 'step' is empty"),
    ],
)
def test_gyt_malformed_names_file_video_key(tmp_path, text, match):
    path = _gyt(tmp_path, text)
    with pytest.raises(AnnotationError, match=match) as err:
        load_gyt(path)
    assert str(path) in str(err.value)


def test_gyt_lenient_skips_and_counts(tmp_path):
    path = _gyt(
        tmp_path, '{"v": {"1": {"box": [1, 2, 3], "step": "x"}, "2": {"box": [1, 2, 3, 4], "step": "x"}}}'
    )
    ds = load_gyt(path, lenient=True)
    assert list(ds.records[0].boxes) == [2]
    assert len(ds.report.skipped) == 1 and "second '1'" in ds.report.skipped[0]


def _srt(path, blocks):
    text = "".join(f"{i + 1}\r\n{a} --> {b}\r\n{label}\r\n\r\n" for i, (a, b, label) in enumerate(blocks))
    path.write_bytes("\ufeff".encode() + text.encode())


def test_myt_srt_bom_crlf_milliseconds(tmp_path):
    (tmp_path / "ann").mkdir()
    _srt(
        tmp_path / "ann" / "vidA.srt",
        [
            ("00:00:01,500", "00:00:04,000", "crack_eggs"),
            ("00:00:05,200", "00:00:05,900", "Add_Salt"),
            ("00:01:00,000", "00:01:02,001", "crack_eggs"),
        ],
    )
    (tmp_path / "weakYouTube_dict.txt").write_text("crack_egg \nadd_salt \nbackground\n")
    ds = load_myt(tmp_path / "ann")
    rec = ds.records[0]
    # 5.2–5.9 s holds no whole second at 1 fps: it leaves the ordered list and is counted.
    assert [(s.label, s.query, s.start, s.end) for s in rec.segments] == [
        ("crack_eggs", "crack eggs", 1.5, 4.0),
        ("crack_eggs", "crack eggs", 60.0, 62.001),
    ]
    assert sorted(rec.labels) == [2, 3, 60, 61, 62] and rec.num_frames == 63
    assert ds.report.counts == {
        "videos": 1,
        "segments": 3,
        "raw_labels": 2,
        "empty_segments_at_1fps": 1,
        "classes": 2,
    }


def test_myt_end_before_start(tmp_path):
    _srt(tmp_path / "v.srt", [("00:00:09,000", "00:00:04,000", "x")])
    with pytest.raises(
        AnnotationError, match=r"v.srt: video 'v', block '1': end 00:00:04,000 is before start"
    ):
        load_myt(tmp_path)
    assert load_myt(tmp_path, lenient=True).report.skipped


def _yc_files(tmp_path, segments, boxes, database):
    paths = [tmp_path / "seg.pkl", tmp_path / "ann.pkl", tmp_path / "yc2.json"]
    paths[0].write_bytes(pickle.dumps(segments, protocol=2))
    paths[1].write_bytes(pickle.dumps(boxes))
    paths[2].write_text(json.dumps({"database": database}))
    return paths


def test_yc_inter_one_based_seconds_and_queries(tmp_path):
    database = {
        "yc1": {
            "duration": 30.2,
            "annotations": [
                {"segment": [3, 5], "id": 0, "sentence": "Crack the egg."},
                {"segment": [10, 11], "id": 1, "sentence": "stir"},
            ],
        }
    }
    boxes = {"yc1": {4: (0, 0, 10, 10), 6: (600, 300, 700, 400), 7: (1, 1, 2, 2), 11: (5, 5, 1, 1)}}
    paths = _yc_files(tmp_path, {("yc1", 3, 5), ("yc1", 10, 11)}, boxes, database)
    ds = load_yc_inter(*paths)
    rec = ds.records[0]
    assert rec.frame_size == (640, 360) and rec.num_frames == 31
    assert [(s.query, s.start, s.end) for s in rec.segments] == [("crack the egg.", 3, 6), ("stir", 10, 12)]
    # key k → t = k − 1: keys 4 and 6 fall in [3, 6), key 7 (t=6) is outside every segment, key 11 → t=10.
    assert sorted(rec.boxes) == [3, 5, 10] and rec.labels[10] == "stir"
    counts = ds.report.counts
    assert (counts["boxes"], counts["outside_frame"], counts["outside_segments"], counts["zero_area"]) == (
        4,
        1,
        1,
        1,
    )
    assert load_yc_inter(*paths, clip_to_frame=True).records[0].boxes[5] == (600, 300, 639, 359)


def test_yc_inter_errors(tmp_path):
    paths = _yc_files(tmp_path, {("nope", 1, 2)}, {"nope": {1: (0, 0, 1, 1)}}, {})
    with pytest.raises(AnnotationError, match=r"video 'nope', segment \(1, 2\): unknown video"):
        load_yc_inter(*paths)
    assert load_yc_inter(*paths, lenient=True).records == []

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    paths[0].write_bytes(pickle.dumps(Evil()))
    with pytest.raises(AnnotationError, match=r"builtins\.print is not allowed"):
        load_yc_inter(*paths)


@needs_gyt
def test_gyt_release_defect_report():
    counts = load_gyt(GYT_FILE).report.counts
    assert (counts["videos"], counts["boxed_seconds"], counts["runs"]) == (250, 17316, 5205)
    assert counts["x2_eq_480_fraction"] == pytest.approx(0.296, abs=5e-4)
    assert counts["zero_area"] == 18 and counts["max_y2"] == 629 and counts["y2_over_480"] > 0


@needs_myt
def test_myt_release_counts():
    counts = load_myt(MYT_DIR).report.counts
    assert counts == {
        "videos": 250,
        "segments": 5132,
        "raw_labels": 690,
        "empty_segments_at_1fps": 47,
        "classes": 512,
    }


def test_myt_srt_without_segments_is_refused_or_skipped(tmp_path):
    folder = tmp_path / "annotations"
    folder.mkdir()
    (folder / "empty.srt").write_text("")
    (folder / "ok.srt").write_text("1\n00:00:01,000 --> 00:00:03,000\ncrack egg\n")
    with pytest.raises(AnnotationError, match=r"empty.srt: no segment covering a whole second"):
        load_myt(folder)
    lenient = load_myt(folder, lenient=True)
    assert [r.video_id for r in lenient.records] == ["ok"] and len(lenient.report.skipped) == 1


def test_gyt_copied_without_its_frame_size_warns(tmp_path, caplog):
    # Small boxes (a 64×48 synthetic split) read at GroundingYouTube's 640×480: the loader says so.
    path = _gyt(tmp_path, {"v": {"1": {"box": [2, 3, 40, 30], "step": "crack egg"}}})
    with caplog.at_level("WARNING", logger="stg_lightning.eval.datasets"):
        load_dataset("gyt", path)
    assert "41×31 pixels of the assumed 640×480 frame" in caplog.text and "--frame_size" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="stg_lightning.eval.datasets"):
        load_dataset("gyt", path, frame_size=(64, 48))
    assert "assumed" not in caplog.text
