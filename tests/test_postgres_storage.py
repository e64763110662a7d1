"""PostgreSQL storage beyond the shared contracts: the schema and its migration, claiming with
SKIP LOCKED under leases with fencing tokens, failures (fail closed, no password in any
message), dropped connections, and the async twins.

The contracts themselves run in test_queue_contract.py and test_journal_contract.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from pg import PG_DSN, Proxy, fresh_schema, sql
from psycopg.conninfo import make_conninfo
from sqlite_samples import WHEN, Samples, same

from voucher_adapters.demo import cash
from voucher_adapters.stores.postgres import (
    SCHEMA_VERSION,
    AsyncPostgresAdviceQueue,
    AsyncPostgresJournal,
    PostgresAdviceQueue,
    PostgresJournal,
    StorageError,
    migrate,
    redact,
)
from voucher_adapters.stores.postgres.schema import (
    LOCK_CLASS,
    MIGRATIONS,
    connect_kwargs,
    timeouts_sql,
)
from voucher_core import State
from voucher_core.snapshot import snapshot_json
from voucher_core.wire import to_json


@pytest.fixture
def schema() -> Iterator[str]:
    with fresh_schema() as name:
        yield name


@pytest.fixture
def samples() -> Samples:
    return Samples()


def ids(taken: list[object]) -> list[str]:
    return [queued.id for queued in taken]  # type: ignore[attr-defined]


def with_settings(**settings: str) -> str:
    return make_conninfo(PG_DSN, **settings)


# -- the schema ---------------------------------------------------------------------------------


def test_migrate_creates_the_schema_once_and_records_its_version(schema: str) -> None:
    assert migrate(PG_DSN, schema=schema) == SCHEMA_VERSION == 2
    assert migrate(PG_DSN, schema=schema) == 2
    assert sql("SELECT version FROM {s}.schema_version ORDER BY 1", schema=schema) == [(1,), (2,)]
    tables = sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "ORDER BY table_name",
        schema,
    )
    assert tables == [("advice",), ("journal",), ("schema_version",)]
    with PostgresAdviceQueue(PG_DSN, schema=schema), PostgresJournal(PG_DSN, schema=schema):
        pass  # opening an up-to-date schema migrates nothing more
    assert sql("SELECT count(*) FROM {s}.schema_version", schema=schema) == [(2,)]


def test_a_schema_of_version_1_is_brought_up_to_date_keeping_its_rows(
    schema: str, samples: Samples
) -> None:
    tx = samples.provisioned()
    with psycopg.connect(PG_DSN, autocommit=True) as conn:  # as the first release left it
        conn.execute(f'CREATE SCHEMA "{schema}"')
        for statement in MIGRATIONS[0]:
            conn.execute(statement.replace("{s}", f'"{schema}"'))
        conn.execute(
            f'CREATE TABLE "{schema}".schema_version '
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(f'INSERT INTO "{schema}".schema_version (version) VALUES (1)')
        conn.execute(
            f'INSERT INTO "{schema}".journal (id, state, terminal, reconciliation, snapshot) '
            "VALUES (%s, 'PROVISIONED', false, false, %s)",
            (tx.id, snapshot_json(tx)),
        )
    with PostgresJournal(PG_DSN, schema=schema) as journal:
        assert [e.transaction.id for e in journal.unfinished()] == [tx.id]  # no owner: ours
    assert sql("SELECT max(version) FROM {s}.schema_version", schema=schema) == [(2,)]


def test_a_schema_from_a_newer_version_is_refused(schema: str) -> None:
    migrate(PG_DSN, schema=schema)
    sql("INSERT INTO {s}.schema_version (version) VALUES (3)", schema=schema)
    with pytest.raises(StorageError, match=r"has version 3, written by a newer voucher-core"):
        PostgresJournal(PG_DSN, schema=schema)
    with pytest.raises(ValueError, match="plain lower-case SQL name"):
        migrate(PG_DSN, schema='x"; DROP TABLE y; --')


def test_racing_migrations_wait_for_each_other_and_migrate_once(schema: str) -> None:
    results: list[int | BaseException] = []
    start = threading.Barrier(6)

    def run() -> None:
        start.wait()
        try:
            results.append(migrate(PG_DSN, schema=schema))
        except BaseException as error:  # pragma: no cover - reported by the assert below
            results.append(error)

    with psycopg.connect(PG_DSN, autocommit=True) as holder:
        # Hold the migration lock: every migrate() must queue behind it, none may go ahead.
        holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, schema))
        threads = [threading.Thread(target=run) for _ in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        assert results == []
        assert sql("SELECT count(*) FROM pg_namespace WHERE nspname = %s", schema) == [(0,)]
        holder.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, schema))
    for thread in threads:
        thread.join(timeout=20)
    assert results == [2] * 6
    assert sql("SELECT version FROM {s}.schema_version ORDER BY 1", schema=schema) == [(1,), (2,)]


def test_the_stored_rows_are_the_exact_bytes_and_readable_columns(
    schema: str, samples: Samples
) -> None:
    advice = samples.reversal()
    conflicted = samples.done_with_conflict()
    waiting = samples.provisioned()
    with PostgresAdviceQueue(PG_DSN, schema=schema, time_base="caller") as queue:
        queue.enqueue(advice, due=2.5)
        # committed when enqueue returns: another connection sees it at once
        rows = sql("SELECT kind, request_id, body, due, state FROM {s}.advice", schema=schema)
        assert rows == [("reversal", advice.request_id, to_json(advice), 2.5, "queued")]
    with PostgresJournal(PG_DSN, schema=schema) as journal:
        journal.record(conflicted)
        journal.record(waiting, decision_deadline=1_700_000_000.25)
        rows = sql(
            "SELECT id, state, terminal, reconciliation, snapshot, decision_deadline "
            "FROM {s}.journal ORDER BY seq",
            schema=schema,
        )
    assert rows == [
        (conflicted.id, "DONE", True, True, snapshot_json(conflicted), None),
        (waiting.id, "PROVISIONED", False, False, snapshot_json(waiting), 1_700_000_000.25),
    ]


# -- claiming, leases and fencing ---------------------------------------------------------------


def test_a_forwarder_whose_lease_was_taken_over_changes_nothing(
    schema: str, samples: Samples, caplog: pytest.LogCaptureFixture
) -> None:
    acked, parked, repeated, expired = (samples.confirmation() for _ in range(4))
    with (
        PostgresAdviceQueue(PG_DSN, schema=schema, lease=2.0, holder="A", time_base="caller") as a,
        PostgresAdviceQueue(PG_DSN, schema=schema, lease=2.0, holder="B", time_base="caller") as b,
        PostgresAdviceQueue(PG_DSN, schema=schema, lease=2.0, holder="C", time_base="caller") as c,
    ):
        a.enqueue_many([acked, parked, repeated, expired], due=0.0)
        assert len(a.take_due(0.0)) == 4
        assert b.take_due(1.99) == []  # A's lease holds
        stolen = b.take_due(2.0, limit=3)  # A stalled past its lease: B takes three over
        assert ids(stolen) == [acked.id, parked.id, repeated.id]
        assert [q.attempts for q in stolen] == [2, 2, 2]
        before = sql("SELECT * FROM {s}.advice ORDER BY seq", schema=schema)

        with caplog.at_level(logging.WARNING, logger="voucher_core.postgres"):
            a.acknowledge(acked.id)
            a.park(parked.id, reason="HTTP 400")
            a.repeat_later(repeated.id, due=0.0)
        assert a.fenced == 3
        assert sql("SELECT * FROM {s}.advice ORDER BY seq", schema=schema) == before
        assert "acknowledge of advice " + acked.id + " refused" in caplog.text
        assert "held by B, token 2; ours: 1" in caplog.text

        a.acknowledge(expired.id)  # expired, but no one took it over: still A's to settle
        c.acknowledge(acked.id)  # never taken by C, held by B: refused too
        assert a.fenced == 3 and c.fenced == 1
        assert len(a) == 3

        b.acknowledge(acked.id)
        b.park(parked.id, reason="HTTP 400")
        b.repeat_later(repeated.id, due=5.0)
        assert b.fenced == 0
        assert [p.queued.id for p in b.parked()] == [parked.id]
        assert ids(b.pending()) == [repeated.id]
        c.park(repeated.id, reason="by hand")  # free now: anyone may settle it
        assert [p.reason for p in c.parked()] == ["HTTP 400", "by hand"]


def test_a_row_another_forwarder_is_claiming_is_skipped_not_waited_for(
    schema: str, samples: Samples
) -> None:
    first, second = samples.confirmation(), samples.reversal()
    with PostgresAdviceQueue(PG_DSN, schema=schema) as queue:
        queue.enqueue_many([first, second], due=0.0)
        with psycopg.connect(PG_DSN) as other:  # a claim in progress elsewhere
            other.execute(f'SELECT 1 FROM "{schema}".advice WHERE id = %s FOR UPDATE', (first.id,))
            started = time.monotonic()
            assert ids(queue.take_due(1.0)) == [second.id]
            assert time.monotonic() - started < 1.0
            other.rollback()
        assert ids(queue.take_due(1.0)) == [first.id]


def test_queues_taking_from_threads_never_share_an_advice(schema: str, samples: Samples) -> None:
    advices = [samples.confirmation() for _ in range(400)]
    with PostgresAdviceQueue(PG_DSN, schema=schema) as setup:
        setup.enqueue_many(advices, due=0.0)
    taken: dict[str, list[str]] = {}
    together = threading.Barrier(4)

    def drain(holder: str) -> None:
        mine = taken.setdefault(holder, [])
        with PostgresAdviceQueue(PG_DSN, schema=schema, holder=holder, pool_size=1) as queue:
            together.wait()
            while batch := queue.take_due(time.monotonic(), limit=7):
                mine.extend(ids(batch))  # held for ever (lease 150 s): never handed out twice

    threads = [threading.Thread(target=drain, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    every = [advice_id for owned in taken.values() for advice_id in owned]
    assert sorted(every) == sorted(a.id for a in advices)  # each exactly once
    assert sum(1 for owned in taken.values() if owned) >= 2  # they really took side by side


def test_a_clock_gone_backwards_and_an_unreadable_row_leave_nothing_stuck(
    schema: str, samples: Samples
) -> None:
    waiting, held, soon, broken = (samples.reversal() for _ in range(4))
    with PostgresAdviceQueue(PG_DSN, schema=schema, lease=150.0, horizon=3600.0) as queue:
        queue.enqueue_many([waiting, held], due=100_000.0)
        sql("UPDATE {s}.advice SET due = due + 300 WHERE id = %s", waiting.id, schema=schema)
        queue.take_due(100_000.0, advice_id=held.id)
        # the clock restarted near zero: 100 000 s ahead is beyond any backoff or lease
        assert queue.next_due() == 100_000.0 + 150.0
        assert queue.next_due(now=5.0) == 5.0
        queue.enqueue(soon, due=10.0)
        queue.enqueue(broken, due=0.0)
        sql("UPDATE {s}.advice SET body = %s WHERE id = %s", b'{"id": 1}', broken.id, schema=schema)
        assert sorted(ids(queue.take_due(5.0))) == sorted([waiting.id, held.id])
        assert queue.take_due(9.0) == []
        assert ids(queue.take_due(10.0)) == [soon.id]
        query = "SELECT state, park_reason FROM {s}.advice WHERE id = %s"
        [parked] = sql(query, broken.id, schema=schema)
        assert parked[0] == "parked" and str(parked[1]).startswith("stored advice is unreadable")


# -- time: the server's clock --------------------------------------------------------------------


def host_clock(offset: float) -> Callable[[], float]:
    """The monotonic clock of a host booted ``offset`` seconds before this one."""
    return lambda: time.monotonic() + offset


def test_forwarders_on_hosts_with_unrelated_clocks_agree_on_due_times_and_leases(
    schema: str, samples: Samples
) -> None:
    """Three hosts whose monotonic clocks are days apart: the advice is not taken before it
    is due, not taken from a live lease, and taken over once that lease runs out."""
    advice = samples.confirmation()
    clocks = {"A": host_clock(0.0), "B": host_clock(900_000.0), "C": host_clock(-40_000.0)}
    queues = {
        name: PostgresAdviceQueue(PG_DSN, schema=schema, lease=1.0, holder=name, monotonic=clock)
        for name, clock in clocks.items()
    }
    a, b, c = queues["A"], queues["B"], queues["C"]
    try:
        a.enqueue(advice, due=clocks["A"]() + 0.6)
        assert b.take_due(clocks["B"]()) == [] and c.take_due(clocks["C"]()) == []
        assert abs(b.next_due() - (clocks["B"]() + 0.6)) < 0.2  # in B's own seconds
        time.sleep(0.7)
        assert ids(b.take_due(clocks["B"]())) == [advice.id]
        assert c.take_due(clocks["C"]()) == [] and a.take_due(clocks["A"]()) == []
        time.sleep(1.1)  # B died holding it
        assert ids(c.take_due(clocks["C"]())) == [advice.id]
        b.acknowledge(advice.id)  # fenced: C holds it now
        assert b.fenced == 1 and len(c) == 1
        c.acknowledge(advice.id)
        assert len(c) == 0
    finally:
        for queue in queues.values():
            queue.close()


def test_with_the_caller_time_base_unrelated_clocks_would_steal_a_live_lease(
    schema: str, samples: Samples
) -> None:
    """Why the server's clock is the default: the same two hosts, each speaking its own
    monotonic seconds, disagree about a lease that has more than a minute to run."""
    advice = samples.reversal()
    behind, ahead = host_clock(0.0), host_clock(900_000.0)
    with (
        PostgresAdviceQueue(PG_DSN, schema=schema, holder="A", time_base="caller") as a,
        PostgresAdviceQueue(PG_DSN, schema=schema, holder="B", time_base="caller") as b,
    ):
        assert a.enqueue(advice, due=ahead(), take=True) is not None
        assert ids(b.take_due(behind())) == [advice.id]  # taken twice: the hazard


def test_the_server_time_base_stores_the_servers_clock(schema: str, samples: Samples) -> None:
    advice = samples.reversal()
    with PostgresAdviceQueue(PG_DSN, schema=schema, monotonic=host_clock(-123_456.0)) as queue:
        assert queue.time_base == "server"
        queue.enqueue(advice, due=host_clock(-123_456.0)() + 30.0)
        [(stored, server_now)] = sql(
            "SELECT due, extract(epoch FROM clock_timestamp())::float8 FROM {s}.advice",
            schema=schema,
        )
        assert isinstance(stored, float) and isinstance(server_now, float)
        assert abs(stored - (server_now + 30.0)) < 1.0
        stats = queue.stats()
        assert stats["queued"] == 1
        assert abs(float(stats["oldest_due"] or 0) - (host_clock(-123_456.0)() + 30.0)) < 1.0
    with pytest.raises(ValueError, match="time base"):
        PostgresAdviceQueue(PG_DSN, schema=schema, time_base="local")  # type: ignore[arg-type]


# -- failures -----------------------------------------------------------------------------------


def test_a_row_locked_elsewhere_fails_the_write_after_the_timeout_not_never(
    schema: str, samples: Samples
) -> None:
    tx = samples.provisioned()
    with PostgresJournal(PG_DSN, schema=schema, timeout=1.0) as journal:
        journal.record(tx)
        with psycopg.connect(PG_DSN) as other:  # a session that holds the row and hangs
            other.execute(f'SELECT 1 FROM "{schema}".journal WHERE id = %s FOR UPDATE', (tx.id,))
            started = time.monotonic()
            with pytest.raises(StorageError, match=r"lock timeout|canceling statement"):
                journal.record(tx)
            assert time.monotonic() - started < 5.0
            other.rollback()
        journal.record(tx)  # and the journal carries on once the lock is gone
        entry = journal.get(tx.id)
        assert entry is not None and same(entry.transaction, tx)


def test_the_dsns_own_settings_win_over_the_added_ones() -> None:
    dsn = "postgresql://u@h/db?connect_timeout=30&options=-c%20statement_timeout%3D0"
    kwargs = connect_kwargs(dsn, 10.0)
    assert "connect_timeout" not in kwargs and kwargs["application_name"] == "voucher-core"
    # No startup options of its own (poolers refuse them); the DSN's stay in the DSN.
    assert "options" not in kwargs
    # The timeouts are SET after connecting, leaving out the one the DSN's options give.
    assert timeouts_sql(dsn, 10.0, local=False) == (
        "SELECT set_config('lock_timeout', '10000', false), "
        "set_config('idle_in_transaction_session_timeout', '60000', false)"
    )
    assert "', true)" in str(timeouts_sql(dsn, 10.0, local=True))


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://postgres:s3cret-pw@127.0.0.1:1/test",
        "host=127.0.0.1 port=1 user=postgres password=s3cret-pw dbname=test",
    ],
)
def test_an_unreachable_server_is_a_storage_error_without_the_password(dsn: str) -> None:
    for opening in (PostgresAdviceQueue, PostgresJournal, migrate):
        with pytest.raises(StorageError) as caught:
            opening(dsn, timeout=2)
        error = caught.value
        assert "s3cret-pw" not in f"{error} {error!r} {error.dsn} {error.reason}"
        assert str(error).startswith(f"cannot open the database: {redact(dsn)}: ")
        assert "127.0.0.1" in error.dsn and "port" in error.reason
        assert "Connection refused" in error.reason
    without = (
        "postgresql://postgres@127.0.0.1:1/test",
        "host=127.0.0.1 port=1 user=postgres dbname=test",
    )
    assert redact(dsn) in without


def test_a_refused_write_fails_closed(schema: str, samples: Samples) -> None:
    stored, refused = samples.confirmation(), samples.reversal()
    tx = samples.provisioned()
    with (
        PostgresAdviceQueue(PG_DSN, schema=schema) as queue,
        PostgresJournal(PG_DSN, schema=schema) as journal,
    ):
        queue.enqueue(stored, due=0.0)
        journal.record(tx, decision_deadline=7.0)
    read_only = with_settings(options="-c default_transaction_read_only=on")
    with (
        PostgresAdviceQueue(read_only, schema=schema) as queue,
        PostgresJournal(read_only, schema=schema) as journal,
    ):
        with pytest.raises(StorageError, match=f"cannot store advice {refused.id}: .*only .*reads"):
            queue.enqueue(refused, due=0.0)
        tx.confirm(cash(1000), now=WHEN, new_id=samples.ids)
        with pytest.raises(StorageError, match=f"cannot record transaction {tx.id}"):
            journal.record(tx)
        assert ids(queue.pending()) == [stored.id]  # reading still works
        entry = journal.get(tx.id)
        assert entry is not None and entry.transaction.state is State.PROVISIONED
        assert entry.decision_deadline == 7.0
        assert queue.commits == 0 and journal.commits == 0
    with pytest.raises(StorageError, match=r"cannot list queued advices: .*the storage was closed"):
        queue.pending()


def test_while_the_server_is_away_calls_fail_closed_and_then_carry_on(
    schema: str, samples: Samples
) -> None:
    before, during, after = (samples.confirmation() for _ in range(3))
    with Proxy() as proxy:
        dsn = proxy.dsn(password="pw-in-dsn")
        with PostgresAdviceQueue(dsn, schema=schema, timeout=2.0) as queue:
            queue.enqueue(before, due=0.0)
            proxy.stop()  # the server goes away: connections drop, new ones are refused
            started = time.monotonic()
            with pytest.raises(StorageError) as caught:
                queue.enqueue(during, due=0.0)
            assert 1.5 < time.monotonic() - started < 10
            message = str(caught.value)
            assert message.startswith(f"cannot store advice {during.id}: {redact(dsn)}: ")
            assert "no connection to the server within 2 s" in message
            assert "pw-in-dsn" not in message and "pw-in-dsn" in dsn
            proxy.start()  # back
            queue.enqueue(after, due=0.0)
            assert ids(queue.pending()) == [before.id, after.id]  # nothing half-stored


def backends(application: str) -> list[int]:
    rows = sql("SELECT pid FROM pg_stat_activity WHERE application_name = %s", application)
    return [int(str(pid)) for (pid,) in rows]


def kill_backends(application: str) -> int:
    rows = sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        application,
    )
    deadline = time.monotonic() + 5
    while backends(application) and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(rows)


def test_calls_carry_on_after_the_server_drops_the_connections(
    schema: str, samples: Samples
) -> None:
    application = f"test-{uuid.uuid4().hex[:12]}"
    dsn = with_settings(application_name=application)
    first, second, third = samples.confirmation(), samples.reversal(), samples.reversal()
    tx = samples.provisioned()
    with (
        PostgresAdviceQueue(dsn, schema=schema) as queue,
        PostgresJournal(dsn, schema=schema) as journal,
    ):
        queue.enqueue(first, due=0.0)
        journal.record(tx)
        before = backends(application)
        assert len(before) >= 2
        # A pool may be opening one more connection meanwhile (it grows while a call waits
        # for its first): every connection seen is among those dropped.
        assert kill_backends(application) >= len(before)
        queue.enqueue(second, due=0.0)  # on a new connection, not an error
        assert ids(queue.take_due(1.0)) == [first.id, second.id]
        assert [e.transaction.id for e in journal.unfinished()] == [tx.id]
        assert not set(backends(application)) & set(before)

    async def twin() -> list[str]:
        aqueue = AsyncPostgresAdviceQueue(dsn, schema=schema)
        assert ids(await aqueue.take_due(1000.0, advice_id=first.id)) == [first.id]
        await aqueue.acknowledge(first.id)
        assert kill_backends(application) >= 1
        await aqueue.enqueue(third, due=0.0)
        pending = ids(await aqueue.pending())
        await aqueue.aclose()
        return pending

    assert asyncio.run(twin()) == [second.id, third.id]


# -- the async twins ----------------------------------------------------------------------------


def test_the_async_twins_round_trip_and_outlive_their_event_loop(
    schema: str, samples: Samples
) -> None:
    advices = [samples.confirmation() for _ in range(40)]
    transactions = samples.every_state()
    aqueue = AsyncPostgresAdviceQueue(PG_DSN, schema=schema, lease=30.0)
    ajournal = AsyncPostgresJournal(PG_DSN, schema=schema)

    parked: list[str] = []  # enqueued concurrently: which advice comes first is not known

    async def first() -> None:
        await asyncio.gather(*(aqueue.enqueue(a, due=1.0) for a in advices))
        await asyncio.gather(*(ajournal.record(tx, decision_deadline=3.0) for tx in transactions))
        assert aqueue.commits == 40 and ajournal.commits == len(transactions)
        taken = await aqueue.take_due(1.0, limit=5)
        await aqueue.park(taken[0].id, reason="HTTP 400")
        parked.append(taken[0].id)
        await aqueue.repeat_later(taken[1].id, due=2.0)
        assert await aqueue.next_due() == 1.0
        assert await aqueue.stats() == {"queued": 36, "leased": 3, "parked": 1, "oldest_due": 1.0}

    async def second() -> None:  # a new event loop: the twins open a new pool in it
        assert [p.reason for p in await aqueue.parked()] == ["HTTP 400"]
        assert await aqueue.requeue(parked[0], due=0.0)
        assert ids(await aqueue.take_due(0.0)) == [parked[0]]
        await aqueue.acknowledge(parked[0])
        assert len(await aqueue.pending()) == 39
        # recorded concurrently: in whatever order they reached the server
        restored = {e.transaction.id: e.transaction for e in await ajournal.entries()}
        assert restored.keys() == {tx.id for tx in transactions}
        assert all(same(restored[tx.id], tx) for tx in transactions)
        unfinished = {e.transaction.id for e in await ajournal.unfinished()}
        assert unfinished == {tx.id for tx in transactions if not tx.terminal}
        entry = await ajournal.get(transactions[0].id)
        assert entry is not None and entry.decision_deadline == 3.0

    asyncio.run(first())
    asyncio.run(second())
    assert aqueue.sync.stats()["parked"] == 0
    assert len(ajournal.sync) == len(transactions)
    asyncio.run(ajournal.aclose())
    asyncio.run(aqueue.aclose())
    with pytest.raises(StorageError, match="the storage was closed"):
        asyncio.run(aqueue.stats())


def test_the_stores_borrow_from_a_hosts_pool_and_leave_it_open(
    schema: str, samples: Samples
) -> None:
    import psycopg_pool  # noqa: PLC0415

    with psycopg_pool.ConnectionPool(PG_DSN, min_size=1, max_size=2, open=True) as pool:
        queue = PostgresAdviceQueue(PG_DSN, schema=schema, pool=pool)
        journal = PostgresJournal(PG_DSN, schema=schema, pool=pool)
        advice, tx = samples.confirmation(), samples.provisioned()
        queue.enqueue(advice, due=0.0)
        journal.record(tx)
        assert ids(queue.take_due(1.0)) == [advice.id]
        assert [e.transaction.id for e in journal.unfinished()] == [tx.id]

        def lock_timeout():  # type: ignore[no-untyped-def]
            _, rows = yield ("SHOW lock_timeout", ())
            return rows[0][0]

        # Connections the store did not open get the timeouts in each transaction.
        assert queue.database.run("read lock_timeout", lock_timeout, write=False) == "10s"
        queue.close()
        journal.close()
        assert not pool.closed
        with pool.connection() as conn:
            assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)  # nothing leaked
        with pytest.raises(StorageError, match="closed"):
            queue.stats()
