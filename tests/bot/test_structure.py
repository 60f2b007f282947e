"""bot/ has no import circle (TYPE_CHECKING imports included) and only the package's entry point
imports ``bot.app``, the module that wires everything."""

from __future__ import annotations

import ast

from tests.conftest import REPO


def bot_imports() -> dict[str, set[str]]:
    """For each module in bot/, the bot modules it imports anywhere in its source."""
    graph: dict[str, set[str]] = {}
    for path in sorted((REPO / "bot").glob("*.py")):
        name = "bot" if path.stem == "__init__" else f"bot.{path.stem}"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module} if node.module != "bot" else {f"bot.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m.startswith("bot.") and m != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, if there is any."""
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def test_no_import_circle_in_bot():
    graph = bot_imports()
    assert len(graph) > 10 and cycle(graph) is None


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_only_the_entry_point_imports_app():
    importers = {name for name, imports in bot_imports().items() if "bot.app" in imports}
    assert importers == {"bot"}  # bot/__init__.py's create_bot; cli imports it from outside
