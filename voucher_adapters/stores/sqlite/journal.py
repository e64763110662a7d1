"""The transaction journal in SQLite: one row per transaction holding its latest snapshot.

A snapshot is :func:`voucher_core.snapshot.snapshot_json` (compact JSON), so it reads back
exactly as the in-memory journal's does. Re-recording a transaction replaces its row in one
committed statement; if the write fails the previous snapshot is still there. ``entries``
and ``unfinished`` list transactions in the order they were first recorded; a row that
cannot be read back is skipped, logged and listed in ``damaged``
(:mod:`voucher_adapters.stores.damage`).
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading

from voucher_adapters.errors import StorageError
from voucher_adapters.stores.damage import DamagedEntry, DamageLog
from voucher_adapters.stores.sqlite.claim import OwnerClaim, claim_owner, is_claimed
from voucher_adapters.stores.sqlite.database import Database, Step, wall_time
from voucher_adapters.stores.sqlite.queue import release_leases
from voucher_core.errors import InvalidArgument
from voucher_core.ports import JournalEntry
from voucher_core.snapshot import snapshot_json
from voucher_core.table import TERMINAL
from voucher_core.transaction import Transaction

__all__ = ["JournalSteps", "SqliteJournal"]

log = logging.getLogger("voucher_core.sqlite")

_COLUMNS = "id, snapshot, decision_deadline"
# The queued advices, leased by anyone, of the sales an owner recorded.
_LEASED_OF_OWNER = (
    "SELECT a.id FROM advice a WHERE a.state = 'queued' AND a.lease_until IS NOT NULL "
    "AND EXISTS (SELECT 1 FROM journal j WHERE j.id = a.request_id AND j.owner IS ?) "
    "ORDER BY a.seq"
)


class JournalSteps:
    """The journal's SQL as :class:`Step` objects, shared by the sync and the async journal.

    ``owner`` names the driving process whose transactions these are (None: the only one).
    ``damage`` collects the rows that cannot be read back.
    """

    def __init__(self, owner: str | None = None, damage: DamageLog | None = None) -> None:
        self.owner = owner
        self.damage = damage if damage is not None else DamageLog(log)

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

        damage = self.damage

        def run(conn: sqlite3.Connection) -> None:
            damage.forget(row[0])
            conn.execute(
                "INSERT INTO journal (id, state, terminal, snapshot, decision_deadline, "
                "recorded_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "state = excluded.state, terminal = excluded.terminal, "
                "snapshot = excluded.snapshot, decision_deadline = excluded.decision_deadline, "
                "recorded_at = excluded.recorded_at, owner = excluded.owner",
                row,
            )

        return Step(f"record transaction {tx.id}", run)

    def get(self, transaction_id: str) -> Step[JournalEntry | None]:
        damage = self.damage

        def run(conn: sqlite3.Connection) -> JournalEntry | None:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM journal WHERE id = ?", (transaction_id,)
            ).fetchall()
            return damage.entry(*rows[0]) if rows else None

        return Step(f"read transaction {transaction_id}", run, write=False)

    def unfinished(self) -> Step[list[JournalEntry]]:
        damage = self.damage

        def run(conn: sqlite3.Connection) -> list[JournalEntry]:
            sql = f"SELECT {_COLUMNS} FROM journal WHERE terminal = 0 AND owner IS ? ORDER BY seq"
            return damage.entries(conn.execute(sql, (self.owner,)))

        return Step("list unfinished transactions", run, write=False)

    def entries(self) -> Step[list[JournalEntry]]:
        damage = self.damage

        def run(conn: sqlite3.Connection) -> list[JournalEntry]:
            return damage.entries(conn.execute(f"SELECT {_COLUMNS} FROM journal ORDER BY seq"))

        return Step("list transactions", run, write=False)

    @staticmethod
    def unfinished_owners() -> Step[dict[str, str | None]]:
        def run(conn: sqlite3.Connection) -> dict[str, str | None]:
            rows = conn.execute("SELECT id, owner FROM journal WHERE terminal = 0 ORDER BY seq")
            return {str(tid): owner for tid, owner in rows}

        return Step("list the owners of unfinished transactions", run, write=False)

    def release_leases(self) -> Step[list[str]]:
        """End every lease on the queued advices of this owner's sales (same file)."""
        owner = self.owner

        def run(conn: sqlite3.Connection) -> list[str]:
            ids = [str(row[0]) for row in conn.execute(_LEASED_OF_OWNER, (owner,))]
            return release_leases(conn, ids)

        return Step("end the leases on the advices of a gone process's sales", run)

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

    A row that cannot be read back is skipped by ``entries``, ``unfinished`` and ``get``
    (None), logged once, and listed in :attr:`damaged`.

    ``read_only=True`` opens the file for reading only (the operator's listings): nothing is
    written, so a file in a read-only folder can be read, and any write fails.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        owner: str | None = None,
        read_only: bool = False,
    ) -> None:
        self.database = Database(
            path, synchronous=synchronous, busy_timeout=busy_timeout, read_only=read_only
        )
        self.steps = JournalSteps(owner, DamageLog(log, self.database.path))
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
        Repeats are free; :meth:`unfinished` calls it.

        A claim taken afresh proves that whichever process held the owner before is gone:
        the leases it held on the queued advices of the owner's sales (in the advice queue of
        this same file) are ended, so recovery sends them at once instead of waiting for the
        leases to run out."""
        with self._claiming:
            if self._claim is None:
                self._claim, fresh = claim_owner(self.database.path, self.owner)
                if fresh:
                    self._release_leases()

    def _release_leases(self) -> None:
        try:
            freed = self.database.run(self.steps.release_leases())
        except StorageError as error:  # the leases then run out as usual: slower, not wrong
            log.warning("could not end the leases of a gone process: %s", error)
            return
        if freed:
            log.info(
                "%s: the previous holder of owner %r is gone; %d advice(s) it had leased are "
                "due at once: %s",
                self.database.path,
                self.owner,
                len(freed),
                ", ".join(freed),
            )

    def claimed(self, owner: str | None) -> bool | None:
        """Whether a live process holds ``owner``'s claim on this file, found without taking
        it (see :func:`~voucher_adapters.stores.sqlite.claim.is_claimed`); None if that cannot
        be told here."""
        return is_claimed(self.database.path, owner)

    def unfinished(self) -> list[JournalEntry]:
        """This owner's unfinished transactions, oldest first, after claiming the owner.
        Damaged rows are skipped (see :attr:`damaged`)."""
        self.claim()
        return self.database.run(self.steps.unfinished())

    def entries(self) -> list[JournalEntry]:
        """Every readable transaction, in the order first recorded (see :attr:`damaged`)."""
        return self.database.run(self.steps.entries())

    def unfinished_owners(self) -> dict[str, str | None]:
        """Every unfinished transaction's id and owner, whatever the owner, oldest first; read
        from the row alone, so damaged snapshots are listed too. Claims nothing."""
        return self.database.run(self.steps.unfinished_owners())

    @property
    def damaged(self) -> list[DamagedEntry]:
        """The rows this journal could not read back since it was opened, each once, in the
        order met (a row read whole later, or recorded again, leaves the list)."""
        return self.steps.damage.damaged

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
