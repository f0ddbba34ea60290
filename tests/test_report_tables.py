import json

import pytest

from stg_lightning.errors import StgUserError
from stg_lightning.report.tables import load_results, main, read_results, render_table

GYT_METRICS = {
    "videos": 3.0,
    "iou_pointing": 0.25,
    "pointing": 0.6,
    "spatial_map": 0.1,
    **{f"video_map@{t}": v for t, v in zip((0.1, 0.2, 0.3, 0.4, 0.5), (0.5, 0.4, 0.3, 0.2, 0.1))},
    "video_map": 0.3,
}


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def files(tmp_path):
    return [
        # `stg eval --out` layout reports/<run>/<dataset>.json: the run is the folder.
        _write(
            tmp_path / "ours" / "gyt.json", {"dataset": "gyt", "mode": "untrimmed", "metrics": GYT_METRICS}
        ),
        _write(
            tmp_path / "ours_yc.json", {"name": "ours", "dataset": "yc_inter", "metrics": {"pointing": 0.555}}
        ),
        # A bare metrics dict: name = stem, dataset gyt from its keys.
        _write(tmp_path / "clip_zeroshot.json", {"pointing": 0.2, "iou_pointing": 0.05, "video_map": 0.01}),
        _write(
            tmp_path / "ours_myt.json",
            {
                "name": "ours",
                "dataset": "myt",
                "metrics": {"temporal_iou": 0.1234, "temporal_iod": 0.2, "temporal_mof": 0.3},
                "baselines": {
                    "text_blind": {"temporal_iou": 0.05, "temporal_iod": 0.06, "temporal_mof": 0.07}
                },
            },
        ),
        _write(
            tmp_path / "other_myt.json",
            {
                "dataset": "myt",
                "metrics": {"temporal_iou": 0.01},
                "baselines": {"text_blind": {"temporal_iou": 0.99}},  # a later copy: the first one wins
            },
        ),
        _write(
            tmp_path / "ours_clips.json",
            {"name": "ours", "dataset": "gyt", "mode": "clip", "metrics": GYT_METRICS},
        ),
    ]


def test_table2_gyt_untrimmed(files):
    runs, baselines = load_results(files)
    assert render_table(runs, 2, baselines) == "\n".join(
        [
            "**Table 2.** GroundingYouTube, untrimmed spatio-temporal grounding (%).",
            "",
            "| Method | IoU+Pointing | mAP@0.1 | mAP@0.2 | mAP@0.3 | mAP@0.4 | mAP@0.5 | mAP mean |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            "| ours | 25.00 | 50.00 | 40.00 | 30.00 | 20.00 | 10.00 | 30.00 |",
            "| clip_zeroshot | 5.00 | — | — | — | — | — | 1.00 |",
        ]
    )


def test_table3_pointing_joins_datasets_of_a_run(files):
    runs, _ = load_results(files)
    lines = render_table(runs, 3).splitlines()
    assert lines[2] == "| Method | YC-Inter | GYT | V-HICO | Daly |"
    assert lines[4:] == ["| ours | 55.50 | 60.00 | — | — |", "| clip_zeroshot | — | 20.00 | — | — |"]


def test_table4_myt_with_baseline_row_once(files):
    runs, baselines = load_results(files)
    lines = render_table(runs, 4, baselines).splitlines()
    assert lines[2] == "| Method | IoU | IoD | MoF |"
    assert lines[4:] == [
        "| ours | 12.34 | 20.00 | 30.00 |",
        "| other_myt | 1.00 | — | — |",
        "| text_blind | 5.00 | 6.00 | 7.00 |",
    ]


def test_table7_reads_clip_mode_only(files):
    runs, _ = load_results(files)
    assert render_table(runs, 7).splitlines()[4:] == [
        "| ours | 25.00 | 50.00 | 40.00 | 30.00 | 20.00 | 10.00 | 30.00 |"
    ]


def test_bad_inputs_fail_naming_file_and_fix(tmp_path):
    ambiguous = _write(tmp_path / "x.json", {"pointing": 0.5})
    with pytest.raises(StgUserError, match=r"x\.json.*wrap it"):
        read_results(ambiguous)
    a = _write(tmp_path / "a.json", {"name": "run", "dataset": "myt", "metrics": {"temporal_iou": 0.1}})
    b = _write(tmp_path / "b.json", {"name": "run", "dataset": "myt", "metrics": {"temporal_iou": 0.2}})
    with pytest.raises(StgUserError, match=r"b\.json.*'run'.*a\.json"):
        load_results([a, b])
    text = _write(tmp_path / "t.json", {"dataset": "myt", "metrics": {"temporal_iou": "high"}})
    with pytest.raises(StgUserError, match=r"t\.json.*'temporal_iou'"):
        render_table(load_results([text])[0], 4)
    with pytest.raises(StgUserError, match="Table 5"):
        render_table([], 5)


def test_cli_prints_and_writes(files, tmp_path, capsys):
    out = tmp_path / "report" / "tables.md"
    assert main([*files, "--table", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("**Table 3.**") and "Table 2" not in printed
    assert out.read_text() == printed
    assert main([*files]) == 0  # every table
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("**")] == [
        f"**Table {n}.**" + rest
        for n, rest in (
            (2, " GroundingYouTube, untrimmed spatio-temporal grounding (%)."),
            (3, " Spatial grounding, pointing game accuracy (%)."),
            (4, " MiningYouTube, temporal grounding (%)."),
            (7, " GroundingYouTube, single-action clips (spatio-temporal) (%)."),
        )
    ]
    assert main([files[1], "--table", "4"]) == 2  # YC-Inter pointing has no Table 4 column
    assert "no result file" in capsys.readouterr().err


def test_table12_lays_out_a_tau_sweep(tmp_path):
    sweep = {"video_map|tau=0.001": 0.2, "video_map|tau=0.01": 0.3, "video_map|tau=0.1": 0.125}
    path = _write(tmp_path / "ours" / "gyt.json", {"dataset": "gyt", "metrics": GYT_METRICS | sweep})
    runs, _ = load_results([path])
    lines = render_table(runs, 12).splitlines()
    assert lines[2] == "| Method | τ=0.001 | τ=0.005 | τ=0.01 | τ=0.05 | τ=0.1 |"
    assert lines[4] == "| ours | 20.00 | — | 30.00 | — | 12.50 |"


def test_the_demo_and_reproduce_metrics_files_are_read(tmp_path):
    demo = {
        "gyt": {"full": GYT_METRICS, "random_object": {"pointing": 0.33}},
        "myt": {"full": {"temporal_iou": 0.2, "temporal_iod": 0.3, "temporal_mof": 0.4}},
        "labels": {"full": "full model", "random_object": "random object"},
    }
    runs, baselines = load_results([_write(tmp_path / "demo" / "metrics.json", demo)])
    assert render_table(runs, 4, baselines).splitlines()[4:] == ["| full model | 20.00 | 30.00 | 40.00 |"]
    assert render_table(runs, 3, baselines).splitlines()[4:] == [
        "| full model | — | 60.00 | — | — |",
        "| random object | — | 33.00 | — | — |",
    ]
    # make reproduce: each cell {mean, std, values} → its mean
    reproduce = {"myt": {"full": {"temporal_iou": {"mean": 0.25, "std": 0.05, "values": [0.2, 0.3]}}},
                 "seeds": [0, 1], "labels": {"full": "full model"}}  # fmt: skip
    runs, _ = load_results([_write(tmp_path / "reproduce" / "metrics.json", reproduce)])
    assert render_table(runs, 4).splitlines()[4:] == ["| full model | 25.00 | — | — |"]
