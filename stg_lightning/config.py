"""One way to load a config, for every `stg` tool (synth, pretrain, prepare, eval, demo).

A tool's settings are one top-level dataclass (nested dataclasses are its sections); its defaults are the
only defaults, and YAML files only override them. The command line is the one `stg fit` has:

    stg synth --config configs/synth/paper.yaml --config mine.yaml --scene.frame_size=128 --out DIR
    stg synth --print_config        # the resolved config as YAML (a valid --config file)
    stg synth --help                # every key, with its type and default

`--config FILE` is repeatable and composed left to right, then `--section.key=value` overrides apply; an
unknown key or a value of the wrong type stops the tool with one line naming the key (and the file) and
listing the valid keys. Old dashed spellings of top-level flags (`--max-steps`) still work, a bare boolean
flag (`--lenient`) means true, `--no_lenient` false.

Why jsonargparse: it is what LightningCLI (`stg fit`) is built on, so every tool gets the same syntax
(config composition, dotted overrides, `--print_config`, OmegaConf interpolation in files); it reads the
dataclasses' type hints, so values are checked and converted (lists to tuples, YAML scalars to numbers)
without a hand-written merge; and it is already a dependency.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from types import UnionType
from typing import Any, NamedTuple, TypeVar, Union

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from stg_lightning.errors import StgUserError

T = TypeVar("T")
# Arguments of the parser itself, not config keys or tool flags.
_OWN = ("help", "config", "print_config", "preset")


class Parsed(NamedTuple):
    """What `parse` returns: the tool's dataclass, and its other flags (`--out`, `--ckpt`, ...) by name."""

    config: Any
    args: Namespace


def build_parser(
    cls: type,
    *,
    prog: str,
    description: str | None = None,
    presets: Mapping[str, Any] | None = None,
    extra: Callable[[ArgumentParser], None] | None = None,
) -> ArgumentParser:
    """The parser of `cls`: `--config`, `--print_config`, `--preset` (when given presets), one `--key` per
    field (dotted for nested dataclasses), then what `extra(parser)` adds (flags that are not config)."""
    parser = ArgumentParser(
        prog=prog,
        description=description,
        exit_on_error=False,
        parser_mode="omegaconf+",
        allow_abbrev=False,  # `--num_frame` is a typo, not `--num_frames`
    )
    parser.add_argument(
        "--config",
        action=ActionConfigFile,
        help="YAML file of config keys; repeatable, composed left to right (later files win)",
    )
    if presets:
        parser.add_argument(
            "--preset",
            choices=sorted(presets),
            default=argparse.SUPPRESS,
            help="start from this preset's values instead of the defaults (--config files and flags apply over it)",
        )
    parser.add_class_arguments(cls, as_group=False)
    if extra is not None:
        extra(parser)
    return parser


def parse(
    cls: type[T],
    argv: Sequence[str] | None = None,
    *,
    prog: str,
    description: str | None = None,
    presets: Mapping[str, T] | None = None,
    extra: Callable[[ArgumentParser], None] | None = None,
) -> Parsed:
    """`cls` from the dataclass defaults (or `--preset`'s values), `--config` files and `--key=value` flags.

    `--help` and `--print_config` print and exit (SystemExit 0); every config problem raises `StgUserError`
    with a one-line message.
    """
    parser = build_parser(cls, prog=prog, description=description, presets=presets, extra=extra)
    args = normalise_argv(parser, sys.argv[1:] if argv is None else argv, presets)
    try:
        namespace = parser.parse_args(args)
    except argparse.ArgumentError as err:
        raise StgUserError(describe_error(parser, err, args)) from None
    values = _instantiate(parser, namespace, "config")
    known = {f.name for f in dataclasses.fields(cls)}
    config = _construct(cls, {k: v for k, v in values.items() if k in known}, "config")
    args_ns = Namespace({k: v for k, v in values.items() if k not in known and k not in _OWN})
    return Parsed(config, args_ns)


def from_dict(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """`cls` from a (possibly partial, nested) mapping, checked like a config file: e.g. a section of
    configs/demo.yaml, or the config a generated benchmark's meta.json holds. Errors name `where`."""
    if not isinstance(values, Mapping):
        raise StgUserError(f"{where}: expected a mapping of {cls.__name__} keys, got {values!r}")
    parser = build_parser(cls, prog=where)
    try:
        namespace = parser.parse_object(dict(values))
    except argparse.ArgumentError as err:
        raise StgUserError(f"{where}: {explain_error(parser, str(err))}") from None
    return _construct(cls, _instantiate(parser, namespace, where), where)


def as_config(value: T | Mapping[str, Any] | None, cls: type[T]) -> T:
    """A config dataclass given as itself, as a mapping (checkpoint hparams, a callback's YAML section: checked
    by `from_dict`) or None (the defaults)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return from_dict(cls, value, cls.__name__)
    raise TypeError(f"expected {cls.__name__} or a mapping, got {type(value).__name__}")


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain nested dict (tuples as lists), as `--print_config` / JSON write it."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return to_dict(value) if dataclasses.is_dataclass(value) else value

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def to_argv(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    """A (nested) mapping of config keys as the flags a tool parses: `preset` → `--preset NAME`, `config`
    (a path or a list of paths) → `--config PATH` each, then `{a: {b: 1}}` → `--a.b=1` (values as JSON).
    Used to hand a section of a bigger config (configs/demo.yaml) to a tool's own loader."""
    head: list[str] = []
    flags: list[str] = []
    for key, value in values.items():
        if not prefix and key == "preset":
            head = ["--preset", str(value), *head]
        elif not prefix and key == "config":
            for path in [value] if isinstance(value, str) else list(value or []):
                head += ["--config", str(path)]
        elif isinstance(value, Mapping):
            flags += to_argv(value, f"{prefix}{key}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flags.append(f"--{prefix}{key}={text}")
    return head + flags


# ------------------------------------------------------------------------------------------ argv
def _options(parser: ArgumentParser) -> dict[str, argparse.Action]:
    return dict(parser._option_string_actions)


def _is_bool(action: argparse.Action) -> bool:
    hint = getattr(action, "_typehint", action.type)
    return hint is bool or str(hint) in ("bool | None", "typing.Optional[bool]")


def _tuple_size(hint: Any) -> int:
    """Length of a fixed-size tuple type (also inside `X | None`), else 0."""
    for option in typing.get_args(hint) if typing.get_origin(hint) in (Union, UnionType) else (hint,):
        args = typing.get_args(option)
        if typing.get_origin(option) is tuple and args and Ellipsis not in args:
            return len(args)
    return 0


def normalise_argv(
    parser: ArgumentParser, argv: Sequence[str], presets: Mapping[str, Any] | None = None
) -> list[str]:
    """Old spellings in the one syntax: `--max-steps` → `--max_steps`, a bare bool `--lenient` →
    `--lenient=true`, `--no-lenient` → `--lenient=false`, `--frame_size 640 480` → `--frame_size=[640,480]`;
    `--preset NAME` → its values as the first config (a preset is the base files and flags override)."""
    options = _options(parser)
    out: list[str] = []
    preset: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        token = items[i]
        i += 1
        if not token.startswith("--") or token == "--":
            out.append(token)
            continue
        name, eq, value = token[2:].partition("=")
        if f"--{name}" not in options and f"--{name.replace('-', '_')}" in options:
            name = name.replace("-", "_")
        negated = name.replace("-", "_").removeprefix("no_")
        if (
            name.replace("-", "_").startswith("no_")
            and f"--{name}" not in options
            and f"--{negated}" in options
            and _is_bool(options[f"--{negated}"])
            and not eq
        ):
            out.append(f"--{negated}=false")
            continue
        if name == "preset" and presets:
            value = value if eq else (items[i] if i < len(items) else "")
            i += 0 if eq else 1
            if value not in presets:
                raise StgUserError(f"--preset {value!r}: choose one of {', '.join(sorted(presets))}")
            preset = ["--config", json.dumps(to_dict(presets[value]))]
            continue
        action = options.get(f"--{name}")
        bare = not eq and (i >= len(items) or items[i].startswith("--"))
        if action is not None and _is_bool(action) and bare:
            out.append(f"--{name}=true")
            continue
        size = _tuple_size(getattr(action, "_typehint", None))
        spread = items[i : i + size] if size and not eq else []
        if len(spread) == size > 1 and not any(t.startswith(("--", "[")) for t in spread):
            out.append(f"--{name}=[{','.join(spread)}]")  # `--frame_size 640 480` (argparse nargs style)
            i += size
            continue
        out.append(f"--{name}{eq}{value}")
    return preset + out


# ------------------------------------------------------------------------------------------ errors
def _keys(parser: ArgumentParser, group: str) -> list[str]:
    """Valid keys directly under `group` ("" = top level): fields, sections and tool flags."""
    prefix = f"{group}." if group else ""
    names = set()
    for action in parser._actions:
        dest = action.dest
        if dest in _OWN or dest.startswith("print_") or not dest.startswith(prefix):
            continue
        names.add(dest[len(prefix) :].split(".")[0])
    return sorted(names)


def unknown_key(key: str, valid: Sequence[str], where: str = "") -> str:
    """`unknown key 'a.b' (did you mean 'c'?); valid keys of WHERE: ...` (the closest valid key as a hint)."""
    close = difflib.get_close_matches(key.rpartition(".")[2], valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; valid keys{f' of {where}' if where else ''}: {', '.join(valid)}"


def _unknown(parser: ArgumentParser, key: str) -> str:
    group = key.rpartition(".")[0]
    valid = _keys(parser, group)
    if group and not valid:  # the section itself is unknown
        return _unknown(parser, group)
    return unknown_key(key, valid, group)


def _type_name(hint: Any) -> str:
    text = hint.__name__ if isinstance(hint, type) else str(hint)
    return text.replace("typing.", "").replace("NoneType", "None")


def explain_error(parser: ArgumentParser, message: str) -> str:
    """jsonargparse's (multi-line) message → one line naming the key."""
    text = message.strip()
    if m := re.search(r"Group '([^']+)' does not accept option '([^']+)'", text):
        return _unknown(parser, f"{m[1]}.{m[2]}")
    if m := re.search(r"Option '([^']+)' is not accepted", text):
        return _unknown(parser, m[1])
    if m := re.search(r"unrecognized arguments: (.*)", text, re.S):
        first = m[1].split()[0]
        if not first.startswith("-") and "=" in first:  # the old positional KEY=VALUE override
            key = first.split("=")[0]
            if f"--{key}" in _options(parser):
                return f"{first!r}: write it as --{first} (as for `stg fit`)"
            return f"{first!r}: overrides are --KEY=VALUE flags now; " + _unknown(parser, key)
        if not first.startswith("-"):
            return f"unexpected argument {first!r} (config keys are --key=value flags)"
        return _unknown(parser, first.lstrip("-").split("=")[0])
    if m := re.search(r'Parser key "([^"]+)":\s*(.*)', text, re.S):
        key, detail = m[1], m[2]
        if key == "config":
            if f := re.search(r"File does not exist: '?([^'\n]+)'?", detail):
                return f"--config {f[1]}: file not found"
            return f"--config: {' '.join(detail.split())}"
        action = _options(parser).get(f"--{key}")
        hint = getattr(action, "_typehint", None)
        given = re.findall(r"(?:Given|Got) value: (.*)", detail)
        choices = re.search(r"Expected a (typing\.Literal\[[^\]]*\])", detail)
        expected = _type_name(hint) if hint is not None else (choices[1] if choices else "another type")
        value = f", got {given[-1].strip()!r}" if given else ""
        return f"key {key!r}: expected {expected}{value}"
    if m := re.search(r"Unexpected config: (.*)", text, re.S):
        return f"expected a mapping of config keys, got {' '.join(m[1].split())!r}"
    if m := re.search(r"argument (--\S+): expected one argument", text):
        return f"{m[1]} needs a value ({m[1]}=VALUE)"
    return " ".join(text.split())


def _config_files(argv: Sequence[str]) -> list[str]:
    files = []
    for i, token in enumerate(argv):
        if token == "--config" and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif token.startswith("--config="):
            files.append(token.partition("=")[2])
    return files


def describe_error(parser: ArgumentParser, err: Exception, argv: Sequence[str]) -> str:
    """One line: where (the config file that fails on its own, else the command line) and what."""
    what = explain_error(parser, str(err))
    if what.startswith("--config") and what.endswith("file not found"):
        return what
    for path in _config_files(argv):
        try:
            parser.parse_args(["--config", path])
        except argparse.ArgumentError as file_err:
            source = "--preset" if path.lstrip().startswith("{") else path
            return f"{source}: {explain_error(parser, str(file_err))}"
    return f"command line: {what}"


# ------------------------------------------------------------------------------------------ build
def _instantiate(parser: ArgumentParser, namespace: Namespace, where: str) -> dict[str, Any]:
    """The nested dataclasses built (their own checks run here), as a plain top-level dict."""
    for action in parser._actions:  # a section given as a scalar (`scene: 3`) is not a mapping of its keys
        section = namespace.get(action.dest) if type(action).__name__ == "_ActionConfigLoad" else None
        if action.dest not in _OWN and section is not None and not isinstance(section, Namespace):
            raise StgUserError(
                f"{where}: key {action.dest!r}: expected a mapping of its keys, got {section!r}"
            )
    try:
        values = parser.instantiate(namespace)
    except (StgUserError, ValueError, TypeError) as err:
        raise StgUserError(f"{where}: {err}") from None
    return dict(vars(values))


def _construct(cls: type[T], values: dict[str, Any], where: str) -> T:
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    try:
        return cls(**{k: v for k, v in values.items() if k in names})
    except StgUserError:
        raise
    except (ValueError, TypeError) as err:
        raise StgUserError(f"{where}: {err}") from None
