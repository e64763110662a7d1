"""SQLite storage when things go wrong, the settings it runs with, and group commit.

Every failure must raise StorageError naming the operation, the file and the cause, and must
fail closed: an advice whose enqueue failed is not in the queue, a transaction whose record
failed still has its previous snapshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_samples import WHEN, Samples

from voucher_adapters.demo import cash
from voucher_adapters.stores.sqlite import (
    SCHEMA_VERSION,
    AsyncSqliteAdviceQueue,
    AsyncSqliteJournal,
    Database,
    SqliteAdviceQueue,
    SqliteJournal,
    StorageError,
)
from voucher_adapters.stores.sqlite.database import MIGRATIONS, Failure, Step
from voucher_core import State
from voucher_core.snapshot import snapshot, snapshot_json
from voucher_core.wire import to_json

FULL = "the disk or database is full"


@pytest.fixture
def samples() -> Samples:
    return Samples()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "voucher.db"


def cap_pages(database: Database) -> None:
    """Let the file grow no further (SQLite's own limit, as good as a full disk here)."""

    def run(conn: sqlite3.Connection) -> None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    database.run(Step("cap the file", run, write=False))


def uncap_pages(database: Database) -> None:
    database.run(Step("uncap", lambda c: c.execute("PRAGMA max_page_count = 1073741823"), False))


# -- a full disk --------------------------------------------------------------------------------


def test_a_full_disk_fails_enqueue_closed(path: Path, samples: Samples) -> None:
    queue = SqliteAdviceQueue(path)
    cap_pages(queue.database)
    stored: list[str] = []
    for _ in range(100):
        advice = samples.confirmation()
        try:
            queue.enqueue(advice, due=0.0)
        except StorageError as error:
            failure = error
            break
        stored.append(advice.id)
    else:
        pytest.fail("the capped file never filled up")
    assert str(failure) == f"cannot store advice {advice.id}: {path}: {FULL}"
    assert failure.path == str(path) and failure.operation == f"store advice {advice.id}"
    assert isinstance(failure.__cause__, sqlite3.OperationalError)
    assert [q.id for q in queue.pending()] == stored  # the failed one is not there
    uncap_pages(queue.database)
    queue.enqueue(advice, due=0.0)  # room again: it goes in
    queue.close()
    with SqliteAdviceQueue(path) as again:
        assert [q.id for q in again.pending()] == [*stored, advice.id]


def test_a_full_disk_fails_record_closed_and_keeps_the_previous_snapshot(
    path: Path, samples: Samples
) -> None:
    journal = SqliteJournal(path)
    transactions = [samples.provisioned() for _ in range(40)]
    for tx in transactions:
        journal.record(tx, decision_deadline=1.0)
    cap_pages(journal.database)
    for tx in transactions:  # each grows: sooner or later a page must split
        tx.confirm(cash(1000), now=WHEN, new_id=samples.ids)
        try:
            journal.record(tx)
        except StorageError as error:
            assert str(error) == f"cannot record transaction {tx.id}: {path}: {FULL}"
            entry = journal.get(tx.id)
            assert entry is not None
            assert entry.transaction.state is State.PROVISIONED
            assert entry.decision_deadline == 1.0
            break
    else:
        pytest.fail("the capped file never filled up")
    journal.close()


def test_a_full_disk_fails_exactly_the_async_writes_that_were_not_stored(
    path: Path, samples: Samples
) -> None:
    advices = [samples.reversal() for _ in range(50)]

    async def flow() -> list[BaseException | None]:
        queue = AsyncSqliteAdviceQueue(path)
        cap_pages(queue.sync.database)
        results = await asyncio.gather(
            *(queue.enqueue(advice, due=0.0) for advice in advices), return_exceptions=True
        )
        await queue.aclose()
        return list(results)

    results = asyncio.run(flow())
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures and all(isinstance(f, StorageError) and FULL in str(f) for f in failures)
    with SqliteAdviceQueue(path) as queue:
        present = {q.id for q in queue.pending()}
    assert present == {a.id for a, r in zip(advices, results, strict=True) if r is None}


# -- a locked database ---------------------------------------------------------------------------


@pytest.fixture
def blocker(path: Path) -> Iterator[sqlite3.Connection]:
    SqliteJournal(path).close()  # create the file and its tables
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def test_a_locked_database_fails_writes_after_the_busy_timeout(
    path: Path, samples: Samples
) -> None:
    queue = SqliteAdviceQueue(path, busy_timeout=0.2)
    journal = SqliteJournal(path, busy_timeout=0.2)
    queued, tx = samples.confirmation(), samples.provisioned()
    queue.enqueue(queued, due=0.0)
    journal.record(tx)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    advice = samples.reversal()
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        queue.enqueue(advice, due=0.0)
    assert time.monotonic() - started >= 0.15
    assert str(info.value) == (
        f"cannot store advice {advice.id}: {path}: the database is locked by another "
        "connection (gave up after waiting 0.2 s)"
    )
    with pytest.raises(StorageError, match="locked"):
        queue.take_due(0.0)
    tx.confirm(cash(1000), now=WHEN, new_id=samples.ids)
    with pytest.raises(StorageError, match=f"cannot record transaction {tx.id}: .* locked"):
        journal.record(tx)
    assert [q.id for q in queue.pending()] == [queued.id]  # readers still read (WAL)
    conn.execute("ROLLBACK")

    assert queue.pending()[0].attempts == 0  # the failed take leased nothing
    assert [q.id for q in queue.pending()] == [queued.id]
    entry = journal.get(tx.id)
    assert entry is not None and entry.transaction.state is State.PROVISIONED
    queue.enqueue(advice, due=0.0)
    journal.record(tx)
    assert len(queue) == 2
    queue.close()
    journal.close()
    conn.close()


def test_opening_a_locked_database_fails(path: Path, blocker: sqlite3.Connection) -> None:
    with pytest.raises(StorageError, match=r"cannot open the database: .*locked"):
        SqliteAdviceQueue(path, busy_timeout=0.1)


# -- files that are not what they should be -------------------------------------------------------


def test_a_file_of_garbage_is_refused_at_open(path: Path) -> None:
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    for opener in (SqliteAdviceQueue, SqliteJournal):
        with pytest.raises(StorageError) as info:
            opener(path)
        assert str(info.value).startswith(
            f"cannot open the database: {path}: the file is not a SQLite database"
        )
        assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert path.read_bytes() == garbage


def test_a_damaged_database_is_refused_at_open(path: Path, samples: Samples) -> None:
    with SqliteAdviceQueue(path) as queue:
        for _ in range(300):
            queue.enqueue(samples.confirmation(), due=0.0)
    data = bytearray(path.read_bytes())
    for offset in range(2 * 4096, len(data), 4096):  # page 1 (the schema) is left alone
        data[offset : offset + 64] = bytes(range(64))
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match=f"cannot open the database: {path}: .*damaged"):
        SqliteAdviceQueue(path)


def test_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "voucher.db"
    with pytest.raises(StorageError) as info:
        SqliteJournal(path)
    assert str(info.value) == (
        f"cannot open the database: {path}: the directory {path.parent} does not exist"
    )
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert not path.parent.exists()


def open_as_nobody(path: Path) -> str:
    """Open ``path`` as a user who may not write it; return the error (or "opened").

    Not root: the caller's own read-only file will do. Root may write any file, so a forked
    child drops to nobody first (a forked child keeps what is imported: no other interpreter,
    which nobody might not be allowed to run)."""
    if os.geteuid() != 0:
        try:
            SqliteAdviceQueue(path).close()
        except StorageError as error:
            return str(error)
        return "opened"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        message = "child failed"
        try:
            os.setgid(65534)
            os.setuid(65534)
            message = open_as_nobody(path)
        finally:
            os.write(write, message.encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message


def test_a_read_only_file_is_refused_at_open(samples: Samples) -> None:
    folder = Path(tempfile.mkdtemp(prefix="voucher-ro-"))  # outside pytest's private tmp
    try:
        folder.chmod(0o777)
        path = folder / "voucher.db"
        with SqliteAdviceQueue(path) as queue:
            queue.enqueue(samples.confirmation(), due=0.0)
        path.chmod(0o444)
        before = path.read_bytes()
        assert open_as_nobody(path) == (
            f"cannot open the database: {path}: the database file is read-only"
        )
        assert path.read_bytes() == before
    finally:
        shutil.rmtree(folder)


def test_a_database_from_a_newer_version_is_refused(path: Path) -> None:
    SqliteJournal(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match=f"schema version {SCHEMA_VERSION + 1}"):
        SqliteAdviceQueue(path)


def test_a_file_of_schema_version_1_is_brought_up_to_date_keeping_its_rows(
    path: Path, samples: Samples
) -> None:
    tx = samples.provisioned()
    conn = sqlite3.connect(path, isolation_level=None)  # as the first release left a file
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO journal (id, state, terminal, snapshot, recorded_at) "
        "VALUES (?, 'PROVISIONED', 0, ?, 'then')",
        (tx.id, snapshot_json(tx)),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with SqliteJournal(path) as journal:
        assert journal.database.pragma("user_version") == SCHEMA_VERSION == 2
        assert [e.transaction.id for e in journal.unfinished()] == [tx.id]  # no owner: ours
    with SqliteJournal(path, owner="lane-1") as journal:
        assert journal.unfinished() == []


def test_calls_after_close_fail(path: Path, samples: Samples) -> None:
    queue = SqliteAdviceQueue(path)
    queue.close()
    queue.close()
    with pytest.raises(StorageError, match="the storage was closed"):
        queue.enqueue(samples.confirmation(), due=0.0)
    twin = AsyncSqliteJournal(path)
    asyncio.run(twin.aclose())
    with pytest.raises(StorageError, match="closed"):
        asyncio.run(twin.record(samples.provisioning()))


# -- settings -------------------------------------------------------------------------------------


def test_wal_and_synchronous_full_are_what_the_connection_runs_with(path: Path) -> None:
    with SqliteAdviceQueue(path) as queue, SqliteJournal(path, synchronous="normal") as journal:
        assert queue.database.pragma("journal_mode") == "wal"
        assert queue.database.pragma("synchronous") == 2  # FULL
        assert queue.database.pragma("busy_timeout") == 5000
        assert queue.database.pragma("user_version") == SCHEMA_VERSION
        assert journal.database.pragma("synchronous") == 1  # NORMAL, as asked
    with sqlite3.connect(path) as conn:  # WAL is a property of the file
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"advice", "journal", "meta"} <= tables
    with pytest.raises(ValueError, match="synchronous"):
        SqliteJournal(path, synchronous="SOMETIMES")


# -- group commit ---------------------------------------------------------------------------------


def test_fifty_concurrent_sales_are_all_stored_in_fewer_commits(
    path: Path, samples: Samples
) -> None:
    sales = [samples.confirming() for _ in range(50)]
    watcher = sqlite3.connect(path)  # another connection: it sees committed data only

    async def flow() -> tuple[int, int, int, int]:
        journal = AsyncSqliteJournal(path)
        queue = AsyncSqliteAdviceQueue(path)

        async def sale(n: int) -> None:
            tx = sales[n]
            assert tx.advice is not None
            await journal.record(tx, decision_deadline=float(n))
            row = watcher.execute("SELECT state FROM journal WHERE id = ?", (tx.id,)).fetchone()
            assert row == ("CONFIRMING",)  # committed before the await returned
            await queue.enqueue(tx.advice, due=float(n))
            row = watcher.execute("SELECT due FROM advice WHERE id = ?", (tx.advice.id,))
            assert row.fetchone() == (float(n),)

        await asyncio.gather(*(sale(n) for n in range(50)))
        counts = (journal.commits, journal.writes, queue.commits, queue.writes)
        await journal.aclose()
        await queue.aclose()
        return counts

    journal_commits, journal_writes, queue_commits, queue_writes = asyncio.run(flow())
    watcher.close()
    assert journal_writes == 50 and queue_writes == 50
    assert journal_commits < 50 and queue_commits < 50
    with SqliteJournal(path) as journal, SqliteAdviceQueue(path) as queue:
        assert {e.transaction.id for e in journal.unfinished()} == {tx.id for tx in sales}
        assert {q.id for q in queue.pending()} == {tx.advice.id for tx in sales if tx.advice}


def test_one_failing_step_in_a_group_does_not_undo_the_others(path: Path) -> None:
    database = Database(path)

    def put(key: str) -> Step[None]:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO meta VALUES (?, 'x')", (key,))

        return Step(f"put {key}", run)

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta VALUES ('half', 'x')")
        raise RuntimeError("midway")

    outcomes = database.transact([put("a"), Step("fail", half_then_fail), put("b"), put("a")])
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], Failure) and isinstance(outcomes[1].error, RuntimeError)
    assert isinstance(outcomes[3], Failure)
    assert str(outcomes[3].error).startswith(f"cannot put a: {path}: UNIQUE constraint failed")
    assert (database.commits, database.writes) == (1, 2)
    keys = database.run(Step("keys", lambda c: c.execute("SELECT key FROM meta").fetchall()))
    assert {"a", "b"} <= {key for (key,) in keys}
    assert "half" not in {key for (key,) in keys}  # the failed step's savepoint was undone
    database.close()


# -- durability -----------------------------------------------------------------------------------

_WRITE_THEN_DIE = """
import json, os, signal, sys
from voucher_adapters.stores.sqlite import SqliteAdviceQueue, SqliteJournal
from voucher_core.messages import TenderAdvice
from voucher_core.snapshot import restore
from voucher_core.wire import from_json
path, advice, snapshot = sys.argv[1:4]
queue, journal = SqliteAdviceQueue(path), SqliteJournal(path)
queue.enqueue(from_json(TenderAdvice, advice), due=7.0)
journal.record(restore(json.loads(snapshot)), decision_deadline=9.0)
print("stored", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_was_reported_stored_survives_kill_9(path: Path, samples: Samples) -> None:
    tx = samples.confirming()
    assert tx.advice is not None
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    args = [str(path), to_json(tx.advice).decode(), json.dumps(snapshot(tx))]
    result = subprocess.run(
        [sys.executable, "-c", _WRITE_THEN_DIE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL and result.stdout == "stored\n"
    assert Path(f"{path}-wal").exists()  # killed: never checkpointed nor closed
    with SqliteAdviceQueue(path) as queue, SqliteJournal(path) as journal:
        [queued] = queue.pending()
        assert to_json(queued.advice) == to_json(tx.advice) and queue.next_due() == 7.0
        entry = journal.get(tx.id)
        assert entry is not None and entry.decision_deadline == 9.0
        assert snapshot(entry.transaction) == snapshot(tx)
