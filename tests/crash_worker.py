"""Run as a script by tests/test_crash_sigkill.py: a point of sale that the test kills for real.

    python tests/crash_worker.py (--db FILE | --schema NAME) URL MODE
                                 [--seed S] [--start I] [--count N]
                                 [--die POINT:N] [--concurrency C] [--together]

The worker journals to and queues advices in one store, either of the two durable ones:
the SQLite file FILE (``--db``), or the PostgreSQL schema NAME (``--schema``) of the
database named by ``VOUCHER_TEST_PG_DSN`` in the environment, so that no connection string
shows in the process list (the schema is migrated on opening if it is not yet). With
``--together`` the driver is also handed the two as one ``JournalQueue``, as the composition
root wires them, so a state change and the advice it queues are one commit; without it they
are written one after the other, as for stores in separate databases. It sells
vouchers over HTTP to the simulator at URL (the test's own process serves it). Every mode
first resumes what the journal holds (``recover()``); then

* ``sell`` / ``async-sell`` sells sales number ``I`` to ``I + N - 1``, each drawn from
  ``(S, number)``: the product, whether the tenders come up front, and what the host does
  with a dual-messaging sale that waits for it (confirm, cancel, or nothing, leaving it to the
  decision limit). Between sales it expires overdue decisions and forwards due advices;
  ``async-sell`` runs ``C`` sales at a time with a forwarder alongside.
* ``recover`` / ``async-recover`` forwards and expires until nothing is in flight and the
  queue is empty, then exits (status 3 if that takes too long).

``--die POINT:N`` makes the worker send itself SIGKILL (a real kill: no handler, no flush,
no cleanup) at the Nth time it reaches POINT:

* ``provision-reply``: a provision or retry reply arrived; the journal has not heard of it.
* ``enqueued``: the queue stored an advice (and it was reported; with ``take``, leased it
  too); it has not been sent. With ``--together`` the journal stored the state change that
  owes it in the same commit.
* ``forward-reply`` (sync modes): within ``forward()``, an advice reply arrived; neither the
  journal nor the queue has heard of it.
* ``forward-take`` (sync modes): within ``forward()``, the queue leased an advice out; it was
  not sent.
* ``journaled``: the journal committed a record; the driver has not gone on. (With
  ``--together``, a record committed with an advice counts here too, after ``enqueued``.)

Progress goes to stdout, one line each, flushed before the worker goes on, so the test knows
what happened before the kill:

    resuming <id> <state>                 recovery is about to resume this sale, in this state
    ready <resumed>                       recovery is done
    sell <number> <id>                    the sale is about to start
    sold <number> <id> <state>            sell() and the host's decision returned
    queued <advice id> <request id> <sha256 of the advice's wire bytes>   enqueue returned
    dying <point>                         the worker is about to kill itself
    drained / done                        the mode finished
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Sequence

from voucher_adapters.clock import SystemClock
from voucher_adapters.demo import DEMO_CLIENT_ID, cash, demo_request
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
from voucher_adapters.transports.http import AsyncHttpTransport, BasicAuth, HttpTransport
from voucher_core import (
    AsyncDriver,
    BackoffPolicy,
    DecisionPolicy,
    Driver,
    DriverSettings,
    ProviderProfile,
    RetryPolicy,
    State,
    Transaction,
)
from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice
from voucher_core.policy import Messaging
from voucher_core.ports import (
    AdviceQueue,
    AsyncAdviceQueue,
    AsyncJournalQueue,
    AsyncTransactionJournal,
    AsyncTransport,
    JournalEntry,
    JournalQueue,
    LookupQuery,
    LookupReply,
    QueuedAdvice,
    TransactionJournal,
    Transport,
)
from voucher_core.replies import AdviceReply, ProvisionReply
from voucher_core.wire import to_json

# The same providers the test's switch serves, by product.
PROFILES = {
    "DUAL1": ProviderProfile(messaging=Messaging.DUAL),
    "SINGLE1": ProviderProfile(messaging=Messaging.SINGLE),
    "NETCARE1": ProviderProfile(messaging=Messaging.DUAL, retries_supported=False),
    "STELLR1": ProviderProfile(
        messaging=Messaging.DUAL, retries_supported=False, advices_supported=False
    ),
}
PRODUCTS = sorted(PROFILES)
MAX_RETRIES = 3
TIMEOUT = 0.5  # seconds per request: a delayed answer is given up on quickly
DECISION_LIMIT = 2.0  # seconds a host may take before the sale is reversed for it
# Seconds a taken advice stays with its taker: longer than one send, and short, because an
# advice leased by a killed worker waits this long before a new worker may send it.
LEASE = 1.5
DRAIN_LIMIT = 45.0  # seconds ``recover`` may take before it reports itself stuck
AMOUNT = 1000
POINTS = ("provision-reply", "enqueued", "forward-reply", "forward-take", "journaled")


SyncQueue = SqliteAdviceQueue | PostgresAdviceQueue
SyncJournal = SqliteJournal | PostgresJournal
AsyncQueue = AsyncSqliteAdviceQueue | AsyncPostgresAdviceQueue
AsyncJournal = AsyncSqliteJournal | AsyncPostgresJournal


def say(*words: object) -> None:
    sys.stdout.write(" ".join(str(word) for word in words) + "\n")
    sys.stdout.flush()


class Tripwire:
    """Counts arrivals at each named point; kills this process at the armed one."""

    def __init__(self, armed: str | None) -> None:
        self.point: str | None = None
        self.at = 0
        if armed:
            point, _, at = armed.partition(":")
            if point not in POINTS:
                raise SystemExit(f"unknown kill point {point!r}; known: {', '.join(POINTS)}")
            self.point, self.at = point, int(at or "1")
        self.counts = dict.fromkeys(POINTS, 0)
        self.forwarding = False  # set by the sync worker around driver.forward()

    def reached(self, point: str) -> None:
        self.counts[point] += 1
        if point == self.point and self.counts[point] == self.at:
            say("dying", point)
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(10)  # the signal is delivered before this returns


# -- the ports, with the kill points ------------------------------------------------------


class TrippingTransport:
    def __init__(self, inner: Transport, trip: Tripwire) -> None:
        self.inner, self.trip = inner, trip

    def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        reply = self.inner.provision(request, timeout=timeout)
        self.trip.reached("provision-reply")
        return reply

    def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        reply = self.inner.retry(request, timeout=timeout)
        self.trip.reached("provision-reply")
        return reply

    def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply:
        reply = self.inner.confirm(advice, timeout=timeout)
        if self.trip.forwarding:
            self.trip.reached("forward-reply")
        return reply

    def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply:
        reply = self.inner.reverse(advice, timeout=timeout)
        if self.trip.forwarding:
            self.trip.reached("forward-reply")
        return reply

    def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply:
        return self.inner.lookup(query, timeout=timeout)


class TrippingQueue:
    def __init__(self, inner: AdviceQueue, trip: Tripwire) -> None:
        self.inner, self.trip = inner, trip

    def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        taken = self.inner.enqueue(advice, due=due, take=take)
        report_queued(advice)
        self.trip.reached("enqueued")
        return taken

    def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> Sequence[QueuedAdvice]:
        taken = self.inner.take_due(now, limit=limit, advice_id=advice_id)
        if taken and self.trip.forwarding:
            self.trip.reached("forward-take")
        return taken

    def acknowledge(self, advice_id: str) -> None:
        self.inner.acknowledge(advice_id)

    def repeat_later(self, advice_id: str, *, due: float) -> None:
        self.inner.repeat_later(advice_id, due=due)

    def park(self, advice_id: str, *, reason: str) -> None:
        self.inner.park(advice_id, reason=reason)

    def next_due(self) -> float | None:
        return self.inner.next_due()


class TrippingJournal:
    def __init__(self, inner: TransactionJournal, trip: Tripwire) -> None:
        self.inner, self.trip = inner, trip

    def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        self.inner.record(tx, decision_deadline=decision_deadline)
        self.trip.reached("journaled")

    def get(self, transaction_id: str) -> JournalEntry | None:
        return self.inner.get(transaction_id)

    def unfinished(self) -> Sequence[JournalEntry]:
        return self.inner.unfinished()

    def entries(self) -> Sequence[JournalEntry]:
        return self.inner.entries()


class TrippingJournalQueue:
    def __init__(self, inner: JournalQueue, trip: Tripwire) -> None:
        self.inner, self.trip = inner, trip

    def record_and_enqueue(
        self, tx: Transaction, advice: TenderAdvice | BasicReversal, *, due: float, take: bool
    ) -> QueuedAdvice | None:
        taken = self.inner.record_and_enqueue(tx, advice, due=due, take=take)
        report_queued(advice)
        self.trip.reached("enqueued")
        self.trip.reached("journaled")
        return taken

    def record_and_settle(
        self, tx: Transaction, advice_id: str, *, park_reason: str | None = None
    ) -> None:
        self.inner.record_and_settle(tx, advice_id, park_reason=park_reason)
        self.trip.reached("journaled")


class AsyncTrippingJournalQueue:
    def __init__(self, inner: AsyncJournalQueue, trip: Tripwire) -> None:
        self.inner, self.trip = inner, trip

    async def record_and_enqueue(
        self, tx: Transaction, advice: TenderAdvice | BasicReversal, *, due: float, take: bool
    ) -> QueuedAdvice | None:
        taken = await self.inner.record_and_enqueue(tx, advice, due=due, take=take)
        report_queued(advice)
        self.trip.reached("enqueued")
        self.trip.reached("journaled")
        return taken

    async def record_and_settle(
        self, tx: Transaction, advice_id: str, *, park_reason: str | None = None
    ) -> None:
        await self.inner.record_and_settle(tx, advice_id, park_reason=park_reason)
        self.trip.reached("journaled")


class AsyncTrippingTransport:
    """The async twin; ``forward-*`` points are not tracked (sales and forwarding overlap)."""

    def __init__(self, inner: AsyncTransport, trip: Tripwire) -> None:
        self.inner, self.trip = inner, trip

    async def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        reply = await self.inner.provision(request, timeout=timeout)
        self.trip.reached("provision-reply")
        return reply

    async def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        reply = await self.inner.retry(request, timeout=timeout)
        self.trip.reached("provision-reply")
        return reply

    async def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply:
        return await self.inner.confirm(advice, timeout=timeout)

    async def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply:
        return await self.inner.reverse(advice, timeout=timeout)

    async def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply:
        return await self.inner.lookup(query, timeout=timeout)


class AsyncTrippingQueue:
    def __init__(self, inner: AsyncAdviceQueue, trip: Tripwire) -> None:
        self.inner, self.trip = inner, trip

    async def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        taken = await self.inner.enqueue(advice, due=due, take=take)
        report_queued(advice)
        self.trip.reached("enqueued")
        return taken

    async def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> Sequence[QueuedAdvice]:
        return await self.inner.take_due(now, limit=limit, advice_id=advice_id)

    async def acknowledge(self, advice_id: str) -> None:
        await self.inner.acknowledge(advice_id)

    async def repeat_later(self, advice_id: str, *, due: float) -> None:
        await self.inner.repeat_later(advice_id, due=due)

    async def park(self, advice_id: str, *, reason: str) -> None:
        await self.inner.park(advice_id, reason=reason)

    async def next_due(self) -> float | None:
        return await self.inner.next_due()


class AsyncTrippingJournal:
    def __init__(self, inner: AsyncTransactionJournal, trip: Tripwire) -> None:
        self.inner, self.trip = inner, trip

    async def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        await self.inner.record(tx, decision_deadline=decision_deadline)
        self.trip.reached("journaled")

    async def get(self, transaction_id: str) -> JournalEntry | None:
        return await self.inner.get(transaction_id)

    async def unfinished(self) -> Sequence[JournalEntry]:
        return await self.inner.unfinished()

    async def entries(self) -> Sequence[JournalEntry]:
        return await self.inner.entries()


def report_queued(advice: TenderAdvice | BasicReversal) -> None:
    digest = hashlib.sha256(to_json(advice)).hexdigest()
    say("queued", advice.id, advice.request_id, digest)


# -- what is sold -------------------------------------------------------------------------


class Sale:
    """Sale number ``number`` of the run seeded ``seed``: the same in every process."""

    def __init__(self, seed: int, number: int) -> None:
        draw = random.Random(f"{seed}/{number}")
        self.number = number
        self.id = str(uuid.UUID(int=draw.getrandbits(128), version=4))
        self.product = draw.choice(PRODUCTS)
        self.up_front = draw.random() < 0.25
        self.host = draw.choice(("confirm", "confirm", "cancel", "wait"))

    def request(self, clock: SystemClock) -> ProvisionRequest:
        return demo_request(id=self.id, time=clock.now(), product_id=self.product, amount=AMOUNT)


def settings() -> DriverSettings:
    def profile_of(request: ProvisionRequest) -> ProviderProfile:
        assert request.product is not None
        return PROFILES[request.product.product_id]

    return DriverSettings(
        policy=RetryPolicy(max_retries=MAX_RETRIES, timeout=TIMEOUT, retry_delay=0.02),
        profile=profile_of,
        decision=DecisionPolicy(limit=DECISION_LIMIT),
        backoff=BackoffPolicy(initial=0.05, multiplier=2.0, ceiling=0.4),
    )


def auth() -> BasicAuth:
    return BasicAuth(DEMO_CLIENT_ID, "x")


# -- the store ----------------------------------------------------------------------------


def open_store(
    options: argparse.Namespace,
) -> tuple[SyncQueue, SyncJournal, JournalQueue | None]:
    """The queue and the journal, in the SQLite file or the PostgreSQL schema, and with
    ``--together`` the two as one ``JournalQueue``."""
    queue: SyncQueue
    journal: SyncJournal
    together: JournalQueue | None = None
    if options.dsn is not None:
        dsn, schema = options.dsn, options.schema
        pg_queue = PostgresAdviceQueue(dsn, schema=schema, lease=LEASE, pool_size=1)
        pg_journal = PostgresJournal(dsn, schema=schema, pool_size=1)
        if options.together:
            together = PostgresJournalQueue(pg_journal, pg_queue)
        queue, journal = pg_queue, pg_journal
    else:
        sqlite_journal = SqliteJournal(options.db)
        shared = sqlite_journal.database if options.together else None
        sqlite_queue = SqliteAdviceQueue(options.db, lease=LEASE, database=shared)
        if options.together:
            together = SqliteJournalQueue(sqlite_journal, sqlite_queue)
        queue, journal = sqlite_queue, sqlite_journal
    return queue, journal, together


async def open_async_store(
    options: argparse.Namespace,
) -> tuple[AsyncQueue, AsyncJournal, AsyncJournalQueue | None]:
    """The async twins; the PostgreSQL ones connect (and migrate) on their first call."""
    if options.dsn is not None:
        dsn, schema = options.dsn, options.schema
        pg_queue = AsyncPostgresAdviceQueue(dsn, schema=schema, lease=LEASE)
        pg_journal = AsyncPostgresJournal(dsn, schema=schema)
        pg_together = AsyncPostgresJournalQueue(pg_journal, pg_queue) if options.together else None
        return pg_queue, pg_journal, pg_together
    journal = await asyncio.to_thread(AsyncSqliteJournal, options.db)
    if not options.together:
        queue = await asyncio.to_thread(AsyncSqliteAdviceQueue, options.db, lease=LEASE)
        return queue, journal, None
    queue = AsyncSqliteAdviceQueue(options.db, lease=LEASE, journal=journal)
    return queue, journal, AsyncSqliteJournalQueue(journal, queue)


# -- the sync worker ----------------------------------------------------------------------


def run_sync(options: argparse.Namespace, trip: Tripwire) -> int:
    clock = SystemClock()
    queue, journal, together = open_store(options)
    transport = HttpTransport(options.url, auth=auth())
    driver = Driver(
        TrippingTransport(transport, trip),
        TrippingQueue(queue, trip),
        clock=clock,
        journal=TrippingJournal(journal, trip),
        settings=settings(),
        journal_queue=TrippingJournalQueue(together, trip) if together is not None else None,
    )

    def forward() -> None:
        trip.forwarding = True
        try:
            driver.forward()
        finally:
            trip.forwarding = False

    for entry in journal.unfinished():
        say("resuming", entry.transaction.id, entry.transaction.state.value)
    say("ready", len(driver.recover()))
    if options.mode == "sell":
        for number in range(options.start, options.start + options.count):
            sale = Sale(options.seed, number)
            say("sell", number, sale.id)
            tenders = cash(AMOUNT) if sale.up_front else None
            tx = driver.sell(sale.request(clock), tenders=tenders)
            if tx.state is State.PROVISIONED and sale.host == "confirm":
                driver.confirm(tx, cash(AMOUNT))
            elif tx.state is State.PROVISIONED and sale.host == "cancel":
                driver.cancel(tx)
            say("sold", number, sale.id, tx.state.value)
            driver.expire_decisions()
            forward()
        say("done")
    else:
        deadline = time.monotonic() + DRAIN_LIMIT
        while driver.in_flight() or len(queue):
            if time.monotonic() > deadline:
                say("stuck", len(driver.in_flight()), len(queue))
                return 3
            driver.expire_decisions()
            forward()
            time.sleep(0.02)
        say("drained")
    transport.close()
    queue.close()
    journal.close()
    return 0


# -- the asyncio worker -------------------------------------------------------------------


async def run_async(options: argparse.Namespace, trip: Tripwire) -> int:
    clock = SystemClock()
    queue, journal, together = await open_async_store(options)
    transport = AsyncHttpTransport(options.url, auth=auth())
    driver = AsyncDriver(
        AsyncTrippingTransport(transport, trip),
        AsyncTrippingQueue(queue, trip),
        clock=clock,
        journal=AsyncTrippingJournal(journal, trip),
        settings=settings(),
        journal_queue=(AsyncTrippingJournalQueue(together, trip) if together is not None else None),
    )
    for entry in await journal.unfinished():
        say("resuming", entry.transaction.id, entry.transaction.state.value)
    say("ready", len(await driver.recover()))
    if options.mode == "async-sell":
        await sell_async(options, driver, clock)
        say("done")
    else:
        deadline = time.monotonic() + DRAIN_LIMIT
        while driver.in_flight() or await queued(queue):
            if time.monotonic() > deadline:
                say("stuck", len(driver.in_flight()), await queued(queue))
                return 3
            await driver.expire_decisions()
            await driver.forward()
            await asyncio.sleep(0.02)
        say("drained")
    await transport.aclose()
    await queue.aclose()
    await journal.aclose()
    return 0


async def queued(queue: AsyncQueue) -> int:
    stats = await queue.stats()
    return int(stats["queued"] or 0) + int(stats["leased"] or 0)


async def sell_async(options: argparse.Namespace, driver: AsyncDriver, clock: SystemClock) -> None:
    stop = asyncio.Event()

    async def forwarder() -> None:
        while not stop.is_set():
            await driver.expire_decisions()
            await driver.forward()
            await asyncio.sleep(0.02)

    async def one(sale: Sale) -> None:
        say("sell", sale.number, sale.id)
        tenders = cash(AMOUNT) if sale.up_front else None
        tx = await driver.sell(sale.request(clock), tenders=tenders)
        # No await between sell() returning and the host's call: the host decides first.
        if tx.state is State.PROVISIONED and sale.host == "confirm":
            await driver.confirm(tx, cash(AMOUNT))
        elif tx.state is State.PROVISIONED and sale.host == "cancel":
            await driver.cancel(tx)
        say("sold", sale.number, sale.id, tx.state.value)

    background = asyncio.create_task(forwarder())
    numbers = list(range(options.start, options.start + options.count))
    for first in range(0, len(numbers), options.concurrency):
        batch = numbers[first : first + options.concurrency]
        await asyncio.gather(*(one(Sale(options.seed, number)) for number in batch))
    stop.set()
    await background


# -- entry point --------------------------------------------------------------------------


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    store = parser.add_mutually_exclusive_group(required=True)
    store.add_argument("--db", help="the SQLite file")
    store.add_argument(
        "--schema", help="the PostgreSQL schema, in the database VOUCHER_TEST_PG_DSN names"
    )
    parser.add_argument("url")
    parser.add_argument("mode", choices=("sell", "recover", "async-sell", "async-recover"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--die", default=None)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument(
        "--together",
        action="store_true",
        help="write a state change and the advice it queues in one commit",
    )
    options = parser.parse_args(argv)
    options.dsn = None
    if options.schema is not None:
        options.dsn = os.environ.get("VOUCHER_TEST_PG_DSN")
        if not options.dsn:
            parser.error("--schema needs VOUCHER_TEST_PG_DSN set to the database")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    trip = Tripwire(options.die)
    if options.mode.startswith("async"):
        return asyncio.run(run_async(options, trip))
    return run_sync(options, trip)


if __name__ == "__main__":
    sys.exit(main())
