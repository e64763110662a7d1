"""Durable storage on SQLite (standard library only): the advice queue and the journal.

Both may share one file (separate tables); then
:mod:`voucher_adapters.stores.sqlite.journal_queue` writes a state change and the advice it
queues in one commit. See :mod:`voucher_adapters.stores.sqlite.database` for the file
itself, :mod:`voucher_adapters.stores.sqlite.queue` and
:mod:`voucher_adapters.stores.sqlite.journal` for the contracts, and
:mod:`voucher_adapters.stores.sqlite.group_commit` for how the async twins batch commits.
``StorageError`` and ``OwnerBusy`` are those of :mod:`voucher_adapters.errors`, the very
classes the PostgreSQL stores raise.
"""

from voucher_adapters.errors import OwnerBusy, StorageError
from voucher_adapters.stores.sqlite.async_stores import AsyncSqliteAdviceQueue, AsyncSqliteJournal
from voucher_adapters.stores.sqlite.database import SCHEMA_VERSION, Database
from voucher_adapters.stores.sqlite.journal import SqliteJournal
from voucher_adapters.stores.sqlite.journal_queue import (
    AsyncSqliteJournalQueue,
    SqliteJournalQueue,
)
from voucher_adapters.stores.sqlite.queue import SqliteAdviceQueue
from voucher_core.ports import ParkedAdvice

__all__ = [
    "SCHEMA_VERSION",
    "AsyncSqliteAdviceQueue",
    "AsyncSqliteJournal",
    "AsyncSqliteJournalQueue",
    "Database",
    "OwnerBusy",
    "ParkedAdvice",
    "SqliteAdviceQueue",
    "SqliteJournal",
    "SqliteJournalQueue",
    "StorageError",
]
