"""The advice queue's SQL, row format and lease tokens, shared by the sync and async queues.

See :mod:`voucher_adapters.stores.postgres.queue` for the semantics. A lease's *holder* is a
queue object (or a twin and its ``.sync``, sharing one :class:`Fence`); the ``lease_owner``
column keeps its name from the first schema.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from voucher_adapters.stores.postgres.database import Plan
from voucher_core.errors import InvalidArgument
from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import ParkedAdvice, QueuedAdvice
from voucher_core.replies import AdviceKind
from voucher_core.wire import WireFormatError, from_json, to_json

__all__ = ["AdvicePlans", "Fence", "TimeBase", "default_holder", "finite", "row"]

log = logging.getLogger("voucher_core.postgres")

_TAKEABLE = """state = 'queued'
    AND (due <= %(now)s OR due > %(now)s + %(horizon)s)
    AND (lease_until IS NULL OR lease_until <= %(now)s OR leased_at > %(now)s + %(grace)s)"""
_READY_AT = """GREATEST(
        CASE WHEN due > %(now)s + %(horizon)s THEN %(now)s ELSE due END,
        CASE WHEN lease_until IS NULL THEN due
             WHEN leased_at > %(now)s + %(grace)s THEN %(now)s ELSE lease_until END)"""
_FREE = "lease_owner = NULL, leased_at = NULL, lease_until = NULL"
_FENCE_TOKEN = " AND lease_owner = %(holder)s AND lease_token = %(token)s"
_FENCE_NONE = " AND (lease_owner IS NULL OR lease_owner = %(holder)s)"


def default_holder() -> str:
    """Names this queue object in the lease columns: host, process, and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(f"{name} must be a finite number of seconds, not {value!r}")
    return float(value)


def _decode(kind: str, body: bytes) -> TenderAdvice | BasicReversal:
    if kind == AdviceKind.CONFIRMATION:
        return from_json(TenderAdvice, body)
    return from_json(BasicReversal, body)


AdviceRow = tuple[str, str, str, bytes, float]
Taken = tuple[list[QueuedAdvice], dict[str, int]]  # the advices taken, and their lease tokens
Holder = tuple[str | None, int] | None  # who holds a row this queue may not change
# A ``WITH`` clause to run in the same statement, and its named parameters.
With = tuple[str, dict[str, Any]] | None


def row(advice: TenderAdvice | BasicReversal, due: float) -> AdviceRow:
    """The advice as a row, serialised now (in the caller: it is what every repeat sends)."""
    kind = AdviceKind.CONFIRMATION if isinstance(advice, TenderAdvice) else AdviceKind.REVERSAL
    return (advice.id, kind.value, advice.request_id, to_json(advice), finite("due", due))


class Fence:
    """The lease tokens one holder has, and how many of its calls were refused."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self.fenced = 0
        self._tokens: dict[str, int] = {}
        self._lock = threading.Lock()

    def hold(self, taken: Taken) -> list[QueuedAdvice]:
        with self._lock:
            self._tokens.update(taken[1])
        return taken[0]

    def token(self, advice_id: str) -> int | None:
        with self._lock:
            return self._tokens.get(advice_id)

    def settled(self, advice_id: str, action: str, holder: Holder) -> None:
        """Forget the token; count and log the call if it was refused (``holder`` given)."""
        with self._lock:
            mine = self._tokens.pop(advice_id, None)
            if holder is None:
                return
            self.fenced += 1
        log.warning(
            "%s of advice %s refused: no longer leased to %s (held by %s, token %s; ours: %s)",
            action,
            advice_id,
            self.holder,
            holder[0],
            holder[1],
            mine,
        )


class TimeBase:
    """Which clock the stored due times and leases are on.

    ``"server"``: the database server's clock (Unix seconds, ``clock_timestamp()``), so that
    forwarders on different hosts agree on when an advice is due and when a lease runs out.
    The caller still speaks in its own monotonic seconds (``monotonic``, the clock the driver
    is given); each queue object learns how far its clock is from the server's with one
    ``SELECT`` at its first call and again every ``refresh`` seconds, and shifts every time
    it stores or reads by that much. A step of the server's clock is seen at the next
    refresh and handled like any clock jump (the ``horizon`` and ``grace`` rules).

    ``"caller"``: the caller's monotonic seconds as given, unshifted; only for forwarders
    that all run on one host (monotonic clocks of different machines cannot be compared) or
    for tests that drive time by hand. Do not mix the two on one schema.
    """

    def __init__(
        self,
        kind: Literal["server", "caller"] = "server",
        *,
        monotonic: Callable[[], float] = time.monotonic,
        refresh: float = 10.0,
    ) -> None:
        if kind not in ("server", "caller"):
            raise InvalidArgument(f"time base must be 'server' or 'caller', not {kind!r}")
        if not (math.isfinite(refresh) and refresh > 0):
            raise InvalidArgument("refresh must be a positive number of seconds")
        self.kind = kind
        self.monotonic = monotonic
        self.refresh = refresh
        self.shift = 0.0  # server seconds minus caller seconds
        self.measured_at: float | None = None

    def sync(self) -> Plan[None]:
        """Measure the shift again if it is due, as the first statement of a plan."""
        if self.kind == "caller":
            return
        before = self.monotonic()
        if self.measured_at is not None and before - self.measured_at < self.refresh:
            return
        _, rows = yield "SELECT extract(epoch FROM clock_timestamp())::float8", ()
        after = self.monotonic()
        self.shift = float(rows[0][0]) - (before + after) / 2
        self.measured_at = after

    def to_server(self, seconds: float) -> float:
        return seconds + self.shift

    def to_caller(self, seconds: float | None) -> float | None:
        return None if seconds is None else seconds - self.shift


class AdvicePlans:
    """The queue's SQL as plans, shared by the sync and the async queue."""

    def __init__(
        self,
        *,
        fence: Fence,
        lease: float,
        horizon: float,
        grace: float,
        time_base: TimeBase | None = None,
    ) -> None:
        if not (math.isfinite(lease) and lease > 0 and math.isfinite(horizon) and horizon > 0):
            raise InvalidArgument("lease and horizon must be positive numbers of seconds")
        self.fence = fence
        self.lease = lease
        self.horizon = horizon
        self.grace = grace
        self.time = time_base if time_base is not None else TimeBase()

    def enqueue(self, rows: list[AdviceRow]) -> Plan[None]:
        if not rows:
            return
        yield from self.time.sync()
        shift = self.time.to_server
        rows = [(id_, kind, request, body, shift(due)) for id_, kind, request, body, due in rows]
        sql = (
            "INSERT INTO {s}.advice (id, kind, request_id, body, due) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[], "
            "%s::float8[]) ON CONFLICT (id) DO NOTHING"
        )
        yield sql, [list(column) for column in zip(*rows, strict=True)]

    def store_leased(
        self, rows: list[AdviceRow], known: TenderAdvice | BasicReversal, *, with_: With = None
    ) -> Plan[Taken | None]:
        """Store the advice already leased to this holder, in one idempotent statement (it
        runs in autocommit); None if it was queued before (then :meth:`take_due` it).
        ``with_``: a data-modifying ``WITH`` clause and its parameters, made part of that
        statement (a journal record, so that both commit together)."""
        yield from self.time.sync()
        [(advice_id, kind, request_id, body, due)] = rows
        due = self.time.to_server(due)
        prefix, params = with_ if with_ is not None else ("", {})
        _, inserted = yield (
            f"{prefix}INSERT INTO {{s}}.advice (id, kind, request_id, body, due, attempts, "
            "lease_owner, leased_at, lease_until, lease_token) VALUES (%(a_id)s, %(a_kind)s, "
            "%(a_request)s, %(a_body)s, %(a_due)s, 1, %(a_holder)s, %(a_due)s, %(a_until)s, 1) "
            "ON CONFLICT (id) DO NOTHING RETURNING lease_token",
            {
                **params,
                "a_id": advice_id,
                "a_kind": kind,
                "a_request": request_id,
                "a_body": body,
                "a_due": due,
                "a_holder": self.fence.holder,
                "a_until": due + self.lease,
            },
        )
        if not inserted:
            return None
        return [QueuedAdvice(known, 1)], {advice_id: inserted[0][0]}

    def take_due(
        self,
        now: float,
        limit: int,
        advice_id: str | None,
        *,
        known: TenderAdvice | BasicReversal | None = None,
    ) -> Plan[Taken]:
        """``known``: the advice in hand whose row may be taken; it is not decoded again."""
        yield from self.time.sync()
        now = self.time.to_server(now)
        params: dict[str, Any] = {
            "now": now,
            "horizon": self.horizon,
            "grace": self.grace,
            "limit": limit,
            "id": advice_id,
        }
        only = " AND id = %(id)s" if advice_id is not None else ""
        _, rows = yield (
            f"SELECT id, kind, body, attempts FROM {{s}}.advice WHERE {_TAKEABLE}{only} "
            "ORDER BY due, seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
            params,
        )
        taken: list[QueuedAdvice] = []
        for row_id, kind, body, attempts in rows:
            try:
                mine = known if known is not None and row_id == known.id else None
                taken.append(QueuedAdvice(mine or _decode(kind, bytes(body)), attempts + 1))
            except WireFormatError as error:  # one unreadable row must not block the rest
                yield (
                    f"UPDATE {{s}}.advice SET state = 'parked', park_reason = %s, {_FREE} "
                    "WHERE id = %s",
                    (f"stored advice is unreadable: {error}", row_id),
                )
        if not taken:
            return [], {}
        _, tokens = yield (
            "UPDATE {s}.advice SET attempts = attempts + 1, lease_owner = %s, leased_at = %s, "
            "lease_until = %s, lease_token = lease_token + 1 WHERE id = ANY(%s) "
            "RETURNING id, lease_token",
            (self.fence.holder, now, now + self.lease, [queued.id for queued in taken]),
        )
        return taken, dict(tokens)

    def settle(
        self, advice_id: str, change: str, *, with_: With = None, **values: Any
    ) -> Plan[Holder]:
        """``change`` (DELETE or UPDATE ... SET ...) the queued row if this holder may; else
        return who holds it (None when there is no queued row to change). ``with_`` as for
        :meth:`store_leased`: it is carried out whether or not the row may be changed."""
        token = self.fence.token(advice_id)
        prefix, extra = with_ if with_ is not None else ("", {})
        params = {**extra, **values, "id": advice_id, "holder": self.fence.holder, "token": token}
        fence = _FENCE_TOKEN if token is not None else _FENCE_NONE
        sql = f"{prefix}{change} WHERE id = %(id)s AND state = 'queued'{fence}"
        count, _ = yield sql, params
        if count == 1:
            return None
        _, holders = yield (
            "SELECT lease_owner, lease_token FROM {s}.advice WHERE id = %(id)s "
            "AND state = 'queued'",
            {"id": advice_id},
        )
        return (holders[0][0], holders[0][1]) if holders else None

    def acknowledge(self, advice_id: str, *, with_: With = None) -> Plan[Holder]:
        return self.settle(advice_id, "DELETE FROM {s}.advice", with_=with_)

    def repeat_later(self, advice_id: str, due: float) -> Plan[Holder]:
        finite("due", due)
        yield from self.time.sync()
        change = f"UPDATE {{s}}.advice SET due = %(due)s, {_FREE}"
        return (yield from self.settle(advice_id, change, due=self.time.to_server(due)))

    def park(self, advice_id: str, reason: str, *, with_: With = None) -> Plan[Holder]:
        change = f"UPDATE {{s}}.advice SET state = 'parked', park_reason = %(reason)s, {_FREE}"
        return self.settle(advice_id, change, with_=with_, reason=reason)

    @staticmethod
    def release(advice_ids: list[str]) -> Plan[list[str]]:
        """End the leases of the queued advices among ``advice_ids``, whoever holds them
        (their lease token moves on, so a late settle by the old holder is fenced)."""
        if not advice_ids:
            return []
        _, rows = yield (
            f"UPDATE {{s}}.advice SET {_FREE}, lease_token = lease_token + 1 "
            "WHERE id = ANY(%s) AND state = 'queued' AND lease_until IS NOT NULL RETURNING id",
            (list(dict.fromkeys(advice_ids)),),
        )
        return [str(row[0]) for row in rows]

    def requeue(self, advice_id: str, due: float) -> Plan[bool]:
        finite("due", due)
        yield from self.time.sync()
        due = self.time.to_server(due)
        count, _ = yield (
            f"UPDATE {{s}}.advice SET state = 'queued', park_reason = NULL, due = %s, {_FREE} "
            "WHERE id = %s AND state = 'parked'",
            (finite("due", due), advice_id),
        )
        return count == 1

    # -- reading --------------------------------------------------------------------------------

    @staticmethod
    def pending() -> Plan[list[QueuedAdvice]]:
        _, rows = yield (
            "SELECT kind, body, attempts FROM {s}.advice WHERE state = 'queued' ORDER BY seq",
            (),
        )
        return [QueuedAdvice(_decode(kind, bytes(body)), attempts) for kind, body, attempts in rows]

    @staticmethod
    def parked() -> Plan[list[ParkedAdvice]]:
        _, rows = yield (
            "SELECT kind, body, attempts, park_reason FROM {s}.advice WHERE state = 'parked' "
            "ORDER BY seq",
            (),
        )
        return [
            ParkedAdvice(QueuedAdvice(_decode(kind, bytes(body)), attempts), reason or "")
            for kind, body, attempts, reason in rows
        ]

    def next_due(self, now: float | None) -> Plan[float | None]:
        yield from self.time.sync()
        ready = _READY_AT if now is not None else "GREATEST(due, lease_until)"
        server_now = None if now is None else self.time.to_server(now)
        params = {"now": server_now, "horizon": self.horizon, "grace": self.grace}
        _, rows = yield f"SELECT min({ready}) FROM {{s}}.advice WHERE state = 'queued'", params
        value = rows[0][0]
        return self.time.to_caller(None if value is None else float(value))

    def stats(self) -> Plan[dict[str, int | float | None]]:
        yield from self.time.sync()
        _, rows = yield (
            "SELECT "
            "count(*) FILTER (WHERE state = 'queued' AND lease_until IS NULL), "
            "count(*) FILTER (WHERE state = 'queued' AND lease_until IS NOT NULL), "
            "count(*) FILTER (WHERE state = 'parked'), "
            "min(due) FILTER (WHERE state = 'queued') "
            "FROM {s}.advice",
            (),
        )
        queued, leased, parked, oldest = rows[0]
        oldest = self.time.to_caller(None if oldest is None else float(oldest))
        return {"queued": queued, "leased": leased, "parked": parked, "oldest_due": oldest}
