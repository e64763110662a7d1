"""The composition root: one Settings value in, a wired application out, closed in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from voucher_adapters.bootstrap import Settings, build, build_async, build_async_in_memory
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import cash, demo_request
from voucher_adapters.errors import MissingDatabase, SettingsError, StorageError
from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.stores.memory import InMemoryJournal
from voucher_adapters.stores.second_process import start_second_process
from voucher_adapters.stores.sqlite import SqliteAdviceQueue, SqliteJournal
from voucher_adapters.transports.in_process import InMemoryTransport
from voucher_core import State
from voucher_core.transaction import random_id


def test_settings_that_contradict_themselves_are_refused() -> None:
    with pytest.raises(SettingsError, match="choose one store"):
        Settings(db="pos.db", dsn="postgresql://127.0.0.1/test")
    with pytest.raises(SettingsError, match="choose one switch"):
        Settings(url="http://127.0.0.1:8080/suv/v1", simulator=SwitchSimulator())
    with pytest.raises(SettingsError, match="no db or dsn"):
        build_async_in_memory(Settings(db="pos.db"))


def test_the_default_application_sells_through_the_simulator_with_nothing_outside() -> None:
    clock = SimulatedClock()
    with build(Settings(clock=clock)) as app:
        assert app.journal is None  # memory stores guard nothing: no journal unless asked
        tx = app.driver.sell(demo_request(id=random_id(), time=clock.now()))
        assert tx.state is State.PROVISIONED
        app.driver.confirm(tx, cash(1000))
        assert app.driver.drain() is True
        assert tx.state is State.DONE and len(app.queue) == 0


def test_both_http_transports_take_the_connection_limit_from_the_settings() -> None:
    settings = Settings(url="http://127.0.0.1:1/suv/v1", max_connections=7)
    with build(settings) as app:
        assert app.transport.max_connections == 7  # type: ignore[attr-defined]

    async def limit() -> int:
        async with await build_async(settings) as app:
            return int(app.transport.max_connections)  # type: ignore[attr-defined]

    assert asyncio.run(limit()) == 7


def test_a_memory_journal_is_there_when_asked_for() -> None:
    with build(Settings(memory_journal=True)) as app:
        assert isinstance(app.journal, InMemoryJournal)


def test_a_durable_application_claims_its_owner_when_built_and_frees_it_when_closed(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "pos.db")
    app = build(Settings(db=db))
    try:
        refused = start_second_process({"db": db})  # a second till on the same file
        assert refused.refused, refused
        assert "another live process" in refused.output
    finally:
        app.close()
    taken = start_second_process({"db": db})
    assert taken.returncode == 0, taken


def test_closing_closes_every_part_the_application_made(tmp_path: Path) -> None:
    db = str(tmp_path / "pos.db")
    with build(Settings(db=db)) as app:
        journal, queue = app.journal, app.queue
        assert isinstance(journal, SqliteJournal) and isinstance(queue, SqliteAdviceQueue)
        forwarder = app.forwarder(interval=0.01)
    assert not forwarder._thread.is_alive()  # stopped first, before its stores closed
    with pytest.raises(StorageError):
        journal.entries()
    with pytest.raises(StorageError):
        queue.pending()


def test_a_transport_handed_in_is_used_and_left_open() -> None:
    transport = InMemoryTransport(SwitchSimulator(), username="voucher-demo")
    with build(Settings(transport=transport)) as app:
        assert app.transport is transport


def test_a_reading_command_refuses_a_database_that_is_not_there(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.db")
    with pytest.raises(MissingDatabase, match="no database at"):
        build(Settings(db=missing, create=False))
    assert not Path(missing).exists()


def test_the_async_application_sells_forwards_and_closes_in_order(tmp_path: Path) -> None:
    db = str(tmp_path / "pos.db")

    async def main() -> None:
        async with await build_async(Settings(db=db)) as app:
            tx = await app.driver.sell(demo_request(id=random_id(), time=app.clock.now()))
            await app.driver.confirm(tx, cash(1000))
            task = app.forwarder(interval=0.01)
            assert await app.driver.drain(timeout=10) is True
            assert tx.state is State.DONE
            refused = await asyncio.to_thread(start_second_process, {"db": db})
            assert refused.refused, refused
        assert task.done()

    asyncio.run(main())
    with SqliteJournal(db) as journal:
        [entry] = journal.entries()
        assert entry.transaction.state is State.DONE
