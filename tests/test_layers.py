"""The package's layering (docs/architecture.md): no module imports from a layer above its own, and no two
modules import each other, directly or around a circle (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stg_lightning"
# Lowest first; units in one layer may import each other's modules.
LAYERS = [
    {
        "errors",
        "jsonfile",
        "tokens",
        "distributed",
        "evaluating",
        "config",
        "progress",
        "runs",
        "checkpoint_io",
    },
    {"backbones", "synth"},
    {"data", "selection"},
    {"model"},
    {"losses", "optim"},
    {"lit_module", "prediction_writer", "loggers", "sigterm", "log_progress"},
    {"eval", "pretrain"},
    {"report", "ground"},
    {"demo_eval", "sweep"},
    {"demo", "reproduce", "cli", "training_cli", "__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = ("stg_lightning", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every stg_lightning module `path` imports, wherever the import statement sits."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stg_lightning"):
            if node.module == "stg_lightning":
                found.update(f"stg_lightning.{a.name}" for a in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("stg_lightning."))
    return found


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_unit_has_a_layer():
    assert {unit(m) for m in GRAPH} - {"__init__"} <= set(LAYER)


def test_no_module_imports_from_a_layer_above_it():
    upward = [
        f"{m} (layer {LAYER[unit(m)]}) imports {t} (layer {LAYER[unit(t)]})"
        for m, targets in GRAPH.items()
        if unit(m) in LAYER
        for t in targets
        if unit(t) in LAYER and LAYER[unit(t)] > LAYER[unit(m)]
    ]
    assert upward == []


def _resolve(target: str) -> str:
    """An imported name → the module that holds it (`from pkg import mod` names a module too)."""
    while target not in GRAPH and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def test_no_import_circles_between_modules():
    edges = {m: {_resolve(t) for t in ts} - {m} for m, ts in GRAPH.items()}
    # A package's __init__ re-exports its modules: only edges between modules count as circles.
    packages = {m for m in GRAPH if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").is_file()}
    edges = {m: {t for t in ts if t not in packages} for m, ts in edges.items() if m not in packages}
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(" → ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_checker_sees_an_upward_import(tmp_path):
    """Known answer for the parser: a function-level import is found like a top-level one."""
    source = tmp_path / "m.py"
    source.write_text(
        "def f():\n    from stg_lightning.cli import main\n\nimport stg_lightning.model.rollout\n"
    )
    assert imports(source) == {"stg_lightning.cli", "stg_lightning.model.rollout"}
