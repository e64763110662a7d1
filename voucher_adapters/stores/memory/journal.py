"""A transaction journal in memory: for tests and simulations, lost when the process ends.

It keeps what a durable journal keeps (a snapshot per transaction, taken through
:mod:`voucher_core.snapshot`, so a restore here behaves exactly like one from disk) and
honours the same contract, except that nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voucher_core.ports import JournalEntry
from voucher_core.snapshot import restore, snapshot
from voucher_core.table import TERMINAL, State
from voucher_core.transaction import Transaction

__all__ = ["AsyncInMemoryJournal", "InMemoryJournal"]


class InMemoryJournal:
    def __init__(self) -> None:
        self._rows: dict[str, tuple[dict[str, Any], float | None]] = {}

    def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        self._rows[tx.id] = (snapshot(tx), decision_deadline)

    def get(self, transaction_id: str) -> JournalEntry | None:
        row = self._rows.get(transaction_id)
        return None if row is None else JournalEntry(restore(row[0]), row[1])

    def unfinished(self) -> Sequence[JournalEntry]:
        return [
            JournalEntry(restore(data), deadline)
            for data, deadline in self._rows.values()
            if State(data["state"]) not in TERMINAL
        ]

    def entries(self) -> Sequence[JournalEntry]:
        return [JournalEntry(restore(data), deadline) for data, deadline in self._rows.values()]

    def __len__(self) -> int:
        return len(self._rows)


class AsyncInMemoryJournal:
    """The same journal behind the async port; ``sync`` is the shared underlying journal."""

    def __init__(self, sync: InMemoryJournal | None = None) -> None:
        self.sync = sync if sync is not None else InMemoryJournal()

    async def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        self.sync.record(tx, decision_deadline=decision_deadline)

    async def get(self, transaction_id: str) -> JournalEntry | None:
        return self.sync.get(transaction_id)

    async def unfinished(self) -> Sequence[JournalEntry]:
        return self.sync.unfinished()

    async def entries(self) -> Sequence[JournalEntry]:
        return self.sync.entries()
