"""The package layout's rules: imports point one way, and importing starts no work."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# Where each stage lives in the repository (installed, each is ``linernotes.<stage>``).
FOLDERS = {
    "common": "linernotes/common",
    "data": "data",
    "model": "model",
    "training": "training",
    "bot": "bot",
    "cli": "linernotes/cli",
}
# What each stage may import (besides itself and ``common``); only the CLI imports bot. The benchmarks are
# scripts beside the packages and may drive any stage, but the bot only through cli.
ALLOWED = {
    "common": set(),
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
# bench/web.py prepares the database its server (the real `linernotes web`, in another process) serves with
# the bot's own storage, and reads the showings back from it. bench/cluster.py runs the bot in two processes
# on one PostgreSQL store and checks deliveries, votes and warm-up runs from that store afterwards.
BENCH_EXTRA = {
    "bench/serve.py": {"bot"},
    "bench/server_models.py": {"bot"},
    "bench/web.py": {"bot"},
    "bench/cluster.py": {"bot"},
}
# The names the stages had before they moved under ``linernotes``: importing one by its bare name would load
# a second copy of the module from a source checkout (and fail once installed).
BARE = {"data", "model", "training", "bot", "cli"}


def _imported_modules(path: Path) -> set[str]:
    """Every absolute module name a file imports anywhere in it (function bodies and TYPE_CHECKING too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def file_imports(path: Path) -> set[str]:
    """The project stages a file imports: ``linernotes.model.x`` counts as ``model``."""
    stages = set()
    for module in _imported_modules(path):
        parts = module.split(".")
        if parts[0] == "linernotes" and len(parts) > 1:
            stages.add(parts[1])
    return stages & set(ALLOWED)


def imports(stage: str) -> set[str]:
    return set().union(*(file_imports(path) for path in (REPO / FOLDERS[stage]).rglob("*.py")))


@pytest.mark.parametrize("stage", sorted(FOLDERS))
def test_imports_point_one_way(stage):
    assert imports(stage) - {stage, "common"} <= ALLOWED[stage]


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "bench").glob("*.py"))
)
def test_benchmarks_import_the_bot_only_through_cli(path):
    assert file_imports(REPO / path) - {"common"} <= ALLOWED["bench"] | BENCH_EXTRA.get(path, set())


def _tracked(pattern: str = "*") -> list[str]:
    """The checkout's files git tracks (and untracked ones it does not ignore), matching ``pattern``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", pattern],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.splitlines() if (REPO / name).is_file()]


def _python_files() -> list[Path]:
    return [REPO / name for name in _tracked("*.py")]


def test_nothing_imports_a_stage_by_its_bare_name():
    bare = {
        f"{path.relative_to(REPO)}: {module}"
        for path in _python_files()
        for module in _imported_modules(path)
        if module.split(".")[0] in BARE
    }
    assert not bare


def test_every_package_folder_is_installed():
    """A package folder missing from pyproject's list would be left out of the wheel."""
    import tomllib

    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    folders = {f"linernotes.{stage}": REPO / folder for stage, folder in FOLDERS.items()}
    found = {"linernotes"}
    for name, folder in folders.items():
        found |= {
            ".".join([name, *init.parent.relative_to(folder).parts]) for init in folder.rglob("__init__.py")
        }
    assert listed == found
    mapped = {name: folder for name, folder in setup["package-dir"].items()}
    assert mapped == {f"linernotes.{s}": f for s, f in FOLDERS.items() if not f.startswith("linernotes/")}


def test_the_wheel_holds_one_namespace_and_installs_beside_a_package_named_data(tmp_path):
    """Built from the source tree and installed into a clean venv, it claims only ``linernotes``; another
    project's top-level ``data`` package still imports beside it."""
    # Built from a copy of the tracked files, so the build leaves nothing in the checkout (and sees only
    # what a fresh clone has).
    source = tmp_path / "source"
    for name in _tracked():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(wheels),
    ]
    subprocess.run([*build, str(source)], check=True, cwd=tmp_path, timeout=300)
    (wheel,) = wheels.glob("linernotes-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"linernotes"}
    assert "linernotes/data/upload_sample/harbor_lights.txt" in names  # package data comes along
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "data").mkdir()
    (Path(site) / "data" / "__init__.py").write_text("OTHER = 'another project'\n")
    check = (
        "import data, linernotes.common.errors, linernotes.data.format as f; "
        "assert data.OTHER == 'another project'; "
        f"assert f.__file__.startswith({site!r})"
    )
    subprocess.run([python, "-I", "-c", check], check=True, cwd=tmp_path, timeout=120)


def module_graph(folder: Path, package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (whose source is ``folder``) -> the package's modules it imports, wherever
    the import sits (TYPE_CHECKING blocks and function bodies hide a cycle from Python, not from the design)."""
    paths = {_module(folder, package, p): p for p in folder.rglob("*.py")}
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


def _module(folder: Path, package: str, path: Path) -> str:
    parts = (*package.split("."), *path.relative_to(folder).with_suffix("").parts)
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
    graph = module_graph(tmp_path / "pkg", "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.app": {"pkg.views", "pkg.store"},
        "pkg.store": set(),
        "pkg.views": {"pkg.app"},
    }
    assert find_cycle(graph) == ["pkg.app", "pkg.views", "pkg.app"]
    (pkg / "views.py").write_text("def late():\n    from pkg.store import Store\n")
    assert find_cycle(module_graph(tmp_path / "pkg", "pkg")) is None


@pytest.mark.parametrize("stage", sorted(FOLDERS))
def test_no_stage_has_an_import_cycle(stage):
    """Not even one hidden inside functions (model/bases.py and model/checkpoint.py once had one)."""
    assert find_cycle(module_graph(REPO / FOLDERS[stage], f"linernotes.{stage}")) is None


# The one serving seam: the worker holds the generator, and everything else (commands, admin, warm-up, server
# models, the CLI, the benchmarks) serves through its interface: submit, swap, attach, detach, card.
SEAM = "model/worker.py"
BEHIND_THE_SEAM = {"generator", "_generator", "_submit_call"}


def reaches_behind_the_seam(path: Path) -> set[str]:
    """The attributes a file reads or sets that only the worker may touch (``x.generator`` and the like)."""
    tree = ast.parse(path.read_text())
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)} & BEHIND_THE_SEAM


def test_the_seam_check_sees_reads_and_writes(tmp_path):
    code = tmp_path / "x.py"
    code.write_text("card = bot.worker.generator.card\n")
    assert reaches_behind_the_seam(code) == {"generator"}
    code.write_text("worker._generator = other\nawait worker._submit_call(f)\n")
    assert reaches_behind_the_seam(code) == {"_generator", "_submit_call"}
    code.write_text("card = bot.worker.card\ngenerator = Generator.load(path)\ngen.attach(name, path)\n")
    assert reaches_behind_the_seam(code) == set()


@pytest.mark.parametrize("folder", sorted({*FOLDERS.values(), "bench"}))
def test_only_the_worker_reaches_the_generator(folder):
    """Nothing outside model/worker.py reaches its generator: the bot serves through the worker's methods."""
    found = {
        f"{path.relative_to(REPO)}: {sorted(names)}"
        for path in (REPO / folder).rglob("*.py")
        if path != REPO / SEAM and (names := reaches_behind_the_seam(path))
    }
    assert not found


# The bot's services: the CLI, the demo and the benchmarks go through the bot's public methods instead.
BOT_SERVICES = {"db", "worker", "models", "requests", "admin", "scheduler"}


def _is_bot(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "bot") or (
        isinstance(node, ast.Attribute) and node.attr == "bot"
    )


def reaches_into_the_bot(path: Path) -> set[str]:
    """The services a file reaches on a bot (``bot.db``, ``env.bot.worker``...)."""
    tree = ast.parse(path.read_text())
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in BOT_SERVICES and _is_bot(node.value)
    }


def test_the_bot_check_sees_services_behind_any_name(tmp_path):
    code = tmp_path / "x.py"
    code.write_text("await bot.db.depth(x)\nenv.bot.worker.submit(r)\n")
    assert reaches_into_the_bot(code) == {"db", "worker"}
    code.write_text("await bot.cache_depth()\nbot.tree.get_command('x')\ndb.depth(x)\n")
    assert reaches_into_the_bot(code) == set()


@pytest.mark.parametrize("folder", ["linernotes/cli", "bench"])
def test_the_cli_and_benchmarks_use_the_bots_public_methods(folder):
    found = {
        f"{path.relative_to(REPO)}: {sorted(names)}"
        for path in (REPO / folder).rglob("*.py")
        if (names := reaches_into_the_bot(path))
    }
    assert not found


def test_only_the_entry_point_imports_app():
    """bot/app.py wires everything; only the package's ``create_bot`` imports it (cli from outside)."""
    graph = module_graph(REPO / "bot", "linernotes.bot")
    assert len(graph) > 10
    assert {name for name, targets in graph.items() if "linernotes.bot.app" in targets} == {"linernotes.bot"}


@pytest.mark.parametrize(
    "module",
    [
        "linernotes.data",
        "linernotes.model",
        "linernotes.training",
        "linernotes.bot",
        "linernotes.cli.main",
        "linernotes.data.format",
        "linernotes.bot.app",
        "linernotes.training.loop",
        "linernotes.model.generator",
    ],
)
def test_importing_starts_no_work(module):
    code = f"import threading, {module}; assert threading.active_count() == 1, threading.enumerate()"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


MAX_FUNCTION_LINES = 60  # a function fits on a screen; split one that grows past it


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``name (N lines)`` for each function or method in ``path`` longer than ``limit`` lines."""
    tree = ast.parse(path.read_text())
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_the_length_check_counts_nested_functions_and_methods(tmp_path):
    code = tmp_path / "x.py"
    body = "\n".join(f"        x{i} = {i}" for i in range(3))
    code.write_text(f"class A:\n    async def m(self):\n{body}\n\n\ndef f():\n    def g():\n{body}\n")
    assert sorted(long_functions(code, limit=3)) == ["f (5 lines)", "g (4 lines)", "m (4 lines)"]
    assert long_functions(code, limit=5) == []


@pytest.mark.parametrize("folder", sorted({*FOLDERS.values(), "bench", "docs"}))
def test_no_function_is_longer_than_a_screen(folder):
    """Outside tests, no function runs past ``MAX_FUNCTION_LINES`` lines."""
    found = [
        f"{path.relative_to(REPO)}: {name}"
        for path in sorted((REPO / folder).rglob("*.py"))
        for name in long_functions(path)
    ]
    assert not found
