"""The TransactionJournal contract, run against every adapter; then what only SQLite adds.

Transactions are built through the core (``Transaction.begin`` and the replies that move it),
one in every state, including the flags a restart must not lose (reconciliation, host timed
out). A journal entry must restore to the same snapshot it was recorded from.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pg import PG_DSN, fresh_schema
from sqlite_samples import ALL_STATES, WHEN, Samples, same

from voucher_adapters.demo import cash
from voucher_adapters.stores.memory import AsyncInMemoryJournal, InMemoryJournal
from voucher_adapters.stores.postgres import AsyncPostgresJournal, PostgresJournal
from voucher_adapters.stores.sqlite import AsyncSqliteJournal, SqliteJournal
from voucher_core import State
from voucher_core.ports import AsyncTransactionJournal, TransactionJournal
from voucher_core.replies import Acknowledged
from voucher_core.snapshot import snapshot, snapshot_json
from voucher_core.table import TERMINAL
from voucher_core.wire import to_json

Journal = InMemoryJournal | SqliteJournal | PostgresJournal


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "memory":
        yield InMemoryJournal()
        return
    if request.param == "postgres":
        with fresh_schema() as schema, PostgresJournal(PG_DSN, schema=schema) as postgres_journal:
            yield postgres_journal
        return
    sqlite_journal = SqliteJournal(tmp_path / "voucher.db")
    yield sqlite_journal
    sqlite_journal.close()


@pytest.fixture
def samples() -> Samples:
    return Samples()


# -- the stored form ----------------------------------------------------------------------------


def test_the_stored_text_reads_back_as_the_snapshot_in_every_state(samples: Samples) -> None:
    for tx in samples.every_state():
        assert json.loads(snapshot_json(tx)) == snapshot(tx)
        assert snapshot_json(tx) == snapshot_json(tx)  # the second time from the memo


def test_the_stored_text_follows_the_transaction_as_it_moves(samples: Samples) -> None:
    """Messages are serialised once and reused; a new message (the advice) is picked up."""
    tx = samples.provisioned()
    before = snapshot_json(tx)
    tx.confirm(cash(1000), now=WHEN, new_id=samples.ids)
    after = snapshot_json(tx)
    assert json.loads(before)["state"] == "PROVISIONED" and "advice" not in json.loads(before)
    assert json.loads(after) == snapshot(tx)
    assert tx.advice is not None
    assert json.loads(after)["advice"]["message"]["id"] == tx.advice.id
    assert json.loads(after)["request"] == json.loads(before)["request"]


# -- the contract -------------------------------------------------------------------------------


def test_every_state_round_trips_with_its_deadline(journal: Journal, samples: Samples) -> None:
    port: TransactionJournal = journal
    transactions = samples.every_state()
    assert {tx.state for tx in transactions} == ALL_STATES
    for n, tx in enumerate(transactions):
        port.record(tx, decision_deadline=1_700_000_000.5 + n if n % 2 else None)
    for n, tx in enumerate(transactions):
        entry = port.get(tx.id)
        assert entry is not None
        assert same(entry.transaction, tx), tx.state
        assert entry.transaction is not tx
        assert entry.decision_deadline == (1_700_000_000.5 + n if n % 2 else None)
        assert entry.transaction.state is tx.state
        if tx.advice is not None:  # the advice repeats byte for byte after a restore
            assert entry.transaction.advice is not None
            assert to_json(entry.transaction.advice) == to_json(tx.advice)
    assert port.get("never-recorded") is None


def test_flags_a_restart_must_not_lose_are_kept(journal: Journal, samples: Samples) -> None:
    conflicted, timed_out = samples.done_with_conflict(), samples.declined_after_host_timeout()
    journal.record(conflicted)
    journal.record(timed_out)
    restored_conflict = journal.get(conflicted.id)
    restored_timeout = journal.get(timed_out.id)
    assert restored_conflict is not None and restored_timeout is not None
    assert restored_conflict.transaction.reconciliation == "conflict: already reversed"
    assert restored_timeout.transaction.host_timed_out


def test_unfinished_lists_exactly_the_non_terminal_ones_in_order(
    journal: Journal, samples: Samples
) -> None:
    transactions = samples.every_state()
    for tx in transactions:
        journal.record(tx)
    expected = [tx.id for tx in transactions if tx.state not in TERMINAL]
    assert [e.transaction.id for e in journal.unfinished()] == expected
    assert {e.transaction.state for e in journal.unfinished()} == ALL_STATES - TERMINAL


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Journal]]:
    """Opens journals on one durable store, each as the owner it is given."""
    opened: list[SqliteJournal | PostgresJournal] = []
    if request.param == "postgres":
        with fresh_schema() as schema:

            def open_postgres(owner: str | None) -> Journal:
                opened.append(PostgresJournal(PG_DSN, schema=schema, owner=owner))
                return opened[-1]

            yield open_postgres
            for journal in opened:
                journal.close()
        return

    def open_sqlite(owner: str | None) -> Journal:
        opened.append(SqliteJournal(tmp_path / "voucher.db", owner=owner))
        return opened[-1]

    yield open_sqlite
    for journal in opened:
        journal.close()


def test_processes_sharing_a_journal_each_see_only_their_own_unfinished_sales(
    shared: Callable[..., Journal], samples: Samples
) -> None:
    """What recover() resumes: a restarted lane never takes over a sale another live lane is
    driving; a lane that will not come back is taken over by opening the journal under its
    name (``voucher recover --owner``)."""
    lane_1, lane_2, alone = shared("lane-1"), shared("lane-2"), shared(None)
    mine, theirs, unowned, done = (
        samples.provisioned(),
        samples.retrying(),
        samples.provisioning(),
        samples.done_with_conflict(),
    )
    lane_1.record(mine)
    lane_1.record(done)
    lane_2.record(theirs)
    alone.record(unowned)
    assert [e.transaction.id for e in lane_1.unfinished()] == [mine.id]
    assert [e.transaction.id for e in lane_2.unfinished()] == [theirs.id]
    assert [e.transaction.id for e in alone.unfinished()] == [unowned.id]
    assert {e.transaction.id for e in lane_2.entries()} == {mine.id, done.id, theirs.id, unowned.id}
    lane_2_again = shared("lane-2")  # lane 2 restarted, or an operator standing in for it
    assert [e.transaction.id for e in lane_2_again.unfinished()] == [theirs.id]
    lane_2_again.record(mine)  # a sale recorded by another owner becomes that owner's
    assert [e.transaction.id for e in lane_1.unfinished()] == []
    assert [e.transaction.id for e in lane_2.unfinished()] == [mine.id, theirs.id]


def test_entries_keep_first_recorded_order_and_a_re_record_overwrites(
    journal: Journal, samples: Samples
) -> None:
    first, second, third = samples.provisioned(), samples.provisioning(), samples.retrying()
    for tx in (first, second, third):
        journal.record(tx)
    journal.record(first, decision_deadline=99.0)
    first.confirm(cash(1000), now=WHEN)
    journal.record(first, decision_deadline=None)
    assert [e.transaction.id for e in journal.entries()] == [first.id, second.id, third.id]
    assert len(journal) == 3
    entry = journal.get(first.id)
    assert entry is not None
    assert entry.transaction.state is State.CONFIRMING and entry.decision_deadline is None
    assert same(entry.transaction, first)

    first.advice_replied(Acknowledged(202))
    journal.record(first)
    assert [e.transaction.id for e in journal.unfinished()] == [second.id, third.id]
    assert [e.transaction.state for e in journal.entries()] == [
        State.DONE,
        State.PROVISIONING,
        State.RETRYING,
    ]


def test_the_journal_keeps_a_snapshot_not_the_live_object(
    journal: Journal, samples: Samples
) -> None:
    tx = samples.provisioned()
    journal.record(tx, decision_deadline=10.0)
    recorded = snapshot(tx)
    tx.cancel(now=WHEN, new_id=samples.ids)  # moves on, not recorded
    entry = journal.get(tx.id)
    assert entry is not None
    assert snapshot(entry.transaction) == recorded
    assert entry.transaction.state is State.PROVISIONED


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def ajournal(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[AsyncInMemoryJournal | AsyncSqliteJournal | AsyncPostgresJournal]:
    if request.param == "memory":
        yield AsyncInMemoryJournal()
        return
    if request.param == "postgres":
        with fresh_schema() as schema:
            postgres_twin = AsyncPostgresJournal(PG_DSN, schema=schema)
            yield postgres_twin
            asyncio.run(postgres_twin.aclose())
        return
    twin = AsyncSqliteJournal(tmp_path / "voucher.db")
    yield twin
    asyncio.run(twin.aclose())


def test_the_async_twins_honour_the_same_contract(
    ajournal: AsyncInMemoryJournal | AsyncSqliteJournal, samples: Samples
) -> None:
    port: AsyncTransactionJournal = ajournal
    transactions = samples.every_state()

    async def flow() -> None:
        for tx in transactions:
            await port.record(tx, decision_deadline=5.0)
        for tx in transactions:
            entry = await port.get(tx.id)
            assert entry is not None and same(entry.transaction, tx)
            assert entry.decision_deadline == 5.0
        assert await port.get("never-recorded") is None
        unfinished = [e.transaction.id for e in await port.unfinished()]
        assert unfinished == [tx.id for tx in transactions if not tx.terminal]
        assert [e.transaction.id for e in await port.entries()] == [tx.id for tx in transactions]

    asyncio.run(flow())
    assert len(ajournal.sync) == len(transactions)


# -- SQLite only ----------------------------------------------------------------------------------


def test_everything_survives_closing_and_reopening_the_file(
    tmp_path: Path, samples: Samples
) -> None:
    path = tmp_path / "voucher.db"
    transactions = samples.every_state()
    with SqliteJournal(path) as journal:
        for n, tx in enumerate(transactions):
            journal.record(tx, decision_deadline=float(n))
    with SqliteJournal(path) as journal:
        entries = journal.entries()
        assert [e.transaction.id for e in entries] == [tx.id for tx in transactions]
        for n, (entry, tx) in enumerate(zip(entries, transactions, strict=True)):
            assert same(entry.transaction, tx) and entry.decision_deadline == float(n)
        assert len(journal.unfinished()) == 5


def test_concurrent_writers_on_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "voucher.db"
    shared = SqliteJournal(path)
    recorded: dict[str, object] = {}
    lock = threading.Lock()

    def write(seed: int, own_connection: bool) -> None:
        samples = Samples(seed)
        journal = SqliteJournal(path) if own_connection else shared
        for _ in range(15):
            tx = samples.provisioned()
            journal.record(tx, decision_deadline=float(seed))
            tx.confirm(cash(1000), now=WHEN, new_id=samples.ids)
            journal.record(tx)
            with lock:
                recorded[tx.id] = snapshot(tx)
        if own_connection:
            journal.close()

    threads = [threading.Thread(target=write, args=(n, n % 2 == 0)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    shared.close()
    with SqliteJournal(path) as journal:
        entries = journal.entries()
        assert len(entries) == 90
        assert {e.transaction.id: snapshot(e.transaction) for e in entries} == recorded
        assert all(e.transaction.state is State.CONFIRMING for e in journal.unfinished())
        assert all(e.decision_deadline is None for e in entries)
