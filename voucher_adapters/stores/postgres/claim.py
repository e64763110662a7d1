"""Which process drives an owner's sales: a session advisory lock per (schema, owner).

Two processes that resume the same owner's unfinished sales would both act on them (each
would build its own confirmation or reversal for a sale, under a different advice id). So
the right to resume an owner's sales is claimed first and held until the journal is closed
or the process ends, as on SQLite (:mod:`voucher_adapters.stores.sqlite.claim`).

Here the claim is a session advisory lock keyed by the schema and the owner's name
(``pg_try_advisory_lock`` on the ``hashtext`` of each), taken on a connection of its own,
which the claim keeps open and idle. The server drops the lock when that connection ends: at
once when the process exits or is killed, and after the TCP keepalives set on the connection
give up (about ``timeout`` plus six seconds) when its host vanished. A claim that finds the
lock taken tries again for up to ``timeout`` seconds, to let the server notice a holder that
has just died, then names the holder (its backend pid, address, and when it connected) in
:class:`OwnerBusy`.

Claims are per process: journals opened more than once in one process under one owner share
the one connection, which is closed when the last of them is.

:func:`claim_owner` also says whether the lock was taken just now: then the previous holder,
if there was one, is proven gone, and what it had leased can be handed out again at once.
:data:`CLAIMED` asks the server, without taking anything, whether a session holds a claim.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from voucher_adapters.errors import OwnerBusy, StorageError
from voucher_adapters.stores.postgres.errors import describe, redact
from voucher_adapters.stores.postgres.schema import connect_kwargs, timeouts_sql

__all__ = ["CLAIMED", "OwnerBusy", "OwnerClaim", "claim_keys", "claim_owner"]

# ``None`` is an owner too (the sales recorded without one): it gets a key no name can have.
_NO_OWNER = "\x01none"
_RETRY_EVERY = 0.1
_TRY = "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))"
_HOLDER = (
    "SELECT a.pid, coalesce(host(a.client_addr), 'local socket'), a.backend_start "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.classid = hashtext(%s)::oid AND l.objid = hashtext(%s)::oid"
)

# Whether any session of this database holds the claim (parameters: claim_keys()).
CLAIMED = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.objsubid = 2 AND l.classid = hashtext(%s)::oid AND l.objid = hashtext(%s)::oid "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


def claim_keys(schema: str, owner: str | None) -> tuple[str, str]:
    """The two texts whose hashes key ``owner``'s claim in ``schema``."""
    return f"voucher-core owner claim:{schema}", _NO_OWNER if owner is None else owner


def _label(owner: str | None) -> str:
    if owner is None:
        return "the sales recorded without an owner"
    return f"the sales of owner {owner!r}"


class OwnerClaim:
    """One process's hold on one owner's sales; shared by that process's journals."""

    def __init__(self, key: tuple[str, str, str | None], conn: psycopg.Connection[Any]) -> None:
        self.key = key
        self._conn: psycopg.Connection[Any] | None = conn
        self._using = threading.Lock()
        self.holders = 1

    def alive(self) -> bool:
        """Whether the session holding the lock still answers (one round trip). A session the
        server ended (a restart, ``pg_terminate_backend``) took the lock with it."""
        with self._using:
            conn = self._conn
            if conn is None or conn.closed:
                return False
            try:
                conn.execute("SELECT 1")
            except psycopg.Error:
                conn.close()
                return False
            return True

    def release(self) -> None:
        """Let go of one holder's share; the lock goes with the last."""
        with _LOCK:
            self.holders -= 1
            if self.holders > 0 or self._conn is None:
                return
            if _CLAIMS.get(self.key) is self:  # not a newer claim on the same key
                del _CLAIMS[self.key]
            conn, self._conn = self._conn, None
        with self._using:
            conn.close()  # ending the session drops its advisory locks


_LOCK = threading.Lock()
_CLAIMS: dict[tuple[str, str, str | None], OwnerClaim] = {}


def claim_owner(
    dsn: str, schema: str, owner: str | None, *, timeout: float
) -> tuple[OwnerClaim, bool]:
    """Claim ``owner``'s sales in ``schema`` for this process, or raise :class:`OwnerBusy`.
    Returns the claim and whether its lock was taken just now (False when another journal
    of this process already held it)."""
    key = (dsn, schema, owner)
    with _LOCK:
        held = _CLAIMS.get(key)
        if held is not None and held.alive():
            held.holders += 1
            return held, False
        if held is not None:  # its connection was lost: the lock went with it
            _CLAIMS.pop(key, None)
        conn = _connect(dsn, schema, owner, timeout)
        claim = _CLAIMS[key] = OwnerClaim(key, conn)
        return claim, True


def _connect(dsn: str, schema: str, owner: str | None, timeout: float) -> psycopg.Connection[Any]:
    where, operation = redact(dsn), f"resume {_label(owner)} in schema {schema}"
    space, name = claim_keys(schema, owner)  # the space keeps clear of the migration's lock
    kwargs = connect_kwargs(dsn, timeout)
    kwargs["application_name"] = f"voucher-core claim {owner or '(no owner)'}"[:63]
    seconds = max(2, round(timeout))
    try:
        conn = psycopg.connect(make_conninfo(dsn, **kwargs), autocommit=True)
    except psycopg.Error as exc:
        raise StorageError(where, operation, describe(exc, dsn=dsn, timeout=timeout)) from exc
    try:
        settings = timeouts_sql(dsn, timeout, local=False)  # a session of its own: it holds
        if settings is not None:  # the claim's lock for as long as the journal is open
            conn.execute(settings)
        # The server's side of the keepalives: a holder whose host vanished is noticed, and
        # its lock dropped, in about ``seconds`` + 6 s rather than the system's two hours.
        for setting, value in (
            ("tcp_keepalives_idle", seconds),
            ("tcp_keepalives_interval", 2),
            ("tcp_keepalives_count", 3),
        ):
            conn.execute("SELECT set_config(%s, %s, false)", (setting, str(value)))
        deadline = time.monotonic() + timeout
        while True:
            row = conn.execute(_TRY, (space, name)).fetchone()
            if row is not None and row[0]:
                return conn
            if time.monotonic() >= deadline:
                break
            time.sleep(_RETRY_EVERY)
        holder = conn.execute(_HOLDER, (space, name)).fetchone()
    except psycopg.Error as exc:
        conn.close()
        raise StorageError(where, operation, describe(exc, dsn=dsn, timeout=timeout)) from exc
    conn.close()
    who = ""
    if holder is not None:
        pid, address, since = holder
        who = f" (server process {pid}, from {address}, connected {since:%Y-%m-%d %H:%M:%S %Z})"
    raise OwnerBusy(
        where,
        operation,
        f"another live process{who} is driving them; stop it first, or give this process an "
        f"owner of its own (waited {timeout:g} s; if that process's host is gone, the server "
        "drops its claim once the connection's keepalives fail: try again in a minute)",
    )
