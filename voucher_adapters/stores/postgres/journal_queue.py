"""The journal and the advice queue of one PostgreSQL schema, written in one commit.

:class:`PostgresJournalQueue` (and its async twin) is the
:class:`~voucher_core.ports.JournalQueue` of a journal and a queue in the same schema of
the same database. The journal record rides in the queue's statement as a data-modifying
``WITH`` clause: one statement, run in autocommit, so the pair costs one round trip and one
commit, and either both rows change or neither. A state change that owes an advice is never
stored without the advice, so ``voucher queue drain`` alone finds every advice owed, even
right after a crash; and an acknowledged advice leaves the queue in the commit that journals
the sale's end.

Only an advice that was queued before (recovery queuing it again), when the driver takes it,
needs a second transaction to lease it: the record and the advice are both stored by then.
"""

from __future__ import annotations

from voucher_adapters.stores.postgres.async_stores import (
    AsyncPostgresAdviceQueue,
    AsyncPostgresJournal,
)
from voucher_adapters.stores.postgres.database import AsyncDatabase, Database, Plan
from voucher_adapters.stores.postgres.journal import JournalPlans, PostgresJournal
from voucher_adapters.stores.postgres.queue import PostgresAdviceQueue
from voucher_adapters.stores.postgres.queue_sql import AdvicePlans, Holder, Taken, row
from voucher_core.errors import InvalidArgument
from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import QueuedAdvice
from voucher_core.transaction import Transaction

__all__ = ["AsyncPostgresJournalQueue", "PostgresJournalQueue"]


def _check(journal: Database | AsyncDatabase, queue: Database | AsyncDatabase) -> None:
    if (journal.dsn, journal.schema) != (queue.dsn, queue.schema):
        raise InvalidArgument(
            f"the journal ({journal.where}, schema {journal.schema}) and the queue "
            f"({queue.where}, schema {queue.schema}) are in different places: they cannot "
            "commit together"
        )


class _Pair:
    """The plans of one write of the pair, made in the caller (the snapshot and the
    advice's bytes are taken before the transaction can move on); shared by the twins."""

    def __init__(self, plans: AdvicePlans, owner: str | None, tx: Transaction) -> None:
        self.plans = plans
        self.row = JournalPlans.row(tx, None, owner)
        self.recorded = JournalPlans.recorded(self.row)

    def store_leased(self, advice: TenderAdvice | BasicReversal, due: float) -> Plan[Taken | None]:
        return self.plans.store_leased([row(advice, due)], advice, with_=self.recorded)

    def take(self, advice: TenderAdvice | BasicReversal, due: float) -> Plan[Taken]:
        return self.plans.take_due(due, 1, advice.id, known=advice)

    def store(self, advice: TenderAdvice | BasicReversal, due: float) -> Plan[None]:
        yield from JournalPlans.record(self.row)
        yield from self.plans.enqueue([row(advice, due)])

    def settle(self, advice_id: str, park_reason: str | None) -> Plan[Holder]:
        if park_reason is None:
            return self.plans.acknowledge(advice_id, with_=self.recorded)
        return self.plans.park(advice_id, park_reason, with_=self.recorded)


def _operation(tx: Transaction, advice_id: str) -> str:
    return f"record transaction {tx.id} with its advice {advice_id}"


class PostgresJournalQueue:
    """:class:`~voucher_core.ports.JournalQueue` of a journal and a queue in one schema."""

    def __init__(self, journal: PostgresJournal, queue: PostgresAdviceQueue) -> None:
        _check(journal.database, queue.database)
        self.journal = journal
        self.queue = queue

    def record_and_enqueue(
        self, tx: Transaction, advice: TenderAdvice | BasicReversal, *, due: float, take: bool
    ) -> QueuedAdvice | None:
        pair = _Pair(self.queue.plans, self.journal.owner, tx)
        database, operation = self.journal.database, _operation(tx, advice.id)
        if not take:
            database.run(operation, lambda: pair.store(advice, due))
            self.journal.damage.forget(tx.id)
            return None
        taken = database.run(operation, lambda: pair.store_leased(advice, due), single=True)
        self.journal.damage.forget(tx.id)
        if taken is None:  # queued before: both are stored; lease it to this holder
            taken = database.run(f"take advice {advice.id}", lambda: pair.take(advice, due))
        held = self.queue.fence.hold(taken)
        return held[0] if held else None

    def record_and_settle(
        self, tx: Transaction, advice_id: str, *, park_reason: str | None = None
    ) -> None:
        pair = _Pair(self.queue.plans, self.journal.owner, tx)
        holder = self.journal.database.run(
            _operation(tx, advice_id), lambda: pair.settle(advice_id, park_reason), single=True
        )
        self.journal.damage.forget(tx.id)
        action = "acknowledge" if park_reason is None else "park"
        self.queue.fence.settled(advice_id, action, holder)


class AsyncPostgresJournalQueue:
    """:class:`~voucher_core.ports.AsyncJournalQueue` of the async twins in one schema (on
    the journal's pool)."""

    def __init__(self, journal: AsyncPostgresJournal, queue: AsyncPostgresAdviceQueue) -> None:
        _check(journal.database, queue.database)
        self.journal = journal
        self.queue = queue

    async def record_and_enqueue(
        self, tx: Transaction, advice: TenderAdvice | BasicReversal, *, due: float, take: bool
    ) -> QueuedAdvice | None:
        pair = _Pair(self.queue.plans, self.journal.owner, tx)
        database, operation = self.journal.database, _operation(tx, advice.id)
        if not take:
            await database.run(operation, lambda: pair.store(advice, due))
            self.journal.damage.forget(tx.id)
            return None
        taken = await database.run(operation, lambda: pair.store_leased(advice, due), single=True)
        self.journal.damage.forget(tx.id)
        if taken is None:  # queued before: both are stored; lease it to this holder
            taken = await database.run(f"take advice {advice.id}", lambda: pair.take(advice, due))
        held = self.queue.fence.hold(taken)
        return held[0] if held else None

    async def record_and_settle(
        self, tx: Transaction, advice_id: str, *, park_reason: str | None = None
    ) -> None:
        pair = _Pair(self.queue.plans, self.journal.owner, tx)
        holder = await self.journal.database.run(
            _operation(tx, advice_id), lambda: pair.settle(advice_id, park_reason), single=True
        )
        self.journal.damage.forget(tx.id)
        action = "acknowledge" if park_reason is None else "park"
        self.queue.fence.settled(advice_id, action, holder)
