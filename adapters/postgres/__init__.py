"""Durable storage on PostgreSQL (psycopg 3): the advice queue and the journal.

Install with ``pip install 'voucher-core[postgres]'``. Both live in one schema (``voucher``
by default), created or migrated when a queue or journal opens it, or ahead of time with
:func:`migrate`. Any number of forwarders, in any number of processes, may drain one queue:
rows are claimed ``FOR UPDATE SKIP LOCKED`` under a lease with a fencing token (see
:mod:`adapters.postgres.queue`). The public API mirrors :mod:`adapters.sqlite`.
"""

from adapters.postgres.aio import AsyncPostgresAdviceQueue, AsyncPostgresJournal
from adapters.postgres.claim import OwnerBusy
from adapters.postgres.errors import StorageError, redact
from adapters.postgres.journal import PostgresJournal
from adapters.postgres.queue import PostgresAdviceQueue
from adapters.postgres.schema import SCHEMA_VERSION, migrate
from voucher_core.ports import ParkedAdvice

__all__ = [
    "SCHEMA_VERSION",
    "AsyncPostgresAdviceQueue",
    "AsyncPostgresJournal",
    "OwnerBusy",
    "ParkedAdvice",
    "PostgresAdviceQueue",
    "PostgresJournal",
    "StorageError",
    "migrate",
    "redact",
]
