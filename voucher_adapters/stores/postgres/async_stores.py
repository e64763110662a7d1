"""The async twins: the same queue and journal on psycopg's async connections.

They run the very plans of the sync classes on an
:class:`~psycopg_pool.AsyncConnectionPool` opened (and the schema migrated) on the first
call, in the running loop; constructing one does no I/O. ``.sync`` is a sync object on the
same schema, with its own small pool opened when first used (its calls block: for
operators and scripts, not the event loop's hot path); the queue's ``.sync`` shares its
lease holder and tokens, so it may settle what the twin took. ``aclose()`` closes both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Literal

from voucher_adapters.errors import StorageError
from voucher_adapters.stores.damage import DamagedEntry, DamageLog
from voucher_adapters.stores.postgres.database import AsyncDatabase
from voucher_adapters.stores.postgres.journal import JournalPlans, PostgresJournal, log
from voucher_adapters.stores.postgres.queue import PostgresAdviceQueue
from voucher_adapters.stores.postgres.queue_sql import (
    AdvicePlans,
    Fence,
    TimeBase,
    default_holder,
    finite,
    row,
)
from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import JournalEntry, ParkedAdvice, QueuedAdvice
from voucher_core.transaction import Transaction

__all__ = ["AsyncPostgresAdviceQueue", "AsyncPostgresJournal"]


class AsyncPostgresAdviceQueue:
    """:class:`~voucher_core.ports.AsyncAdviceQueue` in a PostgreSQL schema; the arguments
    are those of :class:`~voucher_adapters.stores.postgres.PostgresAdviceQueue`."""

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
        time_base: Literal["server", "caller"] = "server",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fence = Fence(holder or default_holder())
        self.plans = AdvicePlans(
            fence=self.fence,
            lease=lease,
            horizon=horizon,
            grace=max(60.0, 2 * timeout),
            time_base=TimeBase(time_base, monotonic=monotonic),
        )
        self.database = AsyncDatabase(
            dsn, schema=schema, pool_size=pool_size, timeout=timeout, pooling=pooling
        )
        self._lease, self._horizon = lease, horizon
        self._sync: PostgresAdviceQueue | None = None

    @property
    def sync(self) -> PostgresAdviceQueue:
        if self._sync is None:
            db = self.database
            if db.closed:
                raise StorageError(db.where, "open the database", "the storage was closed")
            self._sync = PostgresAdviceQueue(
                db.dsn,
                lease=self._lease,
                horizon=self._horizon,
                schema=db.schema,
                pool_size=1,
                timeout=db.timeout,
                pooling=db.pooling,
                fence=self.fence,
                shared_time=self.plans.time,
            )
        return self._sync

    @property
    def time_base(self) -> str:
        return self.plans.time.kind

    @property
    def holder(self) -> str:
        return self.fence.holder

    @property
    def fenced(self) -> int:
        return self.fence.fenced

    @property
    def commits(self) -> int:
        return self.database.commits

    async def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        rows = [row(advice, due)]  # as the sync twin: autocommitted unless queued before
        plans, database = self.plans, self.database
        if not take:
            operation = f"store advice {advice.id}"
            await database.run(operation, lambda: plans.enqueue(rows), single=True)
            return None
        operation = f"store and take advice {advice.id}"
        taken = await database.run(operation, lambda: plans.store_leased(rows, advice), single=True)
        if taken is None:
            taken = await database.run(
                operation, lambda: plans.take_due(due, 1, advice.id, known=advice)
            )
        held = self.fence.hold(taken)
        return held[0] if held else None

    async def enqueue_many(
        self, advices: Iterable[TenderAdvice | BasicReversal], *, due: float
    ) -> None:
        rows = [row(advice, due) for advice in advices]
        await self.database.run(f"store {len(rows)} advices", lambda: self.plans.enqueue(rows))

    async def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> list[QueuedAdvice]:
        now = finite("now", now)
        if limit <= 0:
            return []
        what = f"advice {advice_id}" if advice_id is not None else "due advices"
        plan = self.plans.take_due
        taken = await self.database.run(f"take {what}", lambda: plan(now, limit, advice_id))
        return self.fence.hold(taken)

    async def acknowledge(self, advice_id: str) -> None:
        holder = await self.database.run(
            f"acknowledge advice {advice_id}",
            lambda: self.plans.acknowledge(advice_id),
            single=True,
        )
        self.fence.settled(advice_id, "acknowledge", holder)

    async def repeat_later(self, advice_id: str, *, due: float) -> None:
        finite("due", due)
        holder = await self.database.run(
            f"repeat advice {advice_id}", lambda: self.plans.repeat_later(advice_id, due)
        )
        self.fence.settled(advice_id, "repeat", holder)

    async def park(self, advice_id: str, *, reason: str) -> None:
        holder = await self.database.run(
            f"park advice {advice_id}", lambda: self.plans.park(advice_id, reason)
        )
        self.fence.settled(advice_id, "park", holder)

    async def release(self, advice_ids: Iterable[str]) -> list[str]:
        """As :meth:`PostgresAdviceQueue.release`."""
        ids = list(advice_ids)
        return await self.database.run(
            f"end the leases of {len(ids)} advice(s)", lambda: AdvicePlans.release(ids)
        )

    async def pending(self) -> list[QueuedAdvice]:
        return await self.database.run("list queued advices", AdvicePlans.pending, write=False)

    async def parked(self) -> list[ParkedAdvice]:
        return await self.database.run("list parked advices", AdvicePlans.parked, write=False)

    async def requeue(self, advice_id: str, *, due: float) -> bool:
        finite("due", due)
        return await self.database.run(
            f"requeue advice {advice_id}", lambda: self.plans.requeue(advice_id, due)
        )

    async def next_due(self, now: float | None = None) -> float | None:
        plan = self.plans.next_due
        return await self.database.run("read the next due time", lambda: plan(now), write=False)

    async def stats(self) -> dict[str, int | float | None]:
        return await self.database.run("count advices", self.plans.stats, write=False)

    async def aclose(self) -> None:
        await self.database.aclose()
        if self._sync is not None:
            self._sync.close()


class AsyncPostgresJournal:
    """:class:`~voucher_core.ports.AsyncTransactionJournal` in a PostgreSQL schema."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "voucher",
        pool_size: int = 4,
        timeout: float = 10.0,
        owner: str | None = None,
        pooling: str = "session",
        claim_dsn: str | None = None,
    ) -> None:
        self.database = AsyncDatabase(
            dsn, schema=schema, pool_size=pool_size, timeout=timeout, pooling=pooling
        )
        self.claim_dsn = claim_dsn
        self.owner = owner
        self.damage = DamageLog(log, self.database.where)
        self._sync: PostgresJournal | None = None

    @property
    def sync(self) -> PostgresJournal:
        if self._sync is None:
            db = self.database
            if db.closed:
                raise StorageError(db.where, "open the database", "the storage was closed")
            self._sync = PostgresJournal(
                db.dsn,
                schema=db.schema,
                pool_size=1,
                timeout=db.timeout,
                owner=self.owner,
                pooling=db.pooling,
                claim_dsn=self.claim_dsn,
            )
            self._sync.damage = self.damage  # one list of damaged rows for the pair
        return self._sync

    @property
    def commits(self) -> int:
        return self.database.commits

    async def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        # The snapshot is taken here, before the await: the transaction may move on meanwhile.
        data = JournalPlans.row(tx, decision_deadline, self.owner)
        await self.database.run(
            f"record transaction {tx.id}", lambda: JournalPlans.record(data), single=True
        )
        self.damage.forget(tx.id)

    async def get(self, transaction_id: str) -> JournalEntry | None:
        plan, damage = JournalPlans.get, self.damage
        return await self.database.run(
            f"read transaction {transaction_id}", lambda: plan(transaction_id, damage), write=False
        )

    async def unfinished(self) -> list[JournalEntry]:
        """As :meth:`PostgresJournal.unfinished`: claims the owner for this process first."""
        await asyncio.to_thread(self.sync.claim)
        owner, damage = self.owner, self.damage
        return await self.database.run(
            "list unfinished transactions",
            lambda: JournalPlans.unfinished(owner, damage),
            write=False,
        )

    async def entries(self) -> list[JournalEntry]:
        damage = self.damage
        return await self.database.run(
            "list transactions", lambda: JournalPlans.entries(damage), write=False
        )

    @property
    def damaged(self) -> list[DamagedEntry]:
        """As :attr:`PostgresJournal.damaged` (shared with ``.sync``)."""
        return self.damage.damaged

    async def aclose(self) -> None:
        await self.database.aclose()
        if self._sync is not None:
            self._sync.close()
