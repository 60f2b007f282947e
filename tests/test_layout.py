"""The package layout's rules: imports point one way, and importing starts no work."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO

# What each package may import (besides itself); only the CLI imports bot.
ALLOWED = {
    "data": set(),
    "model": {"data"},
    "training": {"model", "data"},
    "bot": {"model", "data"},
    "cli": {"bot", "model", "training", "data"},
}


def imports(package: str) -> set[str]:
    found = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package):
    assert imports(package) - {package} <= ALLOWED[package]


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
