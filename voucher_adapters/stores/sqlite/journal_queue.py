"""The journal and the advice queue of one SQLite file, written in one commit.

:class:`SqliteJournalQueue` (and its async twin) is the
:class:`~voucher_core.ports.JournalQueue` of a journal and a queue on the same file: the
journal's step and the queue's step run in one transaction, on the journal's connection,
and commit together or not at all. A state change that owes an advice is never on disk
without the advice in the queue, so ``voucher queue drain`` alone finds every advice owed,
even right after a crash; and an acknowledged advice leaves the queue in the commit that
journals the sale's end.

The steps are the very ones the journal and the queue run alone
(:class:`~voucher_adapters.stores.sqlite.journal.JournalSteps`,
:class:`~voucher_adapters.stores.sqlite.queue.AdviceSteps`): the pair adds no SQL of its own.
"""

from __future__ import annotations

import sqlite3

from voucher_adapters.stores.sqlite.async_stores import AsyncSqliteAdviceQueue, AsyncSqliteJournal
from voucher_adapters.stores.sqlite.database import Step
from voucher_adapters.stores.sqlite.journal import JournalSteps, SqliteJournal
from voucher_adapters.stores.sqlite.queue import AdviceSteps, SqliteAdviceQueue
from voucher_core.errors import InvalidArgument
from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import QueuedAdvice
from voucher_core.transaction import Transaction

__all__ = ["AsyncSqliteJournalQueue", "SqliteJournalQueue"]


def _enqueue(
    journal: JournalSteps,
    queue: AdviceSteps,
    tx: Transaction,
    advice: TenderAdvice | BasicReversal,
    *,
    due: float,
    take: bool,
) -> Step[QueuedAdvice | None]:
    # Both steps are built now, in the caller: the snapshot and the advice's bytes are taken
    # before the transaction can move on.
    record, enqueue = journal.record(tx, None), queue.enqueue(advice, due, take)

    def run(conn: sqlite3.Connection) -> QueuedAdvice | None:
        record.run(conn)
        return enqueue.run(conn)

    return Step(f"{record.operation} with its advice {advice.id}", run)


def _settle(
    journal: JournalSteps,
    queue: AdviceSteps,
    tx: Transaction,
    advice_id: str,
    park_reason: str | None,
) -> Step[str | None]:
    record = journal.record(tx, None)
    if park_reason is None:
        settle = queue.acknowledge(advice_id)
    else:
        settle = queue.park(advice_id, park_reason)

    def run(conn: sqlite3.Connection) -> str | None:
        record.run(conn)
        return settle.run(conn)

    return Step(f"{record.operation}, {settle.operation}", run)


def _same_file(journal_path: str, queue_path: str) -> None:
    if journal_path != queue_path:
        raise InvalidArgument(
            f"the journal ({journal_path}) and the queue ({queue_path}) are in different "
            "files: they cannot commit together"
        )


class SqliteJournalQueue:
    """:class:`~voucher_core.ports.JournalQueue` of a journal and a queue on one file."""

    def __init__(self, journal: SqliteJournal, queue: SqliteAdviceQueue) -> None:
        _same_file(journal.path, queue.path)
        self.journal = journal
        self.queue = queue

    def record_and_enqueue(
        self, tx: Transaction, advice: TenderAdvice | BasicReversal, *, due: float, take: bool
    ) -> QueuedAdvice | None:
        step = _enqueue(self.journal.steps, self.queue.steps, tx, advice, due=due, take=take)
        return self.journal.database.run(step)

    def record_and_settle(
        self, tx: Transaction, advice_id: str, *, park_reason: str | None = None
    ) -> None:
        step = _settle(self.journal.steps, self.queue.steps, tx, advice_id, park_reason)
        holder = self.journal.database.run(step)
        action = "acknowledge" if park_reason is None else "park"
        self.queue._refused(action, advice_id, holder)


class AsyncSqliteJournalQueue:
    """:class:`~voucher_core.ports.AsyncJournalQueue` of the async twins on one file; the
    pair's work runs where the journal's does (its group commit), so a queue that shares
    the journal's connection (``AsyncSqliteAdviceQueue(path, journal=...)``) has its own
    calls in the same commits."""

    def __init__(self, journal: AsyncSqliteJournal, queue: AsyncSqliteAdviceQueue) -> None:
        _same_file(journal.sync.path, queue.sync.path)
        self.journal = journal
        self.queue = queue

    async def record_and_enqueue(
        self, tx: Transaction, advice: TenderAdvice | BasicReversal, *, due: float, take: bool
    ) -> QueuedAdvice | None:
        step = _enqueue(
            self.journal.sync.steps, self.queue.sync.steps, tx, advice, due=due, take=take
        )
        return await self.journal.worker.run(step)

    async def record_and_settle(
        self, tx: Transaction, advice_id: str, *, park_reason: str | None = None
    ) -> None:
        step = _settle(self.journal.sync.steps, self.queue.sync.steps, tx, advice_id, park_reason)
        holder = await self.journal.worker.run(step)
        action = "acknowledge" if park_reason is None else "park"
        self.queue.sync._refused(action, advice_id, holder)
