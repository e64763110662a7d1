"""A trace observer that raises (a metrics backend down) never stops a sale.

``DriverSettings.observer`` is told every state change, queued advice, settled advice and
awaited decision. If it raises, the driver logs it on ``voucher_core.driver`` (once per outage,
not once per trace) and goes on: ``sell()``, ``confirm()`` and ``forward()`` return as they
would have, and the journal holds every step. Real parts: the drivers, SQLite stores on a
file, the switch simulator behind the in-process transport.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import Provider, SwitchSimulator
from voucher_adapters.stores.sqlite import (
    AsyncSqliteAdviceQueue,
    AsyncSqliteJournal,
    SqliteAdviceQueue,
    SqliteJournal,
)
from voucher_adapters.transports.in_process import AsyncInMemoryTransport, InMemoryTransport
from voucher_core import AsyncDriver, Driver, DriverSettings, Outcome, State
from voucher_core.drivers import StateChanged, Trace
from voucher_core.messages import ProvisionRequest
from voucher_core.policy import DUAL, SINGLE, ProviderProfile

PROVIDERS = (
    Provider("dualco", DUAL, frozenset({"DUAL1"})),
    Provider("singleco", SINGLE, frozenset({"SINGLE1"})),
)
PROFILES = {"DUAL1": DUAL, "SINGLE1": SINGLE}


class MetricsDown(ConnectionError):
    pass


class Metrics:
    """An observer whose backend is down while ``down`` is set."""

    def __init__(self, *, down: bool = True) -> None:
        self.down = down
        self.seen: list[Trace] = []

    def __call__(self, trace: Trace) -> None:
        if self.down:
            raise MetricsDown("metrics backend unreachable")
        self.seen.append(trace)


def profile_of(request: ProvisionRequest) -> ProviderProfile:
    assert request.product is not None
    return PROFILES[request.product.product_id]


def driver_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "voucher_core.driver"]


def test_a_raising_observer_never_makes_sell_confirm_or_forward_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="voucher_core")
    db = tmp_path / "pos.db"
    switch = SwitchSimulator(PROVIDERS, seed=4)
    clock, ids, metrics = SimulatedClock(), SeededIds(4), Metrics()
    journal, queue = SqliteJournal(db), SqliteAdviceQueue(db)
    driver = Driver(
        InMemoryTransport(switch, username=DEMO_CLIENT_ID),
        queue,
        clock=clock,
        journal=journal,
        settings=DriverSettings(profile=profile_of, new_id=ids, observer=metrics),
    )
    try:
        single = driver.sell(demo_request(id=ids(), time=clock.now(), product_id="SINGLE1"))
        dual = driver.sell(demo_request(id=ids(), time=clock.now(), product_id="DUAL1"))
        assert single.state is State.DONE and dual.state is State.PROVISIONED
        driver.confirm(dual, cash(1000))
        assert dual.outcome is Outcome.APPROVED
        driver.forward()
        waiting = driver.sell(demo_request(id=ids(), time=clock.now(), product_id="DUAL1"))
        driver.cancel(waiting)
        assert driver.drain(timeout=600)
        # The journal is not left behind: every sale holds its last step.
        stored = {e.transaction.id: e.transaction for e in journal.entries()}
        assert stored[single.id].state is State.DONE and stored[single.id].reconciliation is None
        assert stored[dual.id].state is State.DONE
        assert stored[waiting.id].state is State.DECLINED
        switch.pump()
        assert switch.voucher_active(single.id) and switch.voucher_active(dual.id)
        assert not switch.voucher_active(waiting.id)
        # Logged once for the outage, naming what it failed on, with the cause.
        [record] = driver_logs(caplog)
        assert record.levelno == logging.WARNING and "observer failed" in record.getMessage()
        assert single.id in record.getMessage()
        assert record.exc_info is not None and isinstance(record.exc_info[1], MetricsDown)
        # When the backend is back, it hears the traces again, and the log says so.
        metrics.down = False
        back = driver.sell(demo_request(id=ids(), time=clock.now(), product_id="SINGLE1"))
        assert StateChanged(back.id, State.PROVISIONED, State.DONE) in metrics.seen
        assert "works again" in driver_logs(caplog)[-1].getMessage()
    finally:
        queue.close()
        journal.close()


def test_an_observer_that_fails_on_one_trace_leaves_the_rest_of_the_sale_alone(
    tmp_path: Path,
) -> None:
    """It raises on the voucher's arrival only: everything after is still traced and done."""
    db = tmp_path / "pos.db"
    switch = SwitchSimulator(PROVIDERS, seed=6)
    clock, ids = SimulatedClock(), SeededIds(6)
    seen: list[Trace] = []

    def picky(trace: Trace) -> None:
        if isinstance(trace, StateChanged) and trace.dest is State.PROVISIONED:
            raise MetricsDown("metrics backend unreachable")
        seen.append(trace)

    journal, queue = SqliteJournal(db), SqliteAdviceQueue(db)
    driver = Driver(
        InMemoryTransport(switch, username=DEMO_CLIENT_ID),
        queue,
        clock=clock,
        journal=journal,
        settings=DriverSettings(profile=profile_of, new_id=ids, observer=picky),
    )
    try:
        tx = driver.sell(
            demo_request(id=ids(), time=clock.now(), product_id="DUAL1"), tenders=cash(1000)
        )
        assert tx.state is State.DONE
        entry = journal.get(tx.id)
        assert entry is not None and entry.transaction.state is State.DONE
        assert StateChanged(tx.id, State.CONFIRMING, State.DONE) in seen
    finally:
        queue.close()
        journal.close()


def test_the_asyncio_driver_goes_on_past_a_raising_observer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="voucher_core")

    async def run() -> None:
        db = tmp_path / "pos.db"
        switch = SwitchSimulator(PROVIDERS, seed=9)
        clock, ids = SimulatedClock(), SeededIds(9)
        journal = await asyncio.to_thread(AsyncSqliteJournal, db)
        queue = await asyncio.to_thread(AsyncSqliteAdviceQueue, db)
        driver = AsyncDriver(
            AsyncInMemoryTransport(switch, username=DEMO_CLIENT_ID),
            queue,
            clock=clock,
            journal=journal,
            settings=DriverSettings(profile=profile_of, new_id=ids, observer=Metrics()),
        )
        try:
            sales = await asyncio.gather(
                *(
                    driver.sell(demo_request(id=ids(), time=clock.now(), product_id=product))
                    for product in ("SINGLE1", "DUAL1", "SINGLE1", "DUAL1")
                )
            )
            for tx in sales:
                if tx.state is State.PROVISIONED:
                    await driver.confirm(tx, cash(1000))
            await driver.forward()
            assert await driver.drain(timeout=600)
            for tx in sales:
                entry = await journal.get(tx.id)
                assert entry is not None and entry.transaction.state is State.DONE, tx
        finally:
            await queue.aclose()
            await journal.aclose()

    asyncio.run(run())
    assert len(driver_logs(caplog)) == 1
