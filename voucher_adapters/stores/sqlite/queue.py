"""The advice queue in SQLite: survives crashes and power cuts, shared safely by processes.

Each advice is one row holding its exact wire JSON, so every repeat sends the same bytes.
``take_due`` leases the rows it hands out to this queue's ``holder`` until ``now + lease``
inside one ``BEGIN IMMEDIATE`` transaction: two queues on one file (threads or processes)
never hold the same advice at once, and an advice whose drainer died is handed out again
when its lease runs out. ``acknowledge``, ``repeat_later`` and ``park`` leave a row alone
that another holder has (it took the advice over after this one's lease ran out): the call
is counted in ``fenced`` and logged, as on PostgreSQL (which also checks a lease token).
Nothing is dropped by count or age; parked advices stay listed until re-queued. (A lease's
holder is a queue object; the ``lease_owner`` column keeps its name from the first schema. A
journal's *owner*, the process that drives its sales, is another thing.)

Times are the caller's monotonic seconds. After a reboot the stored times are reset when the
file is opened (see :mod:`voucher_adapters.stores.sqlite.database`); a due time more than
``horizon`` ahead
of ``now``, or a lease taken more than ``grace`` after ``now``, can only come from a clock
that went back, so they count as due / expired. (``grace`` allows for a caller that read its
clock before waiting for another connection's write: ``max(60, 2 * busy_timeout)``.)
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from voucher_adapters.stores.sqlite.database import Database, Step, wall_time
from voucher_core.errors import InvalidArgument
from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import ParkedAdvice, QueuedAdvice
from voucher_core.replies import AdviceKind
from voucher_core.wire import WireFormatError, from_json, to_json

__all__ = ["AdviceSteps", "SqliteAdviceQueue", "default_holder", "release_leases"]

log = logging.getLogger("voucher_core.sqlite")

_TAKEABLE = """
    state = 'queued'
    AND (due <= :now OR due > :now + :horizon)
    AND (lease_until IS NULL OR lease_until <= :now OR leased_at > :now + :grace)
"""
# When each queued advice can next be taken: its due time, or its lease end if later.
# With :now given, times that only a clock gone backwards can explain count as :now.
_READY_AT = """
    MAX(
        CASE WHEN :now IS NOT NULL AND due > :now + :horizon THEN :now ELSE due END,
        CASE WHEN lease_until IS NULL THEN due
             WHEN :now IS NOT NULL AND leased_at > :now + :grace THEN :now
             ELSE lease_until END
    )
"""


def default_holder() -> str:
    """Names this queue object in the lease columns: host, process, and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(f"{name} must be a finite number of seconds, not {value!r}")
    return float(value)


def _decode(kind: str, body: bytes) -> TenderAdvice | BasicReversal:
    if kind == AdviceKind.CONFIRMATION:
        return from_json(TenderAdvice, body)
    return from_json(BasicReversal, body)


_FREE = "lease_owner = NULL, leased_at = NULL, lease_until = NULL"
_CHUNK = 500  # ids per statement: well under SQLite's limit on bound parameters


def release_leases(conn: sqlite3.Connection, advice_ids: Sequence[str]) -> list[str]:
    """End the leases of the queued advices among ``advice_ids``, whoever holds them: each
    is due again at its due time (already past for a leased advice). Returns those freed."""
    freed: list[str] = []
    ids = list(dict.fromkeys(advice_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        which = f"state = 'queued' AND lease_until IS NOT NULL AND id IN ({marks})"
        rows = conn.execute(f"SELECT id FROM advice WHERE {which}", chunk).fetchall()
        conn.execute(f"UPDATE advice SET {_FREE} WHERE {which}", chunk)
        freed += [str(row[0]) for row in rows]
    return freed


class AdviceSteps:
    """The queue's SQL as :class:`Step` objects, shared by the sync and the async queue."""

    def __init__(self, *, holder: str, lease: float, horizon: float, grace: float) -> None:
        self.holder = holder
        self.lease = lease
        self.horizon = horizon
        self.grace = grace

    def enqueue(
        self, advice: TenderAdvice | BasicReversal, due: float, take: bool = False
    ) -> Step[QueuedAdvice | None]:
        body = to_json(advice)
        kind = AdviceKind.CONFIRMATION if isinstance(advice, TenderAdvice) else AdviceKind.REVERSAL
        row = (advice.id, kind.value, advice.request_id, body, _finite("due", due), wall_time())
        lease = self.take_due(due, 1, advice.id, known=advice).run if take else None
        # A new row taken at once is stored already leased, as take_due would lease it.
        leased = (1, self.holder, due, due + self.lease) if take else (0, None, None, None)

        def run(conn: sqlite3.Connection) -> QueuedAdvice | None:
            stored = conn.execute(
                "INSERT INTO advice (id, kind, request_id, body, due, enqueued_at, attempts, "
                "lease_owner, leased_at, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                row + leased,
            ).rowcount
            if lease is None:
                return None
            if stored == 1:
                return QueuedAdvice(advice, 1)
            taken = lease(conn)  # queued before: take it if free, in the same transaction
            return taken[0] if taken else None

        what = "store and take" if take else "store"
        return Step(f"{what} advice {advice.id}", run)

    def take_due(
        self,
        now: float,
        limit: int,
        advice_id: str | None,
        *,
        known: TenderAdvice | BasicReversal | None = None,
    ) -> Step[list[QueuedAdvice]]:
        """``known``: the advice in hand whose row may be taken; it is not decoded again."""
        params: dict[str, Any] = {
            "now": _finite("now", now),
            "grace": self.grace,
            "horizon": self.horizon,
            "limit": limit,
            "id": advice_id,
        }
        only = " AND id = :id" if advice_id is not None else ""

        def run(conn: sqlite3.Connection) -> list[QueuedAdvice]:
            if limit <= 0:
                return []
            rows = conn.execute(
                f"SELECT id, kind, body, attempts FROM advice WHERE {_TAKEABLE}{only} "
                "ORDER BY due, seq LIMIT :limit",
                params,
            ).fetchall()
            taken: list[QueuedAdvice] = []
            for row_id, kind, body, attempts in rows:
                try:
                    advice = known if known is not None and row_id == known.id else None
                    advice = advice or _decode(kind, body)
                except WireFormatError as error:  # one unreadable row must not block the rest
                    conn.execute(
                        "UPDATE advice SET state = 'parked', park_reason = ? WHERE id = ?",
                        (f"stored advice is unreadable: {error}", row_id),
                    )
                    continue
                conn.execute(
                    "UPDATE advice SET attempts = attempts + 1, lease_owner = ?, leased_at = ?, "
                    "lease_until = ? WHERE id = ?",
                    (self.holder, now, now + self.lease, row_id),
                )
                taken.append(QueuedAdvice(advice, attempts + 1))
            return taken

        what = f"advice {advice_id}" if advice_id is not None else "due advices"
        return Step(f"take {what}", run)

    def acknowledge(self, advice_id: str) -> Step[str | None]:
        sql = "DELETE FROM advice WHERE id = ? AND state = 'queued'"
        return self._change(f"acknowledge advice {advice_id}", sql, (advice_id,))

    def repeat_later(self, advice_id: str, due: float) -> Step[str | None]:
        sql = (
            "UPDATE advice SET due = ?, lease_owner = NULL, leased_at = NULL, lease_until = NULL "
            "WHERE id = ? AND state = 'queued'"
        )
        return self._change(f"repeat advice {advice_id}", sql, (_finite("due", due), advice_id))

    def park(self, advice_id: str, reason: str) -> Step[str | None]:
        sql = (
            "UPDATE advice SET state = 'parked', park_reason = ?, lease_owner = NULL, "
            "leased_at = NULL, lease_until = NULL WHERE id = ? AND state = 'queued'"
        )
        return self._change(f"park advice {advice_id}", sql, (reason, advice_id))

    def requeue(self, advice_id: str, due: float) -> Step[bool]:
        values = (_finite("due", due), advice_id)

        def run(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE advice SET state = 'queued', park_reason = NULL, due = ?, "
                "lease_owner = NULL, leased_at = NULL, lease_until = NULL "
                "WHERE id = ? AND state = 'parked'",
                values,
            ).rowcount
            return changed == 1

        return Step(f"requeue advice {advice_id}", run)

    @staticmethod
    def release(advice_ids: Sequence[str]) -> Step[list[str]]:
        ids = list(advice_ids)
        return Step(f"end the leases of {len(ids)} advice(s)", lambda c: release_leases(c, ids))

    def _change(self, operation: str, sql: str, values: tuple[object, ...]) -> Step[str | None]:
        """Change the queued row unless another holder has its lease; then return that holder
        (the row is left alone: it took the advice over when this one's lease ran out)."""
        fenced = sql + " AND (lease_owner IS NULL OR lease_owner = ?)"
        advice_id = values[-1]

        def run(conn: sqlite3.Connection) -> str | None:
            if conn.execute(fenced, (*values, self.holder)).rowcount == 1:
                return None
            row = conn.execute(
                "SELECT lease_owner FROM advice WHERE id = ? AND state = 'queued'", (advice_id,)
            ).fetchone()
            return None if row is None else str(row[0])

        return Step(operation, run)

    # -- reading --------------------------------------------------------------------------------

    def pending(self) -> Step[list[QueuedAdvice]]:
        def run(conn: sqlite3.Connection) -> list[QueuedAdvice]:
            rows = conn.execute(
                "SELECT kind, body, attempts FROM advice WHERE state = 'queued' ORDER BY seq"
            )
            return [QueuedAdvice(_decode(kind, body), attempts) for kind, body, attempts in rows]

        return Step("list queued advices", run, write=False)

    def parked(self) -> Step[list[ParkedAdvice]]:
        def run(conn: sqlite3.Connection) -> list[ParkedAdvice]:
            rows = conn.execute(
                "SELECT kind, body, attempts, park_reason FROM advice WHERE state = 'parked' "
                "ORDER BY seq"
            )
            return [
                ParkedAdvice(QueuedAdvice(_decode(kind, body), attempts), reason or "")
                for kind, body, attempts, reason in rows
            ]

        return Step("list parked advices", run, write=False)

    def next_due(self, now: float | None) -> Step[float | None]:
        params = {"now": now, "grace": self.grace, "horizon": self.horizon}

        def run(conn: sqlite3.Connection) -> float | None:
            sql = f"SELECT MIN({_READY_AT}) FROM advice WHERE state = 'queued'"
            value = conn.execute(sql, params).fetchone()[0]
            return None if value is None else float(value)

        return Step("read the next due time", run, write=False)

    def stats(self) -> Step[dict[str, int | float | None]]:
        def run(conn: sqlite3.Connection) -> dict[str, int | float | None]:
            queued, leased, parked, oldest = conn.execute(
                "SELECT "
                "COUNT(*) FILTER (WHERE state = 'queued' AND lease_until IS NULL), "
                "COUNT(*) FILTER (WHERE state = 'queued' AND lease_until IS NOT NULL), "
                "COUNT(*) FILTER (WHERE state = 'parked'), "
                "MIN(due) FILTER (WHERE state = 'queued') "
                "FROM advice"
            ).fetchone()
            return {"queued": queued, "leased": leased, "parked": parked, "oldest_due": oldest}

        return Step("count advices", run, write=False)


class SqliteAdviceQueue:
    """:class:`~voucher_core.ports.AdviceQueue` on a SQLite file; safe to share across threads.

    Every mutating call has committed when it returns, or raises
    :class:`~voucher_adapters.stores.sqlite.StorageError` and has changed nothing.

    ``lease``: how long a taken advice stays with its taker; longer than one forwarding
    round takes, or a slow round's advices go to a second drainer too (harmless, as repeats
    are, but wasteful). ``holder``: the name this object takes leases under (default: host,
    pid and a random tag). ``horizon``: a due time further ahead than this is taken as a
    clock gone backwards; keep it above the longest backoff (``BackoffPolicy`` ceiling).
    ``database``: a connection to ``path`` already open (a journal's, so that the two can
    commit together: :class:`~voucher_adapters.stores.sqlite.SqliteJournalQueue`); the queue
    then leaves closing it to its opener.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease: float = 150.0,
        holder: str | None = None,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        horizon: float = 3600.0,
        read_only: bool = False,
        database: Database | None = None,
    ) -> None:
        if not (math.isfinite(lease) and lease > 0 and math.isfinite(horizon) and horizon > 0):
            raise InvalidArgument("lease and horizon must be positive numbers of seconds")
        self.steps = AdviceSteps(
            holder=holder or default_holder(),
            lease=lease,
            horizon=horizon,
            grace=max(60.0, 2 * busy_timeout),
        )
        if database is None:
            database = Database(
                path, synchronous=synchronous, busy_timeout=busy_timeout, read_only=read_only
            )
            self._owns_database = True
        elif database.path != os.path.abspath(os.fspath(path)):
            raise InvalidArgument(f"the connection given is to {database.path}, not {path}")
        else:
            self._owns_database = False
        self.database = database
        self.fenced = 0  # calls refused: another holder had taken the advice over

    @property
    def holder(self) -> str:
        """The name this queue leases advices under (in the ``lease_owner`` column)."""
        return self.steps.holder

    @property
    def path(self) -> str:
        return self.database.path

    @property
    def commits(self) -> int:
        return self.database.commits

    # -- the port -------------------------------------------------------------------------------

    def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        return self.database.run(self.steps.enqueue(advice, due, take))

    def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> list[QueuedAdvice]:
        return self.database.run(self.steps.take_due(now, limit, advice_id))

    def acknowledge(self, advice_id: str) -> None:
        self._refused(
            "acknowledge", advice_id, self.database.run(self.steps.acknowledge(advice_id))
        )

    def repeat_later(self, advice_id: str, *, due: float) -> None:
        holder = self.database.run(self.steps.repeat_later(advice_id, due))
        self._refused("repeat", advice_id, holder)

    def park(self, advice_id: str, *, reason: str) -> None:
        self._refused("park", advice_id, self.database.run(self.steps.park(advice_id, reason)))

    def _refused(self, action: str, advice_id: str, holder: str | None) -> None:
        """Count and log a call refused because another holder has the advice's lease."""
        if holder is None:
            return
        self.fenced += 1
        log.warning(
            "%s of advice %s refused: no longer leased to %s (held by %s)",
            action,
            advice_id,
            self.holder,
            holder,
        )

    # -- for operators --------------------------------------------------------------------------

    def release(self, advice_ids: Iterable[str]) -> list[str]:
        """End the leases of these advices, whoever holds them, so they are due at once; for
        recovery, when the process that had taken them is known to be gone (its journal owner
        was claimed afresh: see :meth:`SqliteJournal.claim`). Returns the ids whose lease
        ended; advices not leased, parked or unknown are left as they are. A holder still
        alive after all finds its next acknowledgement, repeat or park of them taking effect
        only if no one took them over meanwhile; a second send meanwhile is harmless, as every
        repeat is."""
        return self.database.run(self.steps.release(list(advice_ids)))

    def pending(self) -> list[QueuedAdvice]:
        """Every advice not parked, leased or not, in the order they were first queued."""
        return self.database.run(self.steps.pending())

    def parked(self) -> list[ParkedAdvice]:
        return self.database.run(self.steps.parked())

    def requeue(self, advice_id: str, *, due: float) -> bool:
        """Put a parked advice back in line. Returns whether there was one to put back."""
        return self.database.run(self.steps.requeue(advice_id, due))

    def next_due(self, now: float | None = None) -> float | None:
        """When ``take_due`` will next hand something out: the earliest due time, or lease end
        for a leased advice. Pass ``now`` to have times a backward clock left behind count as
        ``now``."""
        return self.database.run(self.steps.next_due(now))

    def stats(self) -> dict[str, int | float | None]:
        """Counts: ``queued`` (not leased), ``leased`` (taken; the lease may have run out),
        ``parked``; and ``oldest_due``, the earliest due time of any advice not parked."""
        return self.database.run(self.steps.stats())

    def __len__(self) -> int:
        stats = self.stats()
        return int(stats["queued"] or 0) + int(stats["leased"] or 0)

    def close(self) -> None:
        if self._owns_database:
            self.database.close()

    def __enter__(self) -> SqliteAdviceQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
