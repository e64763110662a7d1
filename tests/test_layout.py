"""The shape of the house: what may import what.

The core imports nothing that does I/O and nothing of the adapters; the adapters' role
folders import one another without a cycle. Read from the sources (every import statement,
including those inside functions), so an optional extra that is missing here still counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Libraries that do I/O, run threads or read the clock: the drivers' and adapters' business.
IMPURE = {
    "aiohttp",
    "asyncio",
    "fastapi",
    "flask",
    "httpx",
    "psycopg",
    "psycopg_pool",
    "requests",
    "socket",
    "sqlite3",
    "ssl",
    "starlette",
    "subprocess",
    "threading",
    "time",
    "urllib3",
    "uvicorn",
}


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """The role a module belongs to: a subpackage of voucher_adapters, or a top module."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_the_core_imports_no_io_library_and_nothing_of_the_adapters() -> None:
    found = []
    for path in sorted((ROOT / "voucher_core").rglob("*.py")):
        for name in imports(path):
            top = name.split(".")[0]
            if top in IMPURE or top == "voucher_adapters":
                found.append(f"{module_of(path)} imports {name}")
    assert not found, "\n".join(found)


def adapter_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "voucher_adapters").rglob("*.py")):
        source = unit(module_of(path))
        edges = graph.setdefault(source, set())
        for name in imports(path):
            if name.startswith("voucher_adapters.") and unit(name) != source:
                edges.add(unit(name))
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_adapters_role_folders_import_one_another_without_a_cycle() -> None:
    graph = adapter_graph()
    assert {"voucher_adapters.transports", "voucher_adapters.stores"} <= set(graph)
    found = cycle(graph)
    assert found is None, " -> ".join(found or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_nothing_is_named_adapters_at_the_top() -> None:
    assert not list((ROOT / "adapters").rglob("*.py"))
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"adapters' not in pyproject and "= adapters" not in pyproject
