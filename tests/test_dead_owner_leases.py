"""When a claim shows the previous owner is gone, its leased advices are due at once.

A process that dies with an advice leased (taken, on the wire, not yet settled) leaves the
lease in the store for 150 s. The claim on the owner proves that process gone, so claiming
ends those leases: `voucher recover` right after a crash delivers at once instead of exiting
1 with "run again once the switch answers". On both durable stores, with a real process
killed with SIGKILL and a real switch simulator over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_stores import ROOT, VOUCHER, Where, store_of, voucher, wait_until
from sqlite_samples import Samples
from starlette.types import ASGIApp, Receive, Scope, Send

from voucher_adapters.errors import OwnerBusy
from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.simulator.server import RunningServer, create_app
from voucher_adapters.stores.memory import InMemoryAdviceQueue
from voucher_adapters.stores.postgres import AsyncPostgresAdviceQueue, PostgresAdviceQueue
from voucher_adapters.stores.sqlite import AsyncSqliteAdviceQueue
from voucher_core import State

CONFIRMATIONS = "/suv/v1/vouchers/confirmations"


class HeldConfirmations:
    """ASGI middleware in front of the simulator: while ``holding``, a confirmation is kept
    waiting and never reaches the switch (as if the network lost it); then answered 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.holding = threading.Event()
        self.holding.set()
        self.held = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CONFIRMATIONS and self.holding.is_set():
            self.held += 1
            while self.holding.is_set():
                await asyncio.sleep(0.05)
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Where]:
    with store_of(request.param, tmp_path) as place:
        yield place


def test_voucher_recover_right_after_a_crash_delivers_the_dead_processs_leased_advice(
    where: Where,
) -> None:
    switch = SwitchSimulator(seed=3)
    held = HeldConfirmations(create_app(switch))
    with RunningServer(held) as server:
        # A dual-messaging sale: approved, then its confirmation is queued leased to the
        # seller (150 s, the default) and sent; the switch never answers it.
        seller = subprocess.Popen(
            [
                *VOUCHER,
                *("provision", "--url", server.url, "--product", "AIRTIME10"),
                *("--amount", "1000", "--timeout", "60", *where.option),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: held.held == 1, within=60, what="the confirmation's arrival")
            with where.queue() as queue:
                assert queue.stats()["leased"] == 1
        finally:
            seller.send_signal(signal.SIGKILL)
            seller.wait(timeout=30)
        assert seller.returncode == -signal.SIGKILL
        with where.journal() as journal:
            [entry] = journal.entries()
        sale = entry.transaction
        assert sale.state is State.CONFIRMING
        held.holding.clear()  # the switch answers from now on

        started = time.monotonic()
        recovered = voucher("recover", *where.option, "--url", server.url, "--drain-timeout", "20")
        took = time.monotonic() - started
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "resumed 1 sale(s): now 1 DONE" in recovered.stdout
    assert "run `voucher recover`" not in recovered.stderr and "Traceback" not in recovered.stderr
    assert took < 20, f"recovery waited {took:.1f} s for a lease a dead process held"
    with where.journal() as journal, where.queue() as queue:
        stored = journal.get(sale.id)
        assert stored is not None and stored.transaction.state is State.DONE
        assert queue.stats() == {"queued": 0, "leased": 0, "parked": 0, "oldest_due": None}
    # Delivered: the first confirmation never reached the switch, recovery's did.
    switch.pump()  # the switch's own forwarding to the provider, now that the server is idle
    assert switch.voucher_active(sale.id)
    [book] = [e for e in switch.ledger() if e.provision_id == sale.id]
    assert book.state == "confirmed"


HOLDER = textwrap.dedent(
    """
    import os, sys, time
    kind, place, owner = sys.argv[1], sys.argv[2], sys.argv[3] or None
    if kind == "sqlite":
        from voucher_adapters.stores.sqlite import SqliteAdviceQueue as Queue
        from voucher_adapters.stores.sqlite import SqliteJournal as Journal
    else:
        from voucher_adapters.stores.postgres import PostgresAdviceQueue as Queue
        from voucher_adapters.stores.postgres import PostgresJournal as Journal
    journal, queue = Journal(place, owner=owner), Queue(place)
    journal.unfinished()  # claims the owner
    taken = queue.take_due(time.monotonic())  # leases every due advice, as a forwarder does
    print("holding", len(taken), flush=True)
    sys.stdin.read()
    """
)


def holder(where: Where, owner: str | None) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, where.kind, where.place, owner or ""],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert child.stdout is not None
    return child


def test_a_fresh_claim_ends_the_leases_on_the_owners_advices_and_no_others(where: Where) -> None:
    samples = Samples(11)
    mine, other, stray = samples.confirming(), samples.reversing(), samples.confirmation()
    assert mine.advice is not None and other.advice is not None
    with where.journal("lane-1") as lane_1, where.journal("lane-2") as lane_2:
        lane_1.record(mine)
        lane_2.record(other)
    with where.queue() as queue:
        for advice in (mine.advice, other.advice, stray):  # stray: no sale in the journal
            queue.enqueue(advice, due=0.0)
    child = holder(where, "lane-1")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().split() == ["holding", "3"]
        with where.journal("lane-1") as journal, pytest.raises(OwnerBusy):
            journal.claim()  # alive: refused, and nothing of its is touched
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        with where.queue() as queue:
            assert queue.stats()["leased"] == 3
            assert queue.take_due(time.monotonic()) == []  # the leases run for 150 s
            with where.journal("lane-1") as journal:
                journal.claim()  # the owner was free: its previous holder is gone
                taken = queue.take_due(time.monotonic())
                assert [q.id for q in taken] == [mine.advice.id]
                # Claims that prove nothing end nothing: a repeat, and a second journal of
                # this process (the claim is shared; the leases are this process's own).
                journal.claim()
                with where.journal("lane-1") as second:
                    second.claim()
                assert queue.take_due(time.monotonic()) == []
            assert queue.stats()["leased"] == 3  # lane-2's and the stray are still leased
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)


# -- the queue's own call ------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryAdviceQueue()
        return
    with store_of(request.param, tmp_path) as place, place.queue() as queue:
        yield queue


def test_release_makes_exactly_the_given_leased_advices_due_at_once(any_queue: Any) -> None:
    samples = Samples(13)
    taken_a, taken_b, free, parked = (samples.confirmation() for _ in range(4))
    for advice in (taken_a, taken_b, free, parked):
        any_queue.enqueue(advice, due=0.0)
    assert len(any_queue.take_due(1.0, advice_id=parked.id)) == 1
    any_queue.park(parked.id, reason="HTTP 400")
    assert {q.id for q in any_queue.take_due(1.0)} == {taken_a.id, taken_b.id, free.id}
    any_queue.repeat_later(free.id, due=0.0)  # back in line, not leased
    freed = any_queue.release([taken_a.id, free.id, parked.id, "no-such-advice"])
    assert freed == [taken_a.id]
    assert [q.id for q in any_queue.take_due(2.0, limit=10)] == [taken_a.id, free.id]
    assert [p.queued.id for p in any_queue.parked()] == [parked.id]
    assert any_queue.release([]) == []


def test_a_released_advice_settled_late_by_its_old_holder_is_fenced_on_postgres(
    tmp_path: Path,
) -> None:
    samples = Samples(14)
    advice = samples.confirmation()
    with (
        store_of("postgres", tmp_path) as place,
        PostgresAdviceQueue(place.place) as old,
        PostgresAdviceQueue(place.place) as new,
    ):
        old.enqueue(advice, due=0.0, take=True)
        assert new.release([advice.id]) == [advice.id]
        [again] = new.take_due(time.monotonic())
        old.acknowledge(advice.id)  # refused: the lease moved on
        assert old.fenced == 1
        new.acknowledge(again.id)
        assert new.stats()["queued"] == 0 and new.stats()["leased"] == 0


def test_the_async_queues_release_too(tmp_path: Path) -> None:
    samples = Samples(15)
    advice = samples.confirmation()

    async def run(queue: Any) -> None:
        try:
            await queue.enqueue(advice, due=0.0, take=True)
            assert await queue.take_due(1.0) == []
            assert await queue.release([advice.id]) == [advice.id]
            assert [q.id for q in await queue.take_due(1.0)] == [advice.id]
        finally:
            await queue.aclose()

    asyncio.run(run(AsyncSqliteAdviceQueue(tmp_path / "pos.db")))
    with store_of("postgres", tmp_path) as place:
        asyncio.run(run(AsyncPostgresAdviceQueue(place.place, time_base="caller")))
