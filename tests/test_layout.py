"""The package layout's rules: imports point one way, and importing starts no work."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# What each package may import (besides itself); only the CLI imports bot. The benchmarks are scripts
# beside the packages and may drive any stage, but the bot only through cli.
ALLOWED = {
    "data": set(),
    "model": {"data"},
    "training": {"model", "data"},
    "bot": {"model", "data"},
    "cli": {"bot", "model", "training", "data"},
    "bench": {"cli", "model", "training", "data"},
}
# The exceptions, by name: the bot's own benchmarks measure the bot's internals (its queue, cache and
# worker under a burst; its server models from upload to answer), as tests/bot do, so they import bot
# directly. No other script may.
BENCH_EXTRA = {"bench/serve.py": {"bot"}, "bench/server_models.py": {"bot"}}


def file_imports(path: Path) -> set[str]:
    """The project packages a file imports anywhere in it (function bodies and TYPE_CHECKING too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


def imports(package: str) -> set[str]:
    return set().union(*(file_imports(path) for path in (REPO / package).rglob("*.py")))


@pytest.mark.parametrize("package", sorted(set(ALLOWED) - {"bench"}))
def test_imports_point_one_way(package):
    assert imports(package) - {package} <= ALLOWED[package]


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "bench").glob("*.py"))
)
def test_benchmarks_import_the_bot_only_through_cli(path):
    assert file_imports(REPO / path) - {"bench"} <= ALLOWED["bench"] | BENCH_EXTRA.get(path, set())


def module_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of ``package`` under ``root`` -> the package's modules it imports, wherever the import
    sits (TYPE_CHECKING blocks and function bodies hide a cycle from Python, not from the design)."""
    paths = {_module(root, p): p for p in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(name, node, path.name == "__init__.py")
                # `from bot import commands` imports the module bot.commands.
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names}
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def _module(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(importer: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    base = parts[: len(parts) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of imports as [a, b, ..., a], or None when the graph has none."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_cycle_finder_sees_hidden_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "app.py").write_text("from pkg import views\nfrom pkg.store import Store\n")
    (pkg / "store.py").write_text("import json\n")
    (pkg / "views.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .app import App\n"
    )
    graph = module_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.app": {"pkg.views", "pkg.store"},
        "pkg.store": set(),
        "pkg.views": {"pkg.app"},
    }
    assert find_cycle(graph) == ["pkg.app", "pkg.views", "pkg.app"]
    (pkg / "views.py").write_text("def late():\n    from pkg.store import Store\n")
    assert find_cycle(module_graph(tmp_path, "pkg")) is None


def test_bot_has_no_import_cycle():
    assert find_cycle(module_graph(REPO, "bot")) is None


@pytest.mark.parametrize(
    "module",
    [
        "data",
        "model",
        "training",
        "bot",
        "cli.main",
        "data.format",
        "bot.app",
        "training.loop",
        "model.generator",
    ],
)
def test_importing_starts_no_work(module):
    code = f"import threading, {module}; assert threading.active_count() == 1, threading.enumerate()"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)
