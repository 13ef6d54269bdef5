"""The package's layer order (DESIGN.md): imports only go up the table, no cycles, and the pure
modules and light commands load no heavy library."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "lts_cli"

# The layers of DESIGN.md, pure to heavy to CLI: a module may import its own layer and the ones above.
LAYERS = {
    0: {"errors", "views", "space", "pareto", "config", "settings", "objectives", "search", "search_state", "screening",
        "search_config", "whole_space", "train_budget", "results_csv", "machine", "rankstats"},
    1: {"workspace", "folders", "store", "gallery"},
    2: {"gpt2_onnx", "measuring", "runtime", "modeling", "pretrained", "corpus", "hub", "weights", "tokenizer",
        "references", "sampling", "plots", "processes"},
    3: {"measurer", "profiling", "exporting", "checkpoints", "train_plan", "train_eval", "train_progress", "training",
        "generation", "predictor", "distributed"},
    4: {"runs", "searching", "inventory", "tidying", "proxy", "proxy_study"},
    5: {"cli", "__main__", "__init__"},
}  # fmt: skip
PURE = sorted(LAYERS[0] | LAYERS[1])
HEAVY = ("torch", "transformers", "onnx", "onnxruntime")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return "cli" if parts[0] == "cli" else parts[0]


def _target(dotted: str) -> str | None:
    """The module of lts_cli that `dotted` (lts_cli.x, lts_cli.x.y, lts_cli.cli.z) lives in, if any."""
    parts = dotted.split(".")
    if parts[0] != "lts_cli" or len(parts) < 2:
        return None
    if parts[1] == "cli":
        return "cli"
    return parts[1] if (PACKAGE / f"{parts[1]}.py").exists() else None


def imports() -> dict[str, set[str]]:
    """module -> the lts_cli modules it imports anywhere (inside functions too)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module(path)
        found = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                dotted = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                dotted = [a.name for a in node.names]
            else:
                continue
            found.update(t for t in map(_target, dotted) if t is not None)
        found.discard(name)
    return graph


def test_every_module_has_a_layer() -> None:
    placed = set().union(*LAYERS.values())
    assert set(imports()) <= placed, set(imports()) - placed


def test_imports_only_go_up_the_layers() -> None:
    layer = {m: n for n, modules in LAYERS.items() for m in modules}
    wrong = [
        f"{m} (layer {layer[m]}) imports {t} (layer {layer[t]})"
        for m, targets in imports().items()
        for t in targets
        if layer[t] > layer[m]
    ]
    assert not wrong, wrong


def test_no_import_cycles() -> None:
    graph = imports()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target] if target in path else [node, target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def _loaded_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LTS_HOME": os.environ.get("LTS_HOME", "/tmp/lts-test-home")},
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_load_no_heavy_library(module: str) -> None:
    loaded = _loaded_after(f"import lts_cli.{module}")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_gallery_list_loads_no_onnxruntime_or_torch(lts_home: Path) -> None:
    loaded = _loaded_after(
        "import sys; sys.argv = ['lts', 'gallery', 'list', '--json']\n"
        "from lts_cli.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    assert "lts_cli.gallery" in loaded and not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


# ---- the CLI: each file on its own (DESIGN.md: a command parses, makes one library call, renders) ----

CLI = PACKAGE / "cli"
CLI_LIMITS = {"library_modules": 6, "function_lines": 60, "total_lines": 1300}


def _cli_imports(path: Path) -> tuple[set[str], set[str]]:
    """The library modules and the cli modules one cli file imports (anywhere in it)."""
    library, cli = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lts_cli"):
            names = [node.module] if node.module != "lts_cli" else [f"lts_cli.{a.name}" for a in node.names]
            for dotted in names:
                parts = dotted.split(".")
                if parts[1] == "cli":
                    cli.add(".".join(parts[2:3]) or "cli")
                elif parts[1] not in ("__version__", "errors"):  # the one error type is everyone's
                    library.add(parts[1])
    return library, cli


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_each_cli_file_is_thin(path: Path) -> None:
    library, cli = _cli_imports(path)
    assert len(library) <= CLI_LIMITS["library_modules"], sorted(library)
    if path.name != "__init__.py":  # which registers every command group
        assert cli <= {"cli", "common", "complete"}, sorted(cli)
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > CLI_LIMITS["function_lines"]
    ]
    assert not long, long


def test_the_cli_is_a_small_share_of_the_package() -> None:
    lines = sum(len(p.read_text().splitlines()) for p in CLI.glob("*.py"))
    assert lines <= CLI_LIMITS["total_lines"], lines


def test_no_library_module_imports_the_cli() -> None:
    wrong = [m for m, targets in imports().items() if m != "cli" and "cli" in targets and m not in LAYERS[5]]
    assert not wrong, wrong
