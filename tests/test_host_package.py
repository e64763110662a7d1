"""A host application with its own ``adapters`` package embeds voucher-core installed from a wheel.

The ports-and-adapters layout gives many applications a top-level ``adapters`` package. This
library once shipped one too, and its pytest plugin lived under it, so such a host could not
import ours and its ``python -m pytest`` stopped at start-up. Here a wheel is built from this
source tree, installed into a fresh virtual environment, and a small host project with its own
``adapters/`` runs its own suite there: its tests import its ``adapters``, the library's HTTP
transport, and sell a voucher through the plugin's ``voucher_till``.

Offline throughout: the library's dependencies (and pytest) are lent to the new environment
from this one, never downloaded, and the editable install of this checkout is left out of the
loan, so what the host imports is the wheel. Building the wheel needs a setuptools that can
write one (77 or later, as the build-system table asks); where this environment
has none, pip builds in isolation and fetches one from the package index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Never part of a build: environments, caches and earlier build output.
NOT_SOURCE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
)
# What this environment must not lend the host's: this checkout's editable install, and the
# tools the host's environment has (or needs) of its own.
NOT_LENT = ("__editable__", "voucher_core", "_distutils_hack", "pip", "setuptools", "pkg_resources")

HOST_ADAPTERS = '''\
"""The host application's own adapters: nothing to do with voucher-core."""

NAME = "host"
'''

HOST_TESTS = """\
import sys
from pathlib import Path

import adapters
import voucher_adapters
import voucher_core
from voucher_adapters.testing import cash
from voucher_adapters.transports.http import HttpTransport


def test_the_host_keeps_its_adapters_and_imports_the_library():
    assert adapters.NAME == "host"
    assert Path(adapters.__file__).parent == Path.cwd() / "adapters"
    assert HttpTransport.__module__.startswith("voucher_adapters.transports.http")
    for package in (voucher_adapters, voucher_core):
        assert Path(package.__file__).is_relative_to(sys.prefix), package.__file__


def test_the_voucher_fixtures_sell(voucher_till, voucher_switch):
    tx = voucher_till.sell("AIRTIME10", tenders=cash(1000))
    voucher_till.settle()
    voucher_till.assert_flow(tx, operations=["provision", "confirm"], final_state="DONE")
    assert voucher_switch.voucher_active(tx.id)
"""


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing of the outer run's paths or pytest options leaks in.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "PYTHON", "VIRTUAL_ENV"))
    }
    env |= {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def wheel_capable_setuptools() -> bool:
    """Whether this environment's setuptools can build our wheel without fetching anything:
    77 or later, as pyproject.toml's build-system asks (SPDX license expressions; bdist_wheel
    has been part of setuptools since 70.1)."""
    try:
        release = tuple(int(part) for part in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return release >= (77, 0)


def build_wheel(workdir: Path) -> Path:
    source = workdir / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = workdir / "wheels"
    offline = wheel_capable_setuptools()
    isolation = ["--no-build-isolation"] if offline else []
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", *isolation, "-w", out, source
    )
    if not offline and "No matching distribution found for setuptools" in built.stderr:
        pytest.skip(
            "cannot build a wheel here: this environment's setuptools cannot write one and "
            "the package index is out of reach to fetch one"
        )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("voucher_core-*.whl")
    return wheel


def lend_dependencies(host_python: Path, workdir: Path) -> None:
    """Make this environment's packages importable in the host's, minus voucher-core itself."""
    ours = Path(sysconfig.get_paths()["purelib"])
    lent = workdir / "lent"
    lent.mkdir()
    for entry in ours.iterdir():
        if entry.name.startswith(NOT_LENT) or entry.suffix == ".pth":
            continue
        (lent / entry.name).symlink_to(entry)
    found = run(host_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    assert found.returncode == 0, found.stderr
    # Appended after the host's own site-packages, so the wheel installed there comes first.
    (Path(found.stdout.strip()) / "lent_by_the_outer_suite.pth").write_text(f"{lent}\n")


def test_a_host_with_its_own_adapters_package_runs_its_suite(tmp_path: Path) -> None:
    try:
        import pip  # noqa: F401, PLC0415  (only to know it is there)
    except ImportError:
        pytest.skip("pip is not installed in this environment")
    env_dir = tmp_path / "host-env"
    try:
        venv.create(env_dir, with_pip=False, symlinks=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot create a virtual environment here: {error}")
    host_python = env_dir / "bin" / "python"

    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {
        "voucher_core",
        "voucher_adapters",
    }

    installed = run(
        sys.executable, "-m", "pip", "--python", host_python, "install", "--quiet",
        "--no-deps", "--no-index", wheel,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    lend_dependencies(host_python, tmp_path)

    host = tmp_path / "host"
    (host / "adapters").mkdir(parents=True)
    (host / "adapters" / "__init__.py").write_text(HOST_ADAPTERS)
    (host / "tests").mkdir()
    (host / "tests" / "test_host.py").write_text(HOST_TESTS)
    (host / "pyproject.toml").write_text(
        textwrap.dedent("""\
            [project]
            name = "host"
            version = "1.0"

            [tool.pytest.ini_options]
            testpaths = ["tests"]
        """)
    )

    tested = run(host_python, "-m", "pytest", "-v", "-p", "no:cacheprovider", cwd=host)
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output
    assert "test_host.py::test_the_host_keeps_its_adapters_and_imports_the_library PASSED" in output
    assert "test_host.py::test_the_voucher_fixtures_sell PASSED" in output
    assert "2 passed" in output
