"""The transaction journal in PostgreSQL: one row per transaction holding its latest snapshot.

The snapshot is :func:`voucher_core.snapshot.snapshot_json`, compact JSON text byte for byte
what the SQLite journal stores (``text`` rather than ``jsonb``: it keeps the exact bytes and
takes any string a reply may carry; cast it to ``jsonb`` to query it). Beside it, for
operators: the state, whether it is terminal, whether it is flagged for reconciliation, the
decision deadline and when it was recorded. Re-recording a transaction replaces its row in
one committed upsert that keeps its place (``seq``) in the order of first recording.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

from voucher_adapters.stores.postgres.claim import OwnerClaim, claim_owner
from voucher_adapters.stores.postgres.database import Database, Plan
from voucher_core.errors import InvalidArgument
from voucher_core.ports import JournalEntry
from voucher_core.snapshot import restore, snapshot_json
from voucher_core.table import TERMINAL
from voucher_core.transaction import Transaction

__all__ = ["JournalPlans", "PostgresJournal"]

_COLUMNS = "snapshot, decision_deadline"
JournalRow = tuple[str, str, bool, bool, str, float | None, str | None]


def _entries(rows: list[tuple[Any, ...]]) -> list[JournalEntry]:
    return [JournalEntry(restore(json.loads(data)), deadline) for data, deadline in rows]


class JournalPlans:
    """The journal's SQL as plans, shared by the sync and the async journal."""

    @staticmethod
    def row(tx: Transaction, decision_deadline: float | None, owner: str | None) -> JournalRow:
        """The row to store, taken now: the transaction may move on right after."""
        text = snapshot_json(tx)
        if decision_deadline is not None and not math.isfinite(decision_deadline):
            raise InvalidArgument(f"decision_deadline must be finite, not {decision_deadline!r}")
        state = tx.state
        return (
            tx.id,
            state.value,
            state in TERMINAL,
            tx.reconciliation is not None,
            text,
            decision_deadline,
            owner,
        )

    @staticmethod
    def record(row: JournalRow) -> Plan[None]:
        yield (
            "INSERT INTO {s}.journal (id, state, terminal, reconciliation, snapshot, "
            "decision_deadline, owner) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET "
            "state = EXCLUDED.state, terminal = EXCLUDED.terminal, "
            "reconciliation = EXCLUDED.reconciliation, snapshot = EXCLUDED.snapshot, "
            "decision_deadline = EXCLUDED.decision_deadline, owner = EXCLUDED.owner, "
            "recorded_at = now()",
            row,
        )

    @staticmethod
    def get(transaction_id: str) -> Plan[JournalEntry | None]:
        _, rows = yield f"SELECT {_COLUMNS} FROM {{s}}.journal WHERE id = %s", (transaction_id,)
        return _entries(rows)[0] if rows else None

    @staticmethod
    def unfinished(owner: str | None) -> Plan[list[JournalEntry]]:
        _, rows = yield (
            f"SELECT {_COLUMNS} FROM {{s}}.journal WHERE NOT terminal "
            "AND owner IS NOT DISTINCT FROM %s ORDER BY seq",
            (owner,),
        )
        return _entries(rows)

    @staticmethod
    def entries() -> Plan[list[JournalEntry]]:
        _, rows = yield f"SELECT {_COLUMNS} FROM {{s}}.journal ORDER BY seq", ()
        return _entries(rows)

    @staticmethod
    def count() -> Plan[int]:
        _, rows = yield "SELECT count(*) FROM {s}.journal", ()
        return int(rows[0][0])


class PostgresJournal:
    """:class:`~voucher_core.ports.TransactionJournal` in a PostgreSQL schema; thread-safe.

    ``record`` has committed when it returns, or raises
    :class:`~voucher_adapters.stores.postgres.StorageError` and the journal still holds the previous
    snapshot. The schema is created or migrated on opening. ``owner`` as for
    :class:`~voucher_adapters.stores.sqlite.SqliteJournal`: every process sharing the journal names
    itself, and ``unfinished`` claims the owner for this process first (:meth:`claim`; see
    :mod:`voucher_adapters.stores.postgres.claim`).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "voucher",
        pool_size: int = 4,
        timeout: float = 10.0,
        owner: str | None = None,
    ) -> None:
        self.database = Database(dsn, schema=schema, pool_size=pool_size, timeout=timeout)
        self.owner = owner
        self._claim: OwnerClaim | None = None
        self._claiming = threading.Lock()

    @property
    def dsn(self) -> str:
        """The DSN without its password."""
        return self.database.where

    @property
    def schema(self) -> str:
        return self.database.schema

    @property
    def commits(self) -> int:
        return self.database.commits

    def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        row = JournalPlans.row(tx, decision_deadline, self.owner)
        self.database.run(
            f"record transaction {tx.id}", lambda: JournalPlans.record(row), single=True
        )

    def get(self, transaction_id: str) -> JournalEntry | None:
        plan = JournalPlans.get
        return self.database.run(
            f"read transaction {transaction_id}", lambda: plan(transaction_id), write=False
        )

    def claim(self) -> None:
        """Claim this journal's owner for this process, or raise
        :class:`~voucher_adapters.stores.postgres.claim.OwnerBusy` if another live process holds it
        (after waiting up to ``timeout`` for a holder that has just died to be noticed).
        :meth:`unfinished` calls it. A claim already held is checked with one round trip:
        if the server ended its session (a restart), it is claimed again, and refused if
        another process took it meanwhile."""
        with self._claiming:
            if self._claim is not None and not self._claim.alive():
                # Its connection was lost, and the server dropped the lock: claim again.
                lost, self._claim = self._claim, None
                lost.release()
            if self._claim is None:
                db = self.database
                self._claim = claim_owner(db.dsn, db.schema, self.owner, timeout=db.timeout)

    def unfinished(self) -> list[JournalEntry]:
        """The unfinished transactions of this journal's ``owner``, after claiming it."""
        self.claim()
        owner = self.owner
        return self.database.run(
            "list unfinished transactions", lambda: JournalPlans.unfinished(owner), write=False
        )

    def entries(self) -> list[JournalEntry]:
        return self.database.run("list transactions", JournalPlans.entries, write=False)

    def __len__(self) -> int:
        return self.database.run("count transactions", JournalPlans.count, write=False)

    def close(self) -> None:
        with self._claiming:
            claim, self._claim = self._claim, None
        if claim is not None:
            claim.release()
        self.database.close()

    def __enter__(self) -> PostgresJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
