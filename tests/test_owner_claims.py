"""Only one live process resumes an owner's sales: the claim taken by ``unfinished()``.

The other process is real: a child that opens the journal, lists its unfinished sales (which
claims the owner), and then waits, closes its journal, or is killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_stores import Where, store_of
from http_faults import RawServer, closed_port, silent
from pg import fresh_schema, require_postgres, sql

from voucher_adapters.stores.postgres import AsyncPostgresJournal, PostgresJournal, migrate
from voucher_adapters.stores.postgres import OwnerBusy as PostgresOwnerBusy
from voucher_adapters.stores.sqlite import AsyncSqliteJournal, SqliteJournal
from voucher_adapters.stores.sqlite import OwnerBusy as SqliteOwnerBusy
from voucher_adapters.stores.sqlite.claim import lock_path
from voucher_core import State

ROOT = Path(__file__).resolve().parent.parent

HOLDER = textwrap.dedent(
    """
    import os, sys
    kind, where, owner = sys.argv[1], sys.argv[2], sys.argv[3] or None
    if kind == "sqlite":
        from voucher_adapters.stores.sqlite import SqliteJournal
        journal = SqliteJournal(where, owner=owner)
    else:
        from voucher_adapters.stores.postgres import PostgresJournal
        journal = PostgresJournal(os.environ["VOUCHER_TEST_PG_DSN"], schema=where, owner=owner)
    journal.unfinished()
    print("held", flush=True)
    for line in sys.stdin:
        if line.strip() == "close":
            journal.close()
            print("closed", flush=True)
    """
)


class Store:
    """Where the journals live, and how to open one here or in a child process."""

    def __init__(self, kind: str, where: str, dsn: str = "") -> None:
        self.kind, self.where, self.dsn = kind, where, dsn
        self.busy: type[Exception] = SqliteOwnerBusy if kind == "sqlite" else PostgresOwnerBusy

    def journal(self, owner: str | None) -> SqliteJournal | PostgresJournal:
        if self.kind == "sqlite":
            return SqliteJournal(self.where, owner=owner)
        return PostgresJournal(self.dsn, schema=self.where, owner=owner, timeout=2.0)

    def async_journal(self, owner: str | None) -> AsyncSqliteJournal | AsyncPostgresJournal:
        if self.kind == "sqlite":
            return AsyncSqliteJournal(self.where, owner=owner)
        return AsyncPostgresJournal(self.dsn, schema=self.where, owner=owner, timeout=2.0)

    def holder(self, owner: str | None) -> subprocess.Popen[str]:
        env = {**os.environ, "VOUCHER_TEST_PG_DSN": self.dsn}
        child = subprocess.Popen(
            [sys.executable, "-c", HOLDER, self.kind, self.where, owner or ""],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        return child


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield Store("sqlite", str(tmp_path / "pos.db"))
        return
    dsn = require_postgres()
    with fresh_schema() as schema:
        migrate(dsn, schema=schema)
        yield Store("postgres", schema, dsn)


@pytest.fixture
def children() -> Iterator[Callable[[subprocess.Popen[str]], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield lambda child: started.append(child) or child  # type: ignore[func-returns-value]
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def test_journals_of_one_process_share_its_claim(store: Store) -> None:
    first, second, other = store.journal("lane-1"), store.journal("lane-1"), store.journal(None)
    try:
        assert first.unfinished() == [] and second.unfinished() == []
        assert other.unfinished() == []
        first.close()  # the claim stays while the second journal holds it
        second.unfinished()
    finally:
        for journal in (first, second, other):
            journal.close()


def test_a_live_process_holding_the_owner_turns_away_a_second_one(
    store: Store, children: Any
) -> None:
    holder = children(store.holder("lane-1"))
    journal = store.journal("lane-1")
    try:
        with pytest.raises(store.busy) as refused:
            journal.unfinished()
        message = str(refused.value)
        assert "the sales of owner 'lane-1'" in message and "another live process" in message
        if store.kind == "sqlite":
            assert f"pid {holder.pid}" in message
        else:
            assert "server process" in message
        # Recording and reading go on; only resuming the owner's sales is refused.
        assert journal.entries() == []
        # Other owners, and the sales recorded without one, are free.
        with store.journal("lane-2") as lane_2, store.journal(None) as unowned:
            assert lane_2.unfinished() == [] and unowned.unfinished() == []
    finally:
        journal.close()


def test_the_claim_goes_when_the_holder_closes_its_journal(store: Store, children: Any) -> None:
    holder = children(store.holder(None))
    with store.journal(None) as journal:
        with pytest.raises(store.busy, match="the sales recorded without an owner"):
            journal.unfinished()
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("close\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "closed"
        assert journal.unfinished() == []


def test_the_claim_goes_when_the_holder_is_killed(store: Store, children: Any) -> None:
    holder = children(store.holder("lane-1"))
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    # On PostgreSQL the server may take a moment to notice; the claim waits for that.
    with store.journal("lane-1") as journal:
        assert journal.unfinished() == []


def test_the_async_journals_claim_too(store: Store, children: Any) -> None:
    children(store.holder("lane-1"))

    async def main() -> None:
        journal = store.async_journal("lane-1")
        try:
            with pytest.raises(store.busy):
                await journal.unfinished()
        finally:
            await journal.aclose()
        free = store.async_journal("lane-2")
        try:
            assert await free.unfinished() == []
        finally:
            await free.aclose()

    asyncio.run(main())


def test_voucher_recover_refuses_while_the_host_process_is_alive(
    tmp_path: Path, children: Any
) -> None:
    store = Store("sqlite", str(tmp_path / "pos.db"))
    children(store.holder(None))
    closed = "http://127.0.0.1:9/suv/v1"  # never reached: the claim comes first
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voucher_adapters.cli",
            "recover",
            "--db",
            store.where,
            "--url",
            closed,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "another live process" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_voucher_recover_refuses_while_voucher_provision_is_selling(
    tmp_path: Path, kind: str
) -> None:
    """`voucher provision --db/--dsn` drives a journal like any host, so it holds the owner
    claim while its sale is on the wire: a `voucher recover` started meanwhile must not
    resume it."""
    with store_of(kind, tmp_path) as where:
        refused_while_selling(where)


def refused_while_selling(where: Where) -> None:
    with RawServer(silent) as switch:  # takes the provision and keeps it waiting
        seller = subprocess.Popen(
            [
                *(sys.executable, "-m", "voucher_adapters.cli", "provision"),
                *("--url", switch.url, "--product", "AIRTIME10", "--amount", "1000"),
                *(*where.option, "--timeout", "30", "--json"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while switch.connections == 0 and time.monotonic() < deadline:
                assert seller.poll() is None, "voucher provision ended before it sent anything"
                time.sleep(0.05)
            assert switch.connections >= 1, "the provision never reached the switch"
            with closed_port() as closed:
                result = subprocess.run(
                    [
                        *(sys.executable, "-m", "voucher_adapters.cli", "recover"),
                        *(*where.option, "--url", closed),
                    ],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
            assert seller.poll() is None, "the seller should still be waiting on its switch"
        finally:
            seller.kill()
            seller.wait(30)
    assert result.returncode == 1, result.stderr
    assert "another live process" in result.stderr and "Traceback" not in result.stderr
    journal = where.journal()
    try:  # the refused recover touched nothing: only the seller moved its sale
        [entry] = journal.entries()
        assert entry.transaction.state in {State.PROVISIONING, State.RETRYING}
        assert not entry.transaction.unattended  # a recovery would have marked it
    finally:
        journal.close()


def test_the_sqlite_lock_file_names_its_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "pos.db")
    with SqliteJournal(path, owner="lane-7") as journal:
        journal.unfinished()
        text = Path(lock_path(os.path.realpath(path), "lane-7")).read_text()
        assert f"pid {os.getpid()}" in text and "'lane-7'" in text


def test_a_postgres_claim_whose_session_ended_is_checked_and_taken_again(
    children: Any,
) -> None:
    """A server restart ends the claim's session and drops its lock: the next unfinished()
    notices, and claims again, or is refused if another process took the owner meanwhile."""
    dsn = require_postgres()
    with fresh_schema() as schema:
        migrate(dsn, schema=schema)
        store = Store("postgres", schema, dsn)

        def end_claim_sessions() -> int:
            return len(
                sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'voucher-core claim lane-9'"
                )
            )

        with store.journal("lane-9") as journal:
            journal.unfinished()
            assert end_claim_sessions() == 1
            assert journal.unfinished() == []  # claimed again on a new session
            assert end_claim_sessions() == 1
            children(store.holder("lane-9"))  # the owner was free, and another process took it
            with pytest.raises(PostgresOwnerBusy):
                journal.unfinished()
