"""The async twins: the same queue and journal, run on a worker thread with group commit.

Each twin owns a sync object (``.sync``, sharing its connection) and a
:class:`~voucher_adapters.stores.sqlite.group_commit.GroupCommitter`. Every awaited call runs on
the worker; a write's await returns only after the commit that holds it. ``.sync`` stays usable for
operators and scripts, but its calls block the calling thread (never call it from the event
loop in a hot path); the operator calls also exist here as coroutines.

``commit_on="loop"`` runs the SQLite work on the event loop's thread instead, still
grouping every call of one loop round into one commit: no thread hand-offs, at the price of
blocking the loop for each commit (well under a millisecond on a local disk).

Constructing a twin opens the file (and checks it) in the calling thread; from inside a
running loop, build it with ``await asyncio.to_thread(AsyncSqliteJournal, path)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Literal

from voucher_adapters.stores.damage import DamagedEntry
from voucher_adapters.stores.sqlite.database import Database
from voucher_adapters.stores.sqlite.group_commit import GroupCommitter, LoopCommitter
from voucher_adapters.stores.sqlite.journal import SqliteJournal
from voucher_adapters.stores.sqlite.queue import SqliteAdviceQueue
from voucher_core.errors import InvalidArgument
from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import JournalEntry, ParkedAdvice, QueuedAdvice
from voucher_core.transaction import Transaction

__all__ = ["AsyncSqliteAdviceQueue", "AsyncSqliteJournal"]


def _committer(database: Database, commit_on: str) -> GroupCommitter | LoopCommitter:
    """Where the twin's SQLite work runs: a worker thread (default), or the event loop."""
    if commit_on == "thread":
        return GroupCommitter(database)
    if commit_on == "loop":
        return LoopCommitter(database)
    raise InvalidArgument(f"commit_on must be 'thread' or 'loop', not {commit_on!r}")


class AsyncSqliteAdviceQueue:
    """:class:`~voucher_core.ports.AsyncAdviceQueue` on a SQLite file.

    ``journal``: the journal of the same file, whose connection and commits this queue then
    shares (so one commit holds journal records and queue changes alike, and the pair can
    be written together: :class:`~voucher_adapters.stores.sqlite.AsyncSqliteJournalQueue`);
    closing them is left to the journal.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease: float = 150.0,
        holder: str | None = None,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        horizon: float = 3600.0,
        commit_on: Literal["thread", "loop"] = "thread",
        journal: AsyncSqliteJournal | None = None,
    ) -> None:
        self.sync = SqliteAdviceQueue(
            path,
            lease=lease,
            holder=holder,
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            horizon=horizon,
            database=journal.sync.database if journal is not None else None,
        )
        self._steps = self.sync.steps
        self._worker: GroupCommitter | LoopCommitter
        if journal is None:
            self._worker = _committer(self.sync.database, commit_on)
        else:
            self._worker = journal.worker
        self._owns_worker = journal is None

    @property
    def commits(self) -> int:
        return self.sync.database.commits

    @property
    def writes(self) -> int:
        return self.sync.database.writes

    async def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        return await self._worker.run(self._steps.enqueue(advice, due, take))

    async def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> list[QueuedAdvice]:
        return await self._worker.run(self._steps.take_due(now, limit, advice_id))

    @property
    def fenced(self) -> int:
        return self.sync.fenced

    async def acknowledge(self, advice_id: str) -> None:
        holder = await self._worker.run(self._steps.acknowledge(advice_id))
        self.sync._refused("acknowledge", advice_id, holder)

    async def repeat_later(self, advice_id: str, *, due: float) -> None:
        holder = await self._worker.run(self._steps.repeat_later(advice_id, due))
        self.sync._refused("repeat", advice_id, holder)

    async def park(self, advice_id: str, *, reason: str) -> None:
        holder = await self._worker.run(self._steps.park(advice_id, reason))
        self.sync._refused("park", advice_id, holder)

    async def release(self, advice_ids: Iterable[str]) -> list[str]:
        """As :meth:`SqliteAdviceQueue.release`."""
        return await self._worker.run(self._steps.release(list(advice_ids)))

    async def pending(self) -> list[QueuedAdvice]:
        return await self._worker.run(self._steps.pending())

    async def parked(self) -> list[ParkedAdvice]:
        return await self._worker.run(self._steps.parked())

    async def requeue(self, advice_id: str, *, due: float) -> bool:
        return await self._worker.run(self._steps.requeue(advice_id, due))

    async def next_due(self, now: float | None = None) -> float | None:
        return await self._worker.run(self._steps.next_due(now))

    async def stats(self) -> dict[str, int | float | None]:
        return await self._worker.run(self._steps.stats())

    async def aclose(self) -> None:
        """Finish the calls already made, then close the file (unless the journal's)."""
        if self._owns_worker:
            await self._worker.aclose()
        self.sync.close()


class AsyncSqliteJournal:
    """:class:`~voucher_core.ports.AsyncTransactionJournal` on a SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        commit_on: Literal["thread", "loop"] = "thread",
        owner: str | None = None,
    ) -> None:
        self.sync = SqliteJournal(
            path, synchronous=synchronous, busy_timeout=busy_timeout, owner=owner
        )
        self._steps = self.sync.steps
        self._worker = _committer(self.sync.database, commit_on)

    @property
    def commits(self) -> int:
        return self.sync.database.commits

    @property
    def writes(self) -> int:
        return self.sync.database.writes

    @property
    def worker(self) -> GroupCommitter | LoopCommitter:
        """What runs this journal's work and commits it (a queue of the same file may share it)."""
        return self._worker

    async def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        # The snapshot is taken here, before the await: the transaction may move on meanwhile.
        await self._worker.run(self._steps.record(tx, decision_deadline))

    async def get(self, transaction_id: str) -> JournalEntry | None:
        return await self._worker.run(self._steps.get(transaction_id))

    async def unfinished(self) -> list[JournalEntry]:
        """As :meth:`SqliteJournal.unfinished`: claims the owner for this process first."""
        self.sync.claim()  # a non-blocking lock on a local file: no wait
        return await self._worker.run(self._steps.unfinished())

    async def entries(self) -> list[JournalEntry]:
        return await self._worker.run(self._steps.entries())

    @property
    def damaged(self) -> list[DamagedEntry]:
        """As :attr:`SqliteJournal.damaged` (shared with ``.sync``)."""
        return self.sync.damaged

    async def aclose(self) -> None:
        await self._worker.aclose()
        self.sync.close()
