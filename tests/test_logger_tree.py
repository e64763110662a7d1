"""One logger tree: every logger the library gets is under ``voucher_core``, so one line of
logging configuration (``logging.getLogger("voucher_core")``) reaches them all."""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    [*(ROOT / "voucher_core").rglob("*.py"), *(ROOT / "voucher_adapters").rglob("*.py")]
)
LOGGER_ROOT = "voucher_core"


def get_logger_calls(tree: ast.AST) -> Iterator[ast.Call]:
    """Every ``logging.getLogger(...)`` and bare ``getLogger(...)`` call."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "getLogger") or (
            isinstance(func, ast.Name) and func.id == "getLogger"
        ):
            yield node


def logger_names(path: Path) -> list[tuple[int, str | None]]:
    """(line, name) of each getLogger call in ``path``; the name is None unless it is a
    string literal (a call without one, or with a computed name, cannot be checked)."""
    found: list[tuple[int, str | None]] = []
    for call in get_logger_calls(ast.parse(path.read_text(), filename=str(path))):
        argument = call.args[0] if call.args else None
        name = argument.value if isinstance(argument, ast.Constant) else None
        found.append((call.lineno, name if isinstance(name, str) else None))
    return found


def under_root(name: str | None) -> bool:
    return name is not None and (name == LOGGER_ROOT or name.startswith(f"{LOGGER_ROOT}."))


def test_every_logger_of_the_library_is_under_voucher_core() -> None:
    calls = {path: logger_names(path) for path in SOURCES}
    assert sum(len(found) for found in calls.values()) >= 5  # the check sees the loggers
    stray = [
        f"{path.relative_to(ROOT)}:{line}: getLogger({name!r})"
        for path, found in calls.items()
        for line, name in found
        if not under_root(name)
    ]
    assert stray == [], "loggers outside voucher_core (a literal name under it is required)"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('log = logging.getLogger("voucher_core.sqlite")', [(1, "voucher_core.sqlite")]),
        (
            'from logging import getLogger\nlog = getLogger("adapters.server")',
            [(2, "adapters.server")],
        ),
        ("log = logging.getLogger(__name__)", [(1, None)]),
        ("log = logging.getLogger()", [(1, None)]),
    ],
)
def test_the_check_reads_every_form_of_the_call(
    tmp_path: Path, source: str, expected: list[tuple[int, str | None]]
) -> None:
    path = tmp_path / "module.py"
    path.write_text(source + "\n")
    assert logger_names(path) == expected
    assert all(under_root(name) == (name == "voucher_core.sqlite") for _, name in expected)


def test_one_line_of_configuration_reaches_every_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    names = sorted({name for path in SOURCES for _, name in logger_names(path) if name})
    assert {"voucher_core.http", "voucher_core.forwarder", "voucher_core.sqlite"} <= set(names)
    with caplog.at_level(logging.INFO, logger=LOGGER_ROOT):
        for name in names:
            logging.getLogger(name).info("hello from %s", name)
    assert sorted(record.name for record in caplog.records) == names
