"""The sync driver is generated from the async one by scripts/unasync.py and kept fresh."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "unasync.py"
SOURCE = "voucher_core/drivers/async_driver.py"
TARGET = "voucher_core/drivers/driver.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


unasync = load_script()


def run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_generated_sync_driver_is_fresh() -> None:
    assert unasync.TWINS == ((SOURCE, TARGET),)
    assert unasync.stale() == [], f"{TARGET} is stale: run `make unasync`"
    generated = (ROOT / TARGET).read_text(encoding="utf-8")
    assert generated.startswith(f"# Generated from {SOURCE} by scripts/unasync.py")


def test_the_check_command_passes_on_this_tree() -> None:
    done = run(SCRIPT, "--check")
    assert done.returncode == 0, done.stderr


def copy_tree(tmp_path: Path) -> Path:
    """The script, the driver twins and the ruff settings, in a tree of their own."""
    for name in ("scripts/unasync.py", SOURCE, TARGET, "pyproject.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_check_fails_naming_the_stale_file_when_the_source_changes(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    source = tree / SOURCE
    source.write_text(
        source.read_text(encoding="utf-8")
        + "\n    async def pause(self) -> None:\n        await self.clock.asleep(0)\n",
        encoding="utf-8",
    )
    assert unasync.stale(root=tree) == [TARGET]

    script = tree / "scripts" / "unasync.py"
    done = run(script, "--check")
    assert done.returncode == 1
    assert f"{TARGET} is stale" in done.stderr
    assert "+    def pause(self) -> None:" in done.stderr

    assert run(script).returncode == 0  # regenerate
    assert run(script, "--check").returncode == 0
    generated = (tree / TARGET).read_text(encoding="utf-8")
    assert generated.endswith("    def pause(self) -> None:\n        self.clock.sleep(0)\n")


def test_a_hand_edit_of_the_generated_file_is_stale(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    target = tree / TARGET
    target.write_text(target.read_text(encoding="utf-8").replace("_sale_of", "_owner"))
    assert unasync.stale(root=tree) == [TARGET]


def test_the_rewrite_drops_async_and_renames_the_twins() -> None:
    source = (
        '"""Mentions AsyncDriver by name."""\n'
        "\n"
        "from voucher_core.ports import (\n"
        "    AsyncTransport,\n"
        "    Clock,\n"
        ")\n"
        "\n"
        '__all__ = ["AsyncDriver"]\n'
        "\n"
        "\n"
        "class AsyncDriver:  # the AsyncDriver twin\n"
        "    async def __aenter__(self, transport: AsyncTransport, clock: Clock) -> None:\n"
        "        async with transport:\n"
        "            await clock.asleep(1)\n"
        "        self.awaiting = await transport.aclose()\n"
    )
    assert unasync.unasync(source, source_name="x.py", prose=()) == (
        unasync.HEADER.format(source="x.py") + '"""Mentions Driver by name."""\n'
        "\n"
        "from voucher_core.ports import (\n"
        "    Clock,\n"
        "    Transport,\n"
        ")\n"
        "\n"
        '__all__ = ["Driver"]\n'
        "\n"
        "\n"
        "class Driver:  # the Driver twin\n"
        "    def __enter__(self, transport: Transport, clock: Clock) -> None:\n"
        "        with transport:\n"
        "            clock.sleep(1)\n"
        "        self.awaiting = transport.close()\n"
    )


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("x: AsyncQueue = None\n", "`AsyncQueue` has no sync twin"),
        ("import asyncio\n", "`asyncio` has no sync twin"),
        ('"""Awaits the async ports."""\n', "still says `async`"),
    ],
)
def test_the_rewrite_refuses_what_it_cannot_make_sync(source: str, complaint: str) -> None:
    with pytest.raises(unasync.UnasyncError, match=complaint):
        unasync.unasync(source, source_name="x.py", prose=())


def test_the_rewrite_refuses_a_source_whose_rewritten_prose_is_gone() -> None:
    with pytest.raises(unasync.UnasyncError, match="update its TEXT pair"):
        unasync.unasync('"""Another docstring."""\n', source_name="x.py")
