"""The package as an index and a user see it: one version, a license, bounds, the commands."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import voucher_adapters
import voucher_core
from voucher_adapters.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_version_is_written_once_and_read_by_the_metadata_and_the_command(capsys) -> None:
    assert PROJECT["dynamic"] == ["version"]
    assert "version" not in PROJECT
    assert voucher_adapters.__version__ == voucher_core.__version__
    try:
        main(["--version"])
    except SystemExit as done:
        assert done.code == 0
    assert capsys.readouterr().out == f"voucher {voucher_core.__version__}\n"


def test_python_dash_m_voucher_adapters_runs_the_voucher_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voucher_adapters", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"voucher {voucher_core.__version__}\n"


def test_the_license_is_an_spdx_expression_with_its_text_shipped() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])


def test_the_postgres_extra_leaves_the_choice_of_libpq_to_the_application() -> None:
    extra = PROJECT["optional-dependencies"]["postgres"]
    assert any(r.startswith("psycopg>=") for r in extra)
    assert not any("[" in r for r in extra)


def test_the_sdist_carries_every_test_helper() -> None:
    # The test modules import their helpers (pg.py, serving.py, ...) as top-level modules.
    manifest = (ROOT / "MANIFEST.in").read_text().splitlines()
    assert "graft tests" in manifest
