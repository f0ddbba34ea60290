"""`stg_lightning.config`: the one loader of every tool (stg synth/pretrain/prepare/eval/demo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from stg_lightning.config import as_config, from_dict, parse, to_argv, to_dict
from stg_lightning.errors import StgUserError


@dataclass
class Inner:
    size: tuple[int, int] = (4, 4)
    rate: float = 0.5


@dataclass
class Tool:
    seed: int = 0
    max_steps: int = 10
    name: str | None = None
    verbose: bool = False
    inner: Inner = field(default_factory=lambda: Inner(rate=0.25))  # a factory's values are the defaults

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError("max_steps must be >= 1")


def _flags(parser) -> None:
    parser.add_argument("--out", type=str | None, default=None)


def load(argv: list[str]):
    return parse(Tool, argv, prog="stg tool", presets={"big": Tool(max_steps=99)}, extra=_flags)


def test_defaults_files_left_to_right_then_flags(tmp_path: Path) -> None:
    cfg, args = load([])
    assert cfg == Tool() and cfg.inner.rate == 0.25 and args.out is None
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("seed: 1\nmax_steps: 5\ninner:\n  size: [8, 8]\n")
    b.write_text("seed: 2\n")
    cfg, args = load(["--config", str(a), "--config", str(b), "--inner.rate=0.75", "--out", "x"])
    assert cfg == Tool(seed=2, max_steps=5, inner=Inner(size=(8, 8), rate=0.75)) and args.out == "x"
    cfg, _ = load(["--seed=4", "--preset", "big"])  # the preset is the base, wherever it stands
    assert (cfg.seed, cfg.max_steps) == (4, 99)


def test_old_spellings_still_work() -> None:
    cfg, _ = load(["--max-steps", "3", "--verbose", "--inner.size", "2", "6"])
    assert (cfg.max_steps, cfg.verbose, cfg.inner.size) == (3, True, (2, 6))
    assert not load(["--verbose=true", "--no-verbose"]).config.verbose


def test_errors_are_one_line_naming_the_key_and_file(tmp_path: Path) -> None:
    with pytest.raises(
        StgUserError,
        match=r"^command line: unknown key 'inner.rat' \(did you mean 'rate'\?\); valid keys of inner: rate, size$",
    ):
        load(["--inner.rat=1"])
    with pytest.raises(
        StgUserError,
        match=r"^command line: unknown key 'sed'.*; valid keys: inner, max_steps, name, out, seed, verbose$",
    ):
        load(["--sed=1"])
    with pytest.raises(
        StgUserError, match=r"^command line: key 'inner.size': expected tuple\[int, int\], got"
    ):
        load(["--inner.size=[1]"])
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("seed: 1\n")
    bad.write_text("seed: one\n")
    with pytest.raises(StgUserError, match=r"bad.yaml: key 'seed': expected int, got 'one'$") as err:
        load(["--config", str(good), "--config", str(bad)])
    assert "\n" not in str(err.value)
    with pytest.raises(StgUserError, match=r"--config .*missing.yaml: file not found"):
        load(["--config", str(tmp_path / "missing.yaml")])
    with pytest.raises(StgUserError, match="max_steps must be >= 1"):
        load(["--max_steps=0"])
    with pytest.raises(StgUserError, match=r"write it as --seed=1"):
        load(["seed=1"])
    with pytest.raises(StgUserError, match="choose one of big"):
        load(["--preset", "small"])


def test_help_lists_every_key_and_print_config_reloads(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        load(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--config", "--preset", "--print_config", "--seed", "--max_steps", "--inner.size", "--out"):
        assert flag in text
    with pytest.raises(SystemExit):
        load(["--preset", "big", "--inner.rate=0.125", "--print_config"])
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed)["inner"] == {"size": [4, 4], "rate": 0.125}
    (tmp_path / "printed.yaml").write_text(printed)
    assert load(["--config", str(tmp_path / "printed.yaml")]).config == Tool(
        max_steps=99, inner=Inner(rate=0.125)
    )


def test_from_dict_to_dict_and_to_argv() -> None:
    assert from_dict(Tool, {"inner": {"size": [2, 2]}}, "meta.json") == Tool(
        inner=Inner(size=(2, 2), rate=0.25)
    )
    with pytest.raises(StgUserError, match=r"^meta.json: unknown key 'inner.sise'"):
        from_dict(Tool, {"inner": {"sise": [2, 2]}}, "meta.json")
    with pytest.raises(StgUserError, match=r"^section: expected a mapping"):
        from_dict(Tool, [1, 2], "section")  # type: ignore[arg-type]
    assert to_dict(Tool()) == {
        "seed": 0, "max_steps": 10, "name": None, "verbose": False, "inner": {"size": [4, 4], "rate": 0.25}
    }  # fmt: skip
    argv = to_argv(
        {"seed": 3, "config": ["a.yaml", "b.yaml"], "preset": "big", "inner": {"size": [1, 2]}, "name": None}
    )
    assert argv == [
        "--preset",
        "big",
        "--config",
        "a.yaml",
        "--config",
        "b.yaml",
        "--seed=3",
        "--inner.size=[1, 2]",
        "--name=null",
    ]
    assert parse(
        Tool,
        [a for a in argv if "yaml" not in a and a != "--config"],
        prog="t",
        presets={"big": Tool(max_steps=99)},
    ).config == Tool(seed=3, max_steps=99, inner=Inner(size=(1, 2), rate=0.25))


def test_as_config_takes_instances_mappings_and_none():
    from stg_lightning.losses import LossConfig

    given = LossConfig(margin=0.2)
    assert as_config(given, LossConfig) is given
    assert as_config(None, LossConfig) == LossConfig()
    assert as_config({"margin": 0.2, "temperature": 0.1}, LossConfig) == LossConfig(
        margin=0.2, temperature=0.1
    )
    with pytest.raises(StgUserError, match=r"LossConfig.*marign"):
        as_config({"marign": 0.2}, LossConfig)
    with pytest.raises(TypeError, match="LossConfig"):
        as_config(["margin"], LossConfig)
