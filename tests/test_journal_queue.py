"""A state change and the advice it queues, in one commit, on a real SQLite file and in a real
PostgreSQL schema (skipped with the reason when no server answers).

The composition root hands the driver its journal and queue as one ``JournalQueue`` whenever
they share a database. A confirmation the queue refuses (a trigger here, as a full disk or a
broken constraint would) then takes the state change down with it: the journal still says
PROVISIONED, and the queue holds nothing, so neither one claims an advice the other lacks.
A sale settled by its confirmation's acknowledgement journals DONE in the commit that takes
the advice out of the queue. Stores in separate databases keep the order of two writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg import fresh_schema, sql

from voucher_adapters.bootstrap import Settings, build, build_async
from voucher_adapters.clock import SystemClock
from voucher_adapters.demo import cash, demo_request
from voucher_adapters.errors import StorageError
from voucher_adapters.stores.postgres import (
    AsyncPostgresAdviceQueue,
    AsyncPostgresJournal,
    AsyncPostgresJournalQueue,
    PostgresAdviceQueue,
    PostgresJournal,
    PostgresJournalQueue,
)
from voucher_adapters.stores.sqlite import (
    AsyncSqliteAdviceQueue,
    AsyncSqliteJournal,
    AsyncSqliteJournalQueue,
    SqliteAdviceQueue,
    SqliteJournal,
    SqliteJournalQueue,
)
from voucher_core import AsyncDriver, Driver, DriverSettings, State
from voucher_core.errors import InvalidArgument
from voucher_core.policy import DUAL

REFUSE_ADVICE_SQLITE = (
    "CREATE TRIGGER refuse_advice BEFORE INSERT ON advice "
    "BEGIN SELECT RAISE(ABORT, 'the queue refuses advices'); END"
)


def request() -> Any:
    return demo_request(id=str(uuid.uuid4()), time=SystemClock().now())


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The settings of one database holding both: a SQLite file, or a fresh schema."""
    if request.param == "sqlite":
        yield {"db": str(tmp_path / "till.db")}
        return
    with fresh_schema() as schema:
        from pg import PG_DSN  # noqa: PLC0415

        yield {"dsn": PG_DSN, "schema": schema}


def refuse_advices(where: dict[str, str]) -> None:
    if "db" in where:
        with sqlite3.connect(where["db"]) as conn:
            conn.execute(REFUSE_ADVICE_SQLITE)
        return
    sql(
        "CREATE FUNCTION {s}.refuse_advice() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the queue refuses advices'; END $$",
        schema=where["schema"],
    )
    sql(
        "CREATE TRIGGER refuse_advice BEFORE INSERT ON {s}.advice "
        "FOR EACH ROW EXECUTE FUNCTION {s}.refuse_advice()",
        schema=where["schema"],
    )


def settings(where: dict[str, str]) -> Settings:
    return Settings(driver=DriverSettings(profile=DUAL), **where)  # type: ignore[arg-type]


def test_a_confirmation_the_queue_refuses_leaves_the_sale_as_the_journal_had_it(
    where: dict[str, str],
) -> None:
    with build(settings(where)) as app:
        assert app.driver.journal_queue is not None
        tx = app.driver.sell(request())
        assert tx.state is State.PROVISIONED
        refuse_advices(where)
        with pytest.raises(StorageError, match="refuses advices"):
            app.driver.confirm(tx, cash(1000))
        assert tx.state is State.PROVISIONED  # back to what the journal holds
        entry = app.journal.get(tx.id) if app.journal is not None else None
        assert entry is not None and entry.transaction.state is State.PROVISIONED
        assert len(app.queue) == 0


def test_asyncio_a_confirmation_the_queue_refuses_leaves_the_sale_as_the_journal_had_it(
    where: dict[str, str],
) -> None:
    asyncio.run(refused_async(where))


async def refused_async(where: dict[str, str]) -> None:
    async with await build_async(settings(where)) as app:
        assert app.driver.journal_queue is not None
        tx = await app.driver.sell(request())
        refuse_advices(where)
        with pytest.raises(StorageError, match="refuses advices"):
            await app.driver.confirm(tx, cash(1000))
        assert tx.state is State.PROVISIONED
        assert app.journal is not None
        entry = await app.journal.get(tx.id)
        assert entry is not None and entry.transaction.state is State.PROVISIONED
        assert await app.queue.pending() == []


def test_a_confirmed_sale_is_four_commits_on_one_file_and_six_on_two_writes(
    tmp_path: Path,
) -> None:
    """The pair saves two commits a dual sale: the confirmation with CONFIRMING, its
    acknowledgement with DONE."""
    with build(settings({"db": str(tmp_path / "together.db")})) as app:
        database = app.driver.journal_queue.journal.database  # type: ignore[union-attr]
        before = database.commits
        for _ in range(3):
            tx = app.driver.confirm(app.driver.sell(request()), cash(1000))
            assert tx.state is State.DONE
        assert database.commits - before == 3 * 4
    path = tmp_path / "apart.db"
    with SqliteJournal(path) as journal, SqliteAdviceQueue(path) as queue:
        app = build(settings({"db": str(path)}))
        app.close()
        driver = Driver(
            app.transport, queue, clock=SystemClock(), journal=journal, settings=app.driver.settings
        )
        for _ in range(3):
            tx = driver.confirm(driver.sell(request()), cash(1000))
            assert tx.state is State.DONE
        assert journal.commits + queue.commits == 3 * 6
        assert len(queue) == 0


def test_a_journal_and_a_queue_in_different_places_cannot_be_paired(tmp_path: Path) -> None:
    with (
        SqliteJournal(tmp_path / "a.db") as journal,
        SqliteAdviceQueue(tmp_path / "b.db") as queue,
        pytest.raises(InvalidArgument, match="different files"),
    ):
        SqliteJournalQueue(journal, queue)


def test_a_driver_needs_the_journal_of_its_pair(tmp_path: Path) -> None:
    path = tmp_path / "till.db"
    with SqliteJournal(path) as journal:
        queue = SqliteAdviceQueue(path, database=journal.database)
        pair = SqliteJournalQueue(journal, queue)
        app = build(Settings())
        with pytest.raises(InvalidArgument, match="pass both"):
            Driver(app.transport, queue, clock=SystemClock(), journal_queue=pair)
        app.close()


def test_async_twins_pair_on_one_file_and_one_group_commit(tmp_path: Path) -> None:
    asyncio.run(paired_async(tmp_path))


async def paired_async(tmp_path: Path) -> None:
    path = tmp_path / "till.db"
    journal = AsyncSqliteJournal(path, commit_on="loop")
    queue = AsyncSqliteAdviceQueue(path, journal=journal)
    pair = AsyncSqliteJournalQueue(journal, queue)
    app = await build_async(Settings())
    driver = AsyncDriver(
        app.transport,
        queue,
        clock=SystemClock(),
        journal=journal,
        journal_queue=pair,
        settings=DriverSettings(profile=DUAL),
    )
    sales = [driver.sell(request(), tenders=cash(1000)) for _ in range(20)]
    done = await asyncio.gather(*sales)
    assert {tx.state for tx in done} == {State.DONE}
    assert journal.commits < 20 * 3  # the sales shared commits, queue calls included
    assert await queue.pending() == []
    await queue.aclose()
    await journal.aclose()
    await app.aclose()


def test_postgres_pairs_refuse_another_schema() -> None:
    with fresh_schema() as one, fresh_schema() as other:
        from pg import PG_DSN  # noqa: PLC0415

        journal = PostgresJournal(PG_DSN, schema=one, pool_size=1)
        queue = PostgresAdviceQueue(PG_DSN, schema=other, pool_size=1)
        try:
            with pytest.raises(InvalidArgument, match="different places"):
                PostgresJournalQueue(journal, queue)
            aj = AsyncPostgresJournal(PG_DSN, schema=one)
            aq = AsyncPostgresAdviceQueue(PG_DSN, schema=other)
            with pytest.raises(InvalidArgument, match="different places"):
                AsyncPostgresJournalQueue(aj, aq)
        finally:
            queue.close()
            journal.close()
