"""The transaction journal in SQLite: one row per transaction holding its latest snapshot.

A snapshot is :func:`voucher_core.snapshot.snapshot_json` (compact JSON), so it reads back
exactly as the in-memory journal's does. Re-recording a transaction replaces its row in one
committed statement; if the write fails the previous snapshot is still there. ``entries``
and ``unfinished`` list transactions in the order they were first recorded.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterable

from voucher_adapters.stores.sqlite.claim import OwnerClaim, claim_owner
from voucher_adapters.stores.sqlite.database import Database, Step, wall_time
from voucher_core.errors import InvalidArgument
from voucher_core.ports import JournalEntry
from voucher_core.snapshot import restore, snapshot_json
from voucher_core.table import TERMINAL
from voucher_core.transaction import Transaction

__all__ = ["JournalSteps", "SqliteJournal"]

_COLUMNS = "snapshot, decision_deadline"


def _entries(rows: Iterable[tuple[str, float | None]]) -> list[JournalEntry]:
    return [JournalEntry(restore(json.loads(data)), deadline) for data, deadline in rows]


class JournalSteps:
    """The journal's SQL as :class:`Step` objects, shared by the sync and the async journal.

    ``owner`` names the driving process whose transactions these are (None: the only one).
    """

    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner

    def record(self, tx: Transaction, decision_deadline: float | None) -> Step[None]:
        # Taken now, in the caller's thread: the transaction may move on right after.
        text = snapshot_json(tx)
        if decision_deadline is not None and not math.isfinite(decision_deadline):
            raise InvalidArgument(f"decision_deadline must be finite, not {decision_deadline!r}")
        state = tx.state
        row = (
            tx.id,
            state.value,
            int(state in TERMINAL),
            text,
            decision_deadline,
            wall_time(),
            self.owner,
        )

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO journal (id, state, terminal, snapshot, decision_deadline, "
                "recorded_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "state = excluded.state, terminal = excluded.terminal, "
                "snapshot = excluded.snapshot, decision_deadline = excluded.decision_deadline, "
                "recorded_at = excluded.recorded_at, owner = excluded.owner",
                row,
            )

        return Step(f"record transaction {tx.id}", run)

    @staticmethod
    def get(transaction_id: str) -> Step[JournalEntry | None]:
        def run(conn: sqlite3.Connection) -> JournalEntry | None:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM journal WHERE id = ?", (transaction_id,)
            ).fetchall()
            return _entries(rows)[0] if rows else None

        return Step(f"read transaction {transaction_id}", run, write=False)

    def unfinished(self) -> Step[list[JournalEntry]]:
        def run(conn: sqlite3.Connection) -> list[JournalEntry]:
            sql = f"SELECT {_COLUMNS} FROM journal WHERE terminal = 0 AND owner IS ? ORDER BY seq"
            return _entries(conn.execute(sql, (self.owner,)))

        return Step("list unfinished transactions", run, write=False)

    @staticmethod
    def entries() -> Step[list[JournalEntry]]:
        def run(conn: sqlite3.Connection) -> list[JournalEntry]:
            return _entries(conn.execute(f"SELECT {_COLUMNS} FROM journal ORDER BY seq"))

        return Step("list transactions", run, write=False)

    @staticmethod
    def count() -> Step[int]:
        def run(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0])

        return Step("count transactions", run, write=False)


class SqliteJournal:
    """:class:`~voucher_core.ports.TransactionJournal` on a SQLite file; thread-safe.

    ``record`` has committed when it returns, or raises
    :class:`~voucher_adapters.stores.sqlite.StorageError`
    and the journal still holds the previous snapshot.

    ``owner``: when several driving processes share one journal, each names itself here (a
    name that stays the same across its restarts, such as ``"lane-3"``). ``record`` marks a
    transaction as that owner's, and ``unfinished`` (what ``recover()`` resumes) lists only
    the owner's own, so a restarted process never takes over a sale another live process is
    driving. The default, ``None``, is the one process of a journal no one shares.

    ``unfinished`` also claims the owner for this process (:meth:`claim`), since what it lists
    is what the caller is about to resume: while a live process holds the claim, another
    process that asks for the same owner's unfinished sales gets
    :class:`~voucher_adapters.stores.sqlite.claim.OwnerBusy` instead of sales it would drive twice.
    The claim goes when the journal is closed or the process ends, however it ends.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        owner: str | None = None,
    ) -> None:
        self.steps = JournalSteps(owner)
        self.database = Database(path, synchronous=synchronous, busy_timeout=busy_timeout)
        self._claim: OwnerClaim | None = None
        self._claiming = threading.Lock()

    @property
    def owner(self) -> str | None:
        return self.steps.owner

    @property
    def path(self) -> str:
        return self.database.path

    @property
    def commits(self) -> int:
        return self.database.commits

    def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        self.database.run(self.steps.record(tx, decision_deadline))

    def get(self, transaction_id: str) -> JournalEntry | None:
        return self.database.run(self.steps.get(transaction_id))

    def claim(self) -> None:
        """Claim this journal's owner for this process, or raise
        :class:`~voucher_adapters.stores.sqlite.claim.OwnerBusy` if another live process holds it.
        Repeats are free; :meth:`unfinished` calls it."""
        with self._claiming:
            if self._claim is None:
                self._claim = claim_owner(self.database.path, self.owner)

    def unfinished(self) -> list[JournalEntry]:
        """This owner's unfinished transactions, oldest first, after claiming the owner."""
        self.claim()
        return self.database.run(self.steps.unfinished())

    def entries(self) -> list[JournalEntry]:
        return self.database.run(self.steps.entries())

    def __len__(self) -> int:
        return self.database.run(self.steps.count())

    def close(self) -> None:
        with self._claiming:
            claim, self._claim = self._claim, None
        if claim is not None:
            claim.release()
        self.database.close()

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
