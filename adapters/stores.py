"""Where a command keeps its advice queue and journal: in memory, or in a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from adapters.memory import InMemoryAdviceQueue
from voucher_core.ports import AdviceQueue, QueuedAdvice, TransactionJournal

__all__ = ["LocalQueue", "stores"]


class LocalQueue(AdviceQueue, Protocol):
    """A queue a command can also inspect: how many wait, when the next is due, which."""

    def __len__(self) -> int: ...

    def next_due(self) -> float | None: ...

    def pending(self) -> Sequence[QueuedAdvice]: ...


@contextmanager
def stores(db: str | None) -> Iterator[tuple[LocalQueue, TransactionJournal | None]]:
    """An in-memory queue and no journal, or both in the SQLite file ``db``."""
    if db is None:
        yield InMemoryAdviceQueue(), None
        return
    from adapters.sqlite import SqliteAdviceQueue, SqliteJournal  # noqa: PLC0415

    journal = SqliteJournal(db)
    try:
        queue = SqliteAdviceQueue(db)
        try:
            yield queue, journal
        finally:
            queue.close()
    finally:
        journal.close()
