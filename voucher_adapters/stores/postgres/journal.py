"""The transaction journal in PostgreSQL: one row per transaction holding its latest snapshot.

The snapshot is :func:`voucher_core.snapshot.snapshot_json`, compact JSON text byte for byte
what the SQLite journal stores (``text`` rather than ``jsonb``: it keeps the exact bytes and
takes any string a reply may carry; cast it to ``jsonb`` to query it). Beside it, for
operators: the state, whether it is terminal, whether it is flagged for reconciliation, the
decision deadline and when it was recorded. Re-recording a transaction replaces its row in
one committed upsert that keeps its place (``seq``) in the order of first recording. A row
that cannot be read back is skipped, logged and listed in ``damaged``
(:mod:`voucher_adapters.stores.damage`).
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import psycopg_pool

from voucher_adapters.errors import StorageError
from voucher_adapters.stores.damage import DamagedEntry, DamageLog
from voucher_adapters.stores.postgres.claim import CLAIMED, OwnerClaim, claim_keys, claim_owner
from voucher_adapters.stores.postgres.database import Database, Plan
from voucher_adapters.stores.postgres.queue_sql import AdvicePlans
from voucher_core.errors import InvalidArgument
from voucher_core.ports import JournalEntry
from voucher_core.snapshot import snapshot_json
from voucher_core.table import TERMINAL
from voucher_core.transaction import Transaction

__all__ = ["JournalPlans", "PostgresJournal"]

log = logging.getLogger("voucher_core.postgres")

_COLUMNS = "id, snapshot, decision_deadline"
_UPSERT = (
    "INSERT INTO {{s}}.journal (id, state, terminal, reconciliation, snapshot, "
    "decision_deadline, owner) VALUES ({values}) "
    "ON CONFLICT (id) DO UPDATE SET "
    "state = EXCLUDED.state, terminal = EXCLUDED.terminal, "
    "reconciliation = EXCLUDED.reconciliation, snapshot = EXCLUDED.snapshot, "
    "decision_deadline = EXCLUDED.decision_deadline, owner = EXCLUDED.owner, "
    "recorded_at = now()"
)
JournalRow = tuple[str, str, bool, bool, str, float | None, str | None]
# The queued advices, leased by anyone, of the sales an owner recorded.
_LEASED_OF_OWNER = (
    "SELECT a.id FROM {s}.advice a WHERE a.state = 'queued' AND a.lease_until IS NOT NULL "
    "AND EXISTS (SELECT 1 FROM {s}.journal j WHERE j.id = a.request_id "
    "AND j.owner IS NOT DISTINCT FROM %s) ORDER BY a.seq"
)


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
        yield _UPSERT.format(values="%s, %s, %s, %s, %s, %s, %s"), row

    @staticmethod
    def recorded(row: JournalRow) -> tuple[str, dict[str, Any]]:
        """The record as a data-modifying ``WITH`` clause and its parameters, to run as part
        of another statement (an advice's, so that both commit together)."""
        names = [f"j{n}" for n in range(len(row))]
        values = ", ".join(f"%({name})s" for name in names)
        return f"WITH recorded AS ({_UPSERT.format(values=values)}) ", dict(
            zip(names, row, strict=True)
        )

    @staticmethod
    def get(transaction_id: str, damage: DamageLog) -> Plan[JournalEntry | None]:
        _, rows = yield f"SELECT {_COLUMNS} FROM {{s}}.journal WHERE id = %s", (transaction_id,)
        return damage.entry(*rows[0]) if rows else None

    @staticmethod
    def unfinished(owner: str | None, damage: DamageLog) -> Plan[list[JournalEntry]]:
        _, rows = yield (
            f"SELECT {_COLUMNS} FROM {{s}}.journal WHERE NOT terminal "
            "AND owner IS NOT DISTINCT FROM %s ORDER BY seq",
            (owner,),
        )
        return damage.entries(rows)

    @staticmethod
    def entries(damage: DamageLog) -> Plan[list[JournalEntry]]:
        _, rows = yield f"SELECT {_COLUMNS} FROM {{s}}.journal ORDER BY seq", ()
        return damage.entries(rows)

    @staticmethod
    def unfinished_owners() -> Plan[dict[str, str | None]]:
        _, rows = yield "SELECT id, owner FROM {s}.journal WHERE NOT terminal ORDER BY seq", ()
        return {str(tid): owner for tid, owner in rows}

    @staticmethod
    def release_leases(owner: str | None) -> Plan[list[str]]:
        """End every lease on the queued advices of ``owner``'s sales (same schema)."""
        _, rows = yield _LEASED_OF_OWNER, (owner,)
        return (yield from AdvicePlans.release([str(row[0]) for row in rows]))

    @staticmethod
    def claimed(schema: str, owner: str | None) -> Plan[bool]:
        _, rows = yield CLAIMED, claim_keys(schema, owner)
        return bool(rows[0][0])

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
    :mod:`voucher_adapters.stores.postgres.claim`). A row that cannot be read back is skipped
    by ``entries``, ``unfinished`` and ``get`` (None), logged once, and listed in
    :attr:`damaged`.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "voucher",
        pool_size: int = 4,
        timeout: float = 10.0,
        owner: str | None = None,
        pooling: str = "session",
        claim_dsn: str | None = None,
        pool: psycopg_pool.ConnectionPool[Any] | None = None,
    ) -> None:
        self.database = Database(
            dsn, schema=schema, pool_size=pool_size, timeout=timeout, pooling=pooling, pool=pool
        )
        # The claim holds a session-level lock for as long as the journal is open: behind a
        # transaction pooler it needs a DSN that reaches the server directly or through
        # session pooling.
        self.claim_dsn = claim_dsn if claim_dsn is not None else dsn
        self.owner = owner
        self.damage = DamageLog(log, self.database.where)  # the async twin shares its own
        self._claim: OwnerClaim | None = None
        self._claimed_before = False
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
        self.damage.forget(tx.id)

    def get(self, transaction_id: str) -> JournalEntry | None:
        plan, damage = JournalPlans.get, self.damage
        return self.database.run(
            f"read transaction {transaction_id}", lambda: plan(transaction_id, damage), write=False
        )

    def claim(self) -> None:
        """Claim this journal's owner for this process, or raise
        :class:`~voucher_adapters.stores.postgres.claim.OwnerBusy` if another live process holds it
        (after waiting up to ``timeout`` for a holder that has just died to be noticed).
        :meth:`unfinished` calls it. A claim already held is checked with one round trip:
        if the server ended its session (a restart), it is claimed again, and refused if
        another process took it meanwhile.

        The first claim this journal takes, when taken afresh, proves that whichever process
        held the owner before is gone: the leases it held on the queued advices of the
        owner's sales (in this schema's queue) are ended, so recovery sends them at once
        instead of waiting for the leases to run out. (Claiming again after the server
        dropped this process's own claim ends nothing: the leases are this process's.)"""
        with self._claiming:
            again = False
            if self._claim is not None and not self._claim.alive():
                # Its connection was lost, and the server dropped the lock: claim again.
                lost, self._claim = self._claim, None
                lost.release()
                again = True
            if self._claim is None:
                db = self.database
                self._claim, fresh = claim_owner(
                    self.claim_dsn, db.schema, self.owner, timeout=db.timeout
                )
                if fresh and not again and not self._claimed_before:
                    self._release_leases()
                self._claimed_before = True

    def _release_leases(self) -> None:
        owner = self.owner
        try:
            freed = self.database.run(
                "end the leases on the advices of a gone process's sales",
                lambda: JournalPlans.release_leases(owner),
            )
        except StorageError as error:  # the leases then run out as usual: slower, not wrong
            log.warning("could not end the leases of a gone process: %s", error)
            return
        if freed:
            log.info(
                "%s schema %s: the previous holder of owner %r is gone; %d advice(s) it had "
                "leased are due at once: %s",
                self.database.where,
                self.schema,
                owner,
                len(freed),
                ", ".join(freed),
            )

    def claimed(self, owner: str | None) -> bool:
        """Whether a live session holds ``owner``'s claim on this schema, asked of the server
        without taking it (one round trip)."""
        schema = self.schema
        return self.database.run(
            "read who holds owner claims", lambda: JournalPlans.claimed(schema, owner), write=False
        )

    def unfinished(self) -> list[JournalEntry]:
        """The unfinished transactions of this journal's ``owner``, after claiming it.
        Damaged rows are skipped (see :attr:`damaged`)."""
        self.claim()
        owner, damage = self.owner, self.damage
        return self.database.run(
            "list unfinished transactions",
            lambda: JournalPlans.unfinished(owner, damage),
            write=False,
        )

    def entries(self) -> list[JournalEntry]:
        """Every readable transaction, in the order first recorded (see :attr:`damaged`)."""
        damage = self.damage
        return self.database.run(
            "list transactions", lambda: JournalPlans.entries(damage), write=False
        )

    def unfinished_owners(self) -> dict[str, str | None]:
        """Every unfinished transaction's id and owner, whatever the owner, oldest first; read
        from the row alone, so damaged snapshots are listed too. Claims nothing."""
        return self.database.run(
            "list the owners of unfinished transactions",
            JournalPlans.unfinished_owners,
            write=False,
        )

    @property
    def damaged(self) -> list[DamagedEntry]:
        """The rows this journal could not read back since it was opened, each once, in the
        order met (a row read whole later, or recorded again, leaves the list)."""
        return self.damage.damaged

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
