"""The advice queue in PostgreSQL, shared by any number of forwarders.

Each advice is one row holding its exact wire JSON (``bytea``), so every repeat sends the
same bytes. ``take_due`` picks due rows ``FOR UPDATE SKIP LOCKED`` (earliest due first),
leases them to this queue's ``holder`` until ``now + lease`` and raises each row's
``lease_token``; a forwarder that died lets its lease run out and the rows are taken again.

Fencing: the queue object remembers the token of every advice it took. ``acknowledge``,
``repeat_later`` and ``park`` change the row only while it is still leased to this holder
under that token; if another forwarder took it over meanwhile (this one stalled past its
lease), the call changes nothing, adds one to ``fenced`` and logs a warning. A call for an
advice this object did not take acts only on a row no other holder has leased.

Times: callers speak in their monotonic seconds, as with SQLite; by default the queue stores
due times and leases on the database server's clock (``time_base="server"``, see
:class:`~voucher_adapters.stores.postgres.queue_sql.TimeBase`), so forwarders on any number of
hosts agree on
them. The ``horizon`` and ``grace`` rules for clocks gone backwards apply to that clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import psycopg_pool

from voucher_adapters.stores.postgres.database import Database
from voucher_adapters.stores.postgres.queue_sql import (
    AdvicePlans,
    Fence,
    TimeBase,
    default_holder,
    finite,
    row,
)
from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import ParkedAdvice, QueuedAdvice

__all__ = ["PostgresAdviceQueue"]


class PostgresAdviceQueue:
    """:class:`~voucher_core.ports.AdviceQueue` in a PostgreSQL schema; thread-safe.

    Every mutating call has committed when it returns, or raises
    :class:`~voucher_adapters.stores.postgres.StorageError`. ``lease``, ``holder`` and ``horizon``
    mean what
    they mean for :class:`~voucher_adapters.stores.sqlite.SqliteAdviceQueue`; ``schema`` is created
    or migrated on opening (:func:`~voucher_adapters.stores.postgres.migrate`); ``pool_size`` bounds
    the connections; ``timeout`` bounds the wait for a connection, in seconds.

    ``time_base``: ``"server"`` (default) keeps due times and leases on the server's clock,
    translated from ``monotonic`` (the same clock the driver reads; ``time.monotonic`` for
    :class:`~voucher_adapters.clock.SystemClock`); ``"caller"`` stores the caller's seconds as
    given, for forwarders on one host only. ``fence`` and ``shared_time`` let several queue
    objects act as one holder (the async twin and its ``.sync``).
    """

    def __init__(
        self,
        dsn: str,
        *,
        lease: float = 150.0,
        holder: str | None = None,
        horizon: float = 3600.0,
        schema: str = "voucher",
        pool_size: int = 4,
        timeout: float = 10.0,
        pooling: str = "session",
        pool: psycopg_pool.ConnectionPool[Any] | None = None,
        time_base: Literal["server", "caller"] = "server",
        monotonic: Callable[[], float] = time.monotonic,
        fence: Fence | None = None,
        shared_time: TimeBase | None = None,
    ) -> None:
        self.fence = fence or Fence(holder or default_holder())
        self.plans = AdvicePlans(
            fence=self.fence,
            lease=lease,
            horizon=horizon,
            grace=max(60.0, 2 * timeout),
            time_base=shared_time or TimeBase(time_base, monotonic=monotonic),
        )
        self.database = Database(
            dsn, schema=schema, pool_size=pool_size, timeout=timeout, pooling=pooling, pool=pool
        )

    @property
    def holder(self) -> str:
        """The name this queue leases advices under (in the ``lease_owner`` column)."""
        return self.fence.holder

    @property
    def time_base(self) -> str:
        return self.plans.time.kind

    @property
    def fenced(self) -> int:
        """Calls refused because another forwarder had taken the advice over."""
        return self.fence.fenced

    @property
    def dsn(self) -> str:
        """The DSN without its password."""
        return self.database.where

    @property
    def schema(self) -> str:
        return self.database.schema

    @property
    def commits(self) -> int:
        return self.database.commits

    # -- the port -------------------------------------------------------------------------------

    def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        # One idempotent statement each way, so autocommitted: one round trip. Only an advice
        # queued before, when taken, needs a transaction of its own.
        rows = [row(advice, due)]
        plans = self.plans
        if not take:
            operation = f"store advice {advice.id}"
            self.database.run(operation, lambda: plans.enqueue(rows), single=True)
            return None
        operation = f"store and take advice {advice.id}"
        taken = self.database.run(operation, lambda: plans.store_leased(rows, advice), single=True)
        if taken is None:
            taken = self.database.run(
                operation, lambda: plans.take_due(due, 1, advice.id, known=advice)
            )
        held = self.fence.hold(taken)
        return held[0] if held else None

    def enqueue_many(self, advices: Iterable[TenderAdvice | BasicReversal], *, due: float) -> None:
        """Store many advices in one transaction (idempotent on each id, as ``enqueue``)."""
        rows = [row(advice, due) for advice in advices]
        self.database.run(f"store {len(rows)} advices", lambda: self.plans.enqueue(rows))

    def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> list[QueuedAdvice]:
        now = finite("now", now)
        if limit <= 0:
            return []
        what = f"advice {advice_id}" if advice_id is not None else "due advices"
        plan = self.plans.take_due
        taken = self.database.run(f"take {what}", lambda: plan(now, limit, advice_id))
        return self.fence.hold(taken)

    def acknowledge(self, advice_id: str) -> None:
        holder = self.database.run(
            f"acknowledge advice {advice_id}",
            lambda: self.plans.acknowledge(advice_id),
            single=True,
        )
        self.fence.settled(advice_id, "acknowledge", holder)

    def repeat_later(self, advice_id: str, *, due: float) -> None:
        finite("due", due)
        holder = self.database.run(
            f"repeat advice {advice_id}", lambda: self.plans.repeat_later(advice_id, due)
        )
        self.fence.settled(advice_id, "repeat", holder)

    def park(self, advice_id: str, *, reason: str) -> None:
        holder = self.database.run(
            f"park advice {advice_id}", lambda: self.plans.park(advice_id, reason)
        )
        self.fence.settled(advice_id, "park", holder)

    # -- for operators --------------------------------------------------------------------------

    def release(self, advice_ids: Iterable[str]) -> list[str]:
        """End the leases of these advices, whoever holds them, so they are due at once; for
        recovery, when the process that had taken them is known to be gone (its journal owner
        was claimed afresh: see :meth:`PostgresJournal.claim`). Returns the ids whose lease
        ended; advices not leased, parked or unknown are left as they are. Each lease token
        moves on, so a holder alive after all has its settle of them refused (``fenced``);
        a second send meanwhile is harmless, as every repeat is."""
        ids = list(advice_ids)
        return self.database.run(
            f"end the leases of {len(ids)} advice(s)", lambda: AdvicePlans.release(ids)
        )

    def pending(self) -> list[QueuedAdvice]:
        """Every advice not parked, leased or not, in the order they were first queued."""
        return self.database.run("list queued advices", AdvicePlans.pending, write=False)

    def parked(self) -> list[ParkedAdvice]:
        return self.database.run("list parked advices", AdvicePlans.parked, write=False)

    def requeue(self, advice_id: str, *, due: float) -> bool:
        """Put a parked advice back in line. Returns whether there was one to put back."""
        finite("due", due)
        return self.database.run(
            f"requeue advice {advice_id}", lambda: self.plans.requeue(advice_id, due)
        )

    def next_due(self, now: float | None = None) -> float | None:
        """When ``take_due`` will next hand something out: the earliest due time, or lease end
        for a leased advice. Pass ``now`` to have times a backward clock left behind count as
        ``now``."""
        plan = self.plans.next_due
        return self.database.run("read the next due time", lambda: plan(now), write=False)

    def stats(self) -> dict[str, int | float | None]:
        """Counts: ``queued`` (not leased), ``leased`` (taken; the lease may have run out),
        ``parked``; and ``oldest_due``, the earliest due time of any advice not parked."""
        return self.database.run("count advices", self.plans.stats, write=False)

    def __len__(self) -> int:
        stats = self.stats()
        return int(stats["queued"] or 0) + int(stats["leased"] or 0)

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> PostgresAdviceQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
