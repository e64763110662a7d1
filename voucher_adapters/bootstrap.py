"""Where a command keeps its advice queue and journal: in memory, in a SQLite file, or in a
PostgreSQL database shared by many tills and processes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from voucher_adapters.stores.memory import InMemoryAdviceQueue
from voucher_core.ports import AdviceQueue, ParkedAdvice, QueuedAdvice, TransactionJournal

__all__ = ["DurableJournal", "LocalQueue", "MissingDatabase", "OperatorQueue", "durable", "stores"]


class LocalQueue(AdviceQueue, Protocol):
    """A queue a command can also inspect: how many wait, when the next is due, which."""

    def __len__(self) -> int: ...

    def next_due(self) -> float | None: ...

    def pending(self) -> Sequence[QueuedAdvice]: ...


class OperatorQueue(LocalQueue, Protocol):
    """A durable queue, with what an operator needs on top."""

    def parked(self) -> Sequence[ParkedAdvice]: ...

    def requeue(self, advice_id: str, *, due: float) -> bool: ...

    def stats(self) -> dict[str, int | float | None]: ...

    def close(self) -> None: ...


class DurableJournal(TransactionJournal, Protocol):
    def close(self) -> None: ...


class MissingDatabase(Exception):
    """A command that only reads was pointed at a SQLite file that does not exist."""


@contextmanager
def durable(
    *,
    db: str | None = None,
    dsn: str | None = None,
    create: bool = True,
    owner: str | None = None,
) -> Iterator[tuple[OperatorQueue, DurableJournal]]:
    """The queue and journal in the SQLite file ``db`` or the PostgreSQL database ``dsn``.

    ``create=False`` refuses a SQLite file that does not exist yet (commands that only read).
    On PostgreSQL the schema is created or migrated first (idempotent). ``owner`` names the
    driving process whose unfinished sales the journal lists (see ``SqliteJournal``).
    """
    queue: OperatorQueue
    journal: DurableJournal
    if dsn is not None:
        from voucher_adapters.stores.postgres import PostgresAdviceQueue, PostgresJournal, migrate  # noqa: PLC0415

        migrate(dsn)
        journal = PostgresJournal(dsn, owner=owner)
        try:
            queue = PostgresAdviceQueue(dsn)
        except BaseException:
            journal.close()
            raise
    else:
        path = db if db is not None else "./voucher.db"
        if not create and not Path(path).exists():
            raise MissingDatabase(f"no database at {path} (nothing has been stored there yet)")
        from voucher_adapters.stores.sqlite import SqliteAdviceQueue, SqliteJournal  # noqa: PLC0415

        journal = SqliteJournal(path, owner=owner)
        try:
            queue = SqliteAdviceQueue(path)
        except BaseException:
            journal.close()
            raise
    try:
        yield queue, journal
    finally:
        queue.close()
        journal.close()


@contextmanager
def stores(
    db: str | None = None, dsn: str | None = None
) -> Iterator[tuple[LocalQueue, TransactionJournal | None]]:
    """An in-memory queue and no journal, or both durable (``db`` or ``dsn``)."""
    if db is None and dsn is None:
        yield InMemoryAdviceQueue(), None
        return
    with durable(db=db, dsn=dsn) as (queue, journal):
        yield queue, journal
