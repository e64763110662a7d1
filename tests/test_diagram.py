"""The diagrams in docs/ are generated from the transition table and must match it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from voucher_core.diagram import render, to_dot, to_mermaid
from voucher_core.table import TRANSITIONS, State

DOCS = Path(__file__).resolve().parent.parent / "docs"
REGENERATE = "run `make diagram` to regenerate it from voucher_core/table.py"


def test_mermaid_file_matches_the_table() -> None:
    assert (DOCS / "state-diagram.mmd").read_text() == to_mermaid(), REGENERATE


def test_dot_file_matches_the_table() -> None:
    assert (DOCS / "state-diagram.dot").read_text() == to_dot(), REGENERATE


def test_the_concepts_page_embeds_the_current_diagram() -> None:
    page = (DOCS / "state-machine.md").read_text()
    blocks = re.findall(r"```mermaid\n(.*?)```", page, flags=re.S)
    assert blocks, "docs/state-machine.md has no mermaid block"
    assert blocks[0] == to_mermaid(), REGENERATE


def test_every_rule_and_state_appears_in_the_diagram() -> None:
    mermaid = to_mermaid()
    for rule in TRANSITIONS:
        if rule.dest is not None:
            assert f"{rule.source} --> {rule.dest}: {rule.event}" in mermaid
    for state in State:
        assert state.value in mermaid


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown diagram format 'svg'"):
        render("svg")


def test_the_command_prints_the_same_diagram() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "voucher_adapters.cli", "diagram", "--format", "dot"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == to_dot()


def test_svg_is_rendered_with_graphviz_or_explains_how_to_get_it(tmp_path: Path) -> None:
    target = tmp_path / "states.svg"
    command = [sys.executable, "-m", "voucher_adapters.cli", "diagram", "--format", "svg"]
    without_dot = subprocess.run(
        [*command, "--output", str(target)],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},  # nowhere to find dot
        check=False,
    )
    assert without_dot.returncode == 1 and not target.exists()
    assert "apt-get install graphviz" in without_dot.stderr
    assert "Traceback" not in without_dot.stderr
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed here")
    with_dot = subprocess.run([*command, "--output", str(target)], capture_output=True, check=False)
    assert with_dot.returncode == 0, with_dot.stderr
    svg = target.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for state in State:
        assert state.value in svg
