"""Durable storage on PostgreSQL (psycopg 3): the advice queue and the journal.

Install with ``pip install 'voucher-core[postgres]'``. Both live in one schema (``voucher``
by default), created or migrated when a queue or journal opens it, or ahead of time with
:func:`migrate`. Any number of forwarders, in any number of processes, may drain one queue:
rows are claimed ``FOR UPDATE SKIP LOCKED`` under a lease with a fencing token (see
:mod:`voucher_adapters.stores.postgres.queue`). The public API mirrors
:mod:`voucher_adapters.stores.sqlite`, down to its errors: ``StorageError`` and ``OwnerBusy`` are
those of :mod:`voucher_adapters.errors`, the very classes the SQLite stores raise. A journal
and a queue in one schema write a state change and the advice it queues in one commit
(:mod:`voucher_adapters.stores.postgres.journal_queue`).
"""

from voucher_adapters.errors import OwnerBusy, StorageError
from voucher_adapters.stores.postgres.async_stores import (
    AsyncPostgresAdviceQueue,
    AsyncPostgresJournal,
)
from voucher_adapters.stores.postgres.errors import redact
from voucher_adapters.stores.postgres.journal import PostgresJournal
from voucher_adapters.stores.postgres.journal_queue import (
    AsyncPostgresJournalQueue,
    PostgresJournalQueue,
)
from voucher_adapters.stores.postgres.queue import PostgresAdviceQueue
from voucher_adapters.stores.postgres.schema import SCHEMA_VERSION, migrate
from voucher_core.ports import ParkedAdvice

__all__ = [
    "SCHEMA_VERSION",
    "AsyncPostgresAdviceQueue",
    "AsyncPostgresJournal",
    "AsyncPostgresJournalQueue",
    "OwnerBusy",
    "ParkedAdvice",
    "PostgresAdviceQueue",
    "PostgresJournal",
    "PostgresJournalQueue",
    "StorageError",
    "migrate",
    "redact",
]
