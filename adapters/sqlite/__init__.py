"""Durable storage on SQLite (standard library only): the advice queue and the journal.

Both may share one file (separate tables). See :mod:`adapters.sqlite.database` for the file
itself, :mod:`adapters.sqlite.queue` and :mod:`adapters.sqlite.journal` for the contracts, and
:mod:`adapters.sqlite.group` for how the async twins batch commits.
"""

from adapters.sqlite.aio import AsyncSqliteAdviceQueue, AsyncSqliteJournal
from adapters.sqlite.claim import OwnerBusy
from adapters.sqlite.database import SCHEMA_VERSION, Database
from adapters.sqlite.errors import StorageError
from adapters.sqlite.journal import SqliteJournal
from adapters.sqlite.queue import SqliteAdviceQueue
from voucher_core.ports import ParkedAdvice

__all__ = [
    "SCHEMA_VERSION",
    "AsyncSqliteAdviceQueue",
    "AsyncSqliteJournal",
    "Database",
    "OwnerBusy",
    "ParkedAdvice",
    "SqliteAdviceQueue",
    "SqliteJournal",
    "StorageError",
]
