"""Background delivery inside a host process: a thread, and an asyncio task."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from voucher_adapters.clock import SystemClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.forwarder import ForwarderThread, forward_forever
from voucher_adapters.simulator import FaultKind, Operation, SwitchSimulator
from voucher_adapters.stores.sqlite import (
    AsyncSqliteAdviceQueue,
    AsyncSqliteJournal,
    SqliteAdviceQueue,
    SqliteJournal,
)
from voucher_adapters.transports.in_process import AsyncInMemoryTransport, InMemoryTransport
from voucher_core import (
    AsyncDriver,
    BackoffPolicy,
    DecisionPolicy,
    Driver,
    DriverSettings,
    State,
)

QUICK = DriverSettings(backoff=BackoffPolicy(initial=0.05, ceiling=0.2))


def wait_until(check: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_the_forwarder_thread_delivers_what_the_switch_refused_at_first(tmp_path: Path) -> None:
    switch = SwitchSimulator(seed=1)
    switch.faults.script(Operation.CONFIRM, FaultKind.UNAVAILABLE, times=3)
    db = tmp_path / "voucher.db"
    queue, journal = SqliteAdviceQueue(db), SqliteJournal(db)
    driver = Driver(
        InMemoryTransport(switch, username=DEMO_CLIENT_ID),
        queue,
        clock=SystemClock(),
        journal=journal,
        settings=QUICK,
    )
    ids = SeededIds(1)
    tx = driver.sell(demo_request(id=ids(), time=SystemClock().now()), tenders=cash(1000))
    assert tx.state is State.CONFIRMING and len(queue) == 1
    with ForwarderThread(driver, interval=0.02) as forwarder:
        assert wait_until(lambda: tx.state is State.DONE), "the confirmation was not delivered"
    assert forwarder.last_error is None and forwarder.rounds > 0
    assert len(queue) == 0
    entry = journal.get(tx.id)
    assert entry is not None and entry.transaction.state is State.DONE
    queue.close()
    journal.close()


def test_the_forwarder_thread_survives_errors_and_stops_when_asked() -> None:
    class Broken:
        def forward(self) -> int:
            raise OSError("disk unplugged")

        def expire_decisions(self) -> list[object]:
            return []

    forwarder = ForwarderThread(Broken(), interval=0.01).start()  # type: ignore[arg-type]
    assert wait_until(lambda: forwarder.rounds >= 3)
    forwarder.stop(timeout=5)
    assert isinstance(forwarder.last_error, OSError)
    assert not forwarder._thread.is_alive()


def test_forward_forever_delivers_and_expires_in_an_event_loop(tmp_path: Path) -> None:
    async def scenario() -> tuple[State, State]:
        switch = SwitchSimulator(seed=2)
        switch.faults.script(Operation.REVERSE, FaultKind.SERVER_ERROR, times=2)
        db = tmp_path / "voucher.db"
        queue, journal = AsyncSqliteAdviceQueue(db), AsyncSqliteJournal(db)
        settings = DriverSettings(
            backoff=BackoffPolicy(initial=0.05, ceiling=0.2),
            decision=DecisionPolicy(limit=0.2),
        )
        driver = AsyncDriver(
            AsyncInMemoryTransport(switch, username=DEMO_CLIENT_ID),
            queue,
            clock=SystemClock(),
            journal=journal,
            settings=settings,
        )
        ids = SeededIds(2)
        waiting = await driver.sell(demo_request(id=ids(), time=SystemClock().now()))
        assert waiting.state is State.PROVISIONED
        stop = asyncio.Event()
        task = asyncio.create_task(forward_forever(driver, stop, interval=0.02))
        for _ in range(500):
            if waiting.state is State.DECLINED:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
        stored = await journal.get(waiting.id)
        await queue.aclose()
        await journal.aclose()
        assert stored is not None
        return waiting.state, stored.transaction.state

    live, stored = asyncio.run(scenario())
    assert live is State.DECLINED and stored is State.DECLINED
