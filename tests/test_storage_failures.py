"""A real SQLite journal that fails between a provision's send and its reply.

The sale's request has reached the switch (which issued the voucher) when the journal cannot
record the reply: another process holds the database in ``BEGIN EXCLUSIVE``, or the
filesystem (a small tmpfs mounted for the test) is full. ``sell()`` raises ``StorageError`` and
the host tells the customer the sale failed. Once the store works again, ``recover()`` finishes
the sale without its host: a dual-messaging voucher is reversed, never confirmed (even with
tenders given up front); a single-messaging one ends DONE, flagged for reconciliation with the
voucher's reference (never its code), and reported. The switch's books agree.

Everything is real but the clock: the driver, the SQLite stores on a file, the switch
simulator behind the in-process transport (which serialises every message to JSON and
classifies the reply bytes), a second process holding the lock, a kernel filesystem that
runs out of space. The only test hook is the moment: a wrapper around the transport runs the
fault after the switch answered and before the driver reads the answer.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.errors import StorageError
from voucher_adapters.simulator import Operation, Provider, SwitchSimulator
from voucher_adapters.stores.sqlite import (
    AsyncSqliteAdviceQueue,
    AsyncSqliteJournal,
    SqliteAdviceQueue,
    SqliteJournal,
)
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.in_process import AsyncInMemoryTransport, InMemoryTransport
from voucher_core import AsyncDriver, Driver, DriverSettings, State, Transaction
from voucher_core.messages import BasicReversal, ProvisionRequest, ReversalReason
from voucher_core.policy import DUAL, SINGLE
from voucher_core.reconciliation import report
from voucher_core.replies import Approved, ProvisionReply

PROVIDERS = (
    Provider("dualco", DUAL, frozenset({"DUAL1"})),
    Provider("singleco", SINGLE, frozenset({"SINGLE1"})),
)
PROFILES = {"DUAL1": DUAL, "SINGLE1": SINGLE}
BUSY = 0.2  # seconds a write waits for a lock before it fails


# -- the faults -------------------------------------------------------------------------------

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes this process's stdin
conn.execute("ROLLBACK")
conn.close()
"""


class Lock:
    """Another process that takes the database with ``BEGIN EXCLUSIVE`` and holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process: subprocess.Popen[str] | None = None

    def take(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        process = self.process
        assert process is not None and process.stdin is not None
        process.stdin.close()
        assert process.wait(30) == 0
        self.process = None


class Disk:
    """A small tmpfs of its own, mounted for the test; ``fill`` writes until it is full."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def fill(self) -> None:
        chunk = b"\0" * 65536
        with self.filler.open("wb") as out:
            try:
                while True:
                    out.write(chunk)
                    out.flush()
            except OSError as error:
                assert error.errno == 28, error  # ENOSPC
        assert shutil.disk_usage(self.root).free < 65536

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    root = tmp_path / "tmpfs"
    root.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here to mount a small tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(root)],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): "
            + (mounted.stderr.strip() or f"exit status {mounted.returncode}")
        )
    try:
        yield Disk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


# -- a till on a SQLite file ------------------------------------------------------------------


class BetweenSendAndReply:
    """The in-process transport, running ``fault`` once, after the next provision reached the
    switch and before its reply is handed to the driver."""

    def __init__(self, inner: InMemoryTransport) -> None:
        self.inner = inner
        self.fault: Callable[[], None] | None = None

    def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        reply = self.inner.provision(request, timeout=timeout)
        fault, self.fault = self.fault, None
        if fault is not None:
            fault()
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class AsyncBetweenSendAndReply:
    def __init__(self, inner: AsyncInMemoryTransport) -> None:
        self.inner = inner
        self.fault: Callable[[], None] | None = None

    async def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        reply = await self.inner.provision(request, timeout=timeout)
        fault, self.fault = self.fault, None
        if fault is not None:
            await asyncio.to_thread(fault)
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def settings(ids: SeededIds) -> DriverSettings:
    def profile_of(request: ProvisionRequest) -> Any:
        assert request.product is not None
        return PROFILES[request.product.product_id]

    return DriverSettings(profile=profile_of, new_id=ids)


class Till:
    """The sync driver on SQLite stores in ``folder``, selling to a switch simulator."""

    def __init__(self, folder: Path) -> None:
        self.db = folder / "pos.db"
        self.switch = SwitchSimulator(PROVIDERS, seed=7)
        self.exchanges: list[Exchange] = []
        self.clock = SimulatedClock()
        self.ids = SeededIds(7)
        inner = InMemoryTransport(
            self.switch, username=DEMO_CLIENT_ID, observer=self.exchanges.append
        )
        self.transport = BetweenSendAndReply(inner)
        self.journal = SqliteJournal(self.db, busy_timeout=BUSY)
        self.queue = SqliteAdviceQueue(self.db, busy_timeout=BUSY)
        self.driver = Driver(
            self.transport,
            self.queue,
            clock=self.clock,
            journal=self.journal,
            settings=settings(self.ids),
        )
        self.driver.recover()  # at start-up, as a host does: claims the journal's owner

    def request(self, product: str) -> ProvisionRequest:
        return demo_request(id=self.ids(), time=self.clock.now(), product_id=product)

    def stored(self, tx_id: str) -> Transaction:
        entry = self.journal.get(tx_id)
        assert entry is not None
        return entry.transaction

    def close(self) -> None:
        self.queue.close()
        self.journal.close()


@pytest.fixture
def open_till() -> Iterator[Callable[[Path], Till]]:
    tills: list[Till] = []

    def opened(folder: Path) -> Till:
        tills.append(Till(folder))
        return tills[-1]

    yield opened
    for till in tills:
        till.close()


# -- what must hold at the end ----------------------------------------------------------------


def issued_voucher(exchanges: list[Exchange], tx_id: str) -> Any:
    """The voucher the switch answered the first provision with (the customer never saw it)."""
    [first] = [e for e in exchanges if e.operation is Operation.PROVISION and e.request_id == tx_id]
    assert isinstance(first.reply, Approved), first.reply
    return first.reply.response.voucher


def ended_without_its_host(
    tx: Transaction,
    stored: Transaction,
    product: str,
    switch: SwitchSimulator,
    exchanges: list[Exchange],
) -> None:
    """A dual sale reversed and never confirmed; a single one DONE, flagged with the voucher's
    serial number and never its code, and reported; the switch's books agreeing."""
    operations = [e.operation for e in exchanges if e.request_id == tx.id]
    assert stored.state is tx.state and stored.reconciliation == tx.reconciliation
    switch.pump()
    books = {e.state for e in switch.ledger() if e.provision_id == tx.id}
    if product == "DUAL1":
        assert tx.state is State.DECLINED and tx.reconciliation is None, tx
        assert Operation.CONFIRM not in operations, operations
        assert operations[-1] is Operation.REVERSE, operations
        assert isinstance(tx.advice, BasicReversal)
        assert tx.advice.reversal_reason is ReversalReason.CANCELLED
        assert not switch.voucher_active(tx.id)
        assert books == {"reversed"}, books
        assert stored.unattended  # journaled: a restart would not confirm it either
        return
    voucher = issued_voucher(exchanges, tx.id)
    assert tx.state is State.DONE, tx
    assert tx.reconciliation is not None and tx.reconciliation.startswith("unattended: ")
    assert f"serial number {voucher.serial_number}" in tx.reconciliation
    assert voucher.code not in tx.reconciliation
    assert switch.voucher_active(tx.id)
    assert books == {"issued"}, books
    assert stored.unattended


def reported(journal: SqliteJournal) -> set[str]:
    return {finding.transaction_id for finding in report(journal.entries())}


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize(("product", "up_front"), [("SINGLE1", False), ("DUAL1", True)])
def test_a_database_locked_by_another_process_between_send_and_reply_ends_the_sale_without_its_host(
    tmp_path: Path, open_till: Callable[[Path], Till], product: str, up_front: bool
) -> None:
    till = open_till(tmp_path)
    lock = Lock(till.db)
    request = till.request(product)
    till.transport.fault = lock.take
    with pytest.raises(StorageError, match="locked"):
        till.driver.sell(request, tenders=cash(1000) if up_front else None)
    # The host tells the customer the sale failed; the journal holds it as it went out.
    assert till.driver.in_flight() == []
    lock.release()
    assert till.stored(request.id).state is State.PROVISIONING

    [tx] = till.driver.recover()
    assert [e.operation for e in till.exchanges] == [Operation.PROVISION, Operation.RETRY] + (
        [Operation.REVERSE] if product == "DUAL1" else []
    )
    ended_without_its_host(tx, till.stored(tx.id), product, till.switch, till.exchanges)
    assert reported(till.journal) == ({tx.id} if product == "SINGLE1" else set())


@pytest.mark.parametrize(("product", "up_front"), [("SINGLE1", False), ("DUAL1", True)])
def test_a_full_filesystem_between_send_and_reply_ends_the_sale_without_its_host(
    disk: Disk, open_till: Callable[[Path], Till], product: str, up_front: bool
) -> None:
    till = open_till(disk.root)
    request = till.request(product)
    till.transport.fault = disk.fill
    with pytest.raises(StorageError, match="full"):
        till.driver.sell(request, tenders=cash(1000) if up_front else None)
    assert till.driver.in_flight() == []
    disk.free()
    assert till.stored(request.id).state is State.PROVISIONING

    [tx] = till.driver.recover()
    ended_without_its_host(tx, till.stored(tx.id), product, till.switch, till.exchanges)
    assert reported(till.journal) == ({tx.id} if product == "SINGLE1" else set())


def test_a_confirmation_the_locked_journal_could_not_take_leaves_the_sale_as_journaled(
    tmp_path: Path, open_till: Callable[[Path], Till]
) -> None:
    """After ``confirm()`` raises, the object says what the journal says (PROVISIONED, no
    outcome), nothing was sent, and recovery reverses the sale once its limit passes."""
    till = open_till(tmp_path)
    tx = till.driver.sell(till.request("DUAL1"))
    assert tx.state is State.PROVISIONED
    lock = Lock(till.db)
    lock.take()
    try:
        with pytest.raises(StorageError, match="locked"):
            till.driver.confirm(tx, cash(1000))
    finally:
        lock.release()
    assert tx.state is State.PROVISIONED and tx.outcome is None and tx.advice is None
    assert till.stored(tx.id).state is State.PROVISIONED
    assert [e.operation for e in till.exchanges] == [Operation.PROVISION]

    [resumed] = till.driver.recover()
    assert resumed.state is State.PROVISIONED
    till.driver.expire_decisions(all_waiting=True)
    assert till.stored(tx.id).state is State.DECLINED
    till.switch.pump()
    assert not till.switch.voucher_active(tx.id)
    assert Operation.CONFIRM not in [e.operation for e in till.exchanges]


@pytest.mark.parametrize(("product", "up_front"), [("SINGLE1", False), ("DUAL1", True)])
def test_the_asyncio_driver_on_a_locked_database_ends_the_sale_without_its_host(
    tmp_path: Path, product: str, up_front: bool
) -> None:
    async def run() -> None:
        db = tmp_path / "pos.db"
        switch = SwitchSimulator(PROVIDERS, seed=8)
        exchanges: list[Exchange] = []
        ids = SeededIds(8)
        clock = SimulatedClock()
        transport = AsyncBetweenSendAndReply(
            AsyncInMemoryTransport(switch, username=DEMO_CLIENT_ID, observer=exchanges.append)
        )
        journal = await asyncio.to_thread(AsyncSqliteJournal, db, busy_timeout=BUSY)
        queue = await asyncio.to_thread(AsyncSqliteAdviceQueue, db, busy_timeout=BUSY)
        driver = AsyncDriver(transport, queue, clock=clock, journal=journal, settings=settings(ids))
        try:
            await driver.recover()
            request = demo_request(id=ids(), time=clock.now(), product_id=product)
            lock = Lock(db)
            transport.fault = lock.take
            with pytest.raises(StorageError, match="locked"):
                await driver.sell(request, tenders=cash(1000) if up_front else None)
            await asyncio.to_thread(lock.release)
            [tx] = await driver.recover()
            entry = await journal.get(tx.id)
            assert entry is not None
            ended_without_its_host(tx, entry.transaction, product, switch, exchanges)
            findings = report(await journal.entries())
            assert {f.transaction_id for f in findings} == (
                {tx.id} if product == "SINGLE1" else set()
            )
        finally:
            await queue.aclose()
            await journal.aclose()

    asyncio.run(run())
