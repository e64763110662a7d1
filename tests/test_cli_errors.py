"""The ``voucher`` command's refusals: one line on stderr and a non-zero exit, never a traceback.

Each test is one way an operator's command goes wrong: a DSN without the ``[postgres]`` extra,
a diagram written where it cannot be, Ctrl-C in a long simulation, a busy port, a database in a
read-only folder. Most run ``main()`` in this process; those about signals and sockets run the
command as a child process, as an operator would.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voucher_adapters.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
VOUCHER = [sys.executable, "-m", "voucher_adapters"]


def one_line_refusal(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# -- a DSN without the [postgres] extra ------------------------------------------------------------

DSN = "postgresql://till@127.0.0.1:1/nowhere"


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "--scenario", "dual-success", "--dsn", DSN],
        [
            "provision",
            "--url",
            "http://127.0.0.1:1",
            "--product",
            "A1",
            "--amount",
            "1",
            "--dsn",
            DSN,
        ],
        ["journal", "list", "--dsn", DSN],
        ["queue", "drain", "--url", "http://127.0.0.1:1", "--dsn", DSN],
        ["recover", "--url", "http://127.0.0.1:1", "--dsn", DSN],
        ["reconcile", "--dsn", DSN],
        ["db", "migrate", "--dsn", DSN],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_dsn_without_the_postgres_extra_names_the_extra_to_install(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    assert main(args) == 2
    line = one_line_refusal(capsys.readouterr().err)
    assert "needs the [postgres] extra" in line
    assert "pip install 'voucher-core[postgres]'" in line


# -- voucher diagram --output ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mermaid", "svg"])
def test_a_diagram_into_a_missing_folder_is_refused_in_one_line(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no-such-folder" / f"states.{fmt}"
    assert main(["diagram", "--format", fmt, "--output", str(target)]) == 1
    line = one_line_refusal(capsys.readouterr().err)
    assert line == f"voucher diagram: cannot write {target}: No such file or directory"


def test_a_diagram_onto_a_folder_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diagram", "--output", str(tmp_path)]) == 1
    assert one_line_refusal(capsys.readouterr().err).endswith(": Is a directory")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``(writable, read_only)``: one folder seen twice, the second time read-only.

    As root, permissions do not stop a write, so the folder is bind-mounted read-only
    (skipped where mounting is not allowed); otherwise the folder's mode is enough.
    """
    writable = tmp_path / "store"
    writable.mkdir()
    if os.geteuid() != 0:
        yield writable, writable
        writable.chmod(0o755)
        return
    seen = tmp_path / "read-only"
    seen.mkdir()
    mounted = subprocess.run(
        ["mount", "--bind", str(writable), str(seen)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount a folder read-only here: {mounted.stderr.strip()!r}")
    try:
        remounted = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(seen)], capture_output=True, check=False
        )
        if remounted.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {remounted.stderr.strip()!r}")
        yield writable, seen
    finally:
        subprocess.run(["umount", str(seen)], capture_output=True, check=False)


def make_read_only(folder: Path) -> None:
    if os.geteuid() != 0:
        folder.chmod(0o555)


def test_a_diagram_into_a_read_only_folder_is_refused_in_one_line(
    read_only_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    writable, seen = read_only_folder
    make_read_only(writable)
    target = seen / "states.mmd"
    assert main(["diagram", "--output", str(target)]) == 1
    line = one_line_refusal(capsys.readouterr().err)
    assert line.startswith(f"voucher diagram: cannot write {target}: ")
    assert line.endswith(("Read-only file system", "Permission denied"))


# -- a database in a read-only folder --------------------------------------------------------------


def test_a_database_in_a_read_only_folder_can_still_be_listed(
    read_only_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    writable, seen = read_only_folder
    assert main(["simulate", "--scenario", "dual-success", "--db", str(writable / "v.db")]) == 0
    capsys.readouterr()
    assert not (writable / "v.db-wal").exists()  # closed cleanly: nothing left unmerged
    make_read_only(writable)

    db = str(seen / "v.db")
    assert main(["journal", "list", "--db", db]) == 0
    assert "DONE" in capsys.readouterr().out
    assert main(["queue", "stats", "--db", db]) == 0
    assert main(["queue", "list", "--db", db]) == 0
    capsys.readouterr()
    assert main(["reconcile", "--db", db]) == 0
    assert "nothing to reconcile" in capsys.readouterr().out
    # A command that writes says it cannot, in one line.
    assert main(["queue", "requeue", "nope", "--db", db]) == 1
    assert one_line_refusal(capsys.readouterr().err).startswith("voucher: cannot open")


# -- Ctrl-C ----------------------------------------------------------------------------------------


def running(child: subprocess.Popen[str], cpu: float = 2.0, limit: float = 120.0) -> None:
    """Wait until ``child`` has spent ``cpu`` seconds on the processor: past the interpreter's
    start and the imports (about half a second), however busy the machine is."""
    stat = Path(f"/proc/{child.pid}/stat")
    if not stat.exists():  # no /proc: a generous pause instead
        time.sleep(5.0)
        return
    tick = os.sysconf("SC_CLK_TCK")
    waited = time.monotonic() + limit
    while time.monotonic() < waited and child.poll() is None:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / tick >= cpu:  # utime + stime
            return
        time.sleep(0.1)
    raise AssertionError(f"the child did not get {cpu} s of processor time in {limit} s")


def test_ctrl_c_during_a_long_simulation_stops_it_in_one_line() -> None:
    child = subprocess.Popen(
        [*VOUCHER, "simulate", "--chaos", "--count", "10000000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        running(child)  # well inside the run, which takes hours
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130
    assert one_line_refusal(err) == "voucher: interrupted"
    assert out == ""


# -- voucher serve ---------------------------------------------------------------------------------


def test_serve_on_a_busy_port_fails_in_one_line_without_claiming_to_listen() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*VOUCHER, "serve", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    line = one_line_refusal(done.stderr)
    assert line == f"voucher: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_serve_on_port_0_says_which_port_it_got_and_answers_there() -> None:
    child = subprocess.Popen(
        [*VOUCHER, "serve", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        first = child.stderr.readline()
        prefix = "voucher simulator listening on http://127.0.0.1:"
        assert first.startswith(prefix), first
        port = int(first[len(prefix) :].split("/", 1)[0])
        assert port != 0
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /suv/v1/testServerAdmin/ledger HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(12).startswith(b"HTTP/1.1 ")
        child.send_signal(signal.SIGINT)
        _, rest = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0
    assert "Traceback" not in rest


# -- what git leaves alone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "voucher.db",
        "voucher.db-wal",
        "voucher.db-shm",
        "voucher.db-journal",
        "voucher.db.owner-3601024f639a257f.lock",
    ],
)
def test_git_ignores_the_sqlite_store_and_its_side_files(name: str) -> None:
    if not (ROOT / ".gitignore").exists():
        pytest.skip("not a git checkout (an unpacked sdist has no .gitignore)")
    patterns = [
        line.strip()
        for line in (ROOT / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
