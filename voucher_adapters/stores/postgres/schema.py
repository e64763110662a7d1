"""The PostgreSQL schema: its tables, its version table, and :func:`migrate`.

Everything lives in one schema (``voucher`` unless told otherwise), so several deployments
can share a database. ``schema_version`` holds one row per migration applied. Migrating
takes a transaction-level advisory lock keyed on the schema name, so processes that start
together (several forwarders, a rolling deploy) migrate once and wait for each other; a
schema already current is only read, so a role without DDL rights can use it.
"""

from __future__ import annotations

import math
import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from voucher_adapters.errors import StorageError
from voucher_adapters.stores.postgres.errors import describe, redact
from voucher_adapters.stores.schema_name import check_schema_name
from voucher_core.errors import InvalidArgument

__all__ = ["SCHEMA_VERSION", "check_schema_name", "connect_kwargs", "migrate", "timeouts_sql"]

SCHEMA_VERSION = 2
LOCK_CLASS = 0x766F7563  # "vouc": the advisory lock's first key; the second hashes the schema
OPEN = "open the database"

# MIGRATIONS[n] takes a schema from version n to n + 1. "{s}" is the quoted schema name.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE {s}.advice (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            id text PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('confirmation', 'reversal')),
            request_id text NOT NULL,
            body bytea NOT NULL,
            due double precision NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            lease_owner text,
            leased_at double precision,
            lease_until double precision,
            lease_token bigint NOT NULL DEFAULT 0,
            state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'parked')),
            park_reason text,
            enqueued_at timestamptz NOT NULL DEFAULT now()
        )""",
        "CREATE INDEX advice_queued_by_due ON {s}.advice (due, seq) WHERE state = 'queued'",
        "CREATE UNIQUE INDEX advice_by_seq ON {s}.advice (seq)",
        """CREATE TABLE {s}.journal (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            id text PRIMARY KEY,
            state text NOT NULL,
            terminal boolean NOT NULL,
            reconciliation boolean NOT NULL,
            snapshot text NOT NULL,
            decision_deadline double precision,
            recorded_at timestamptz NOT NULL DEFAULT now()
        )""",
        "CREATE UNIQUE INDEX journal_by_seq ON {s}.journal (seq)",
        "CREATE INDEX journal_unfinished ON {s}.journal (seq) WHERE NOT terminal",
    ),
    # 2: which driving process a transaction belongs to (NULL: the only one).
    ("ALTER TABLE {s}.journal ADD COLUMN owner text",),
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def connect_kwargs(dsn: str, timeout: float) -> dict[str, str | int]:
    """Connection settings added to the DSN, so that no connect waits without end.

    A connect timeout of ``timeout``; on the socket, TCP keepalives and a user timeout, so a
    server that vanished without closing the connection is noticed. Settings the DSN already
    gives are kept. Nothing goes into the startup ``options``, which PgBouncer and similar
    poolers refuse: the server-side timeouts are set with :func:`timeouts_sql` instead.
    """
    seconds = _seconds(timeout)
    given = conninfo_to_dict(dsn)
    defaults: dict[str, str | int] = {
        "connect_timeout": seconds,
        "application_name": "voucher-core",
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": seconds * 6000,
    }
    return {key: value for key, value in defaults.items() if key not in given}


def _seconds(timeout: float) -> int:
    if not (math.isfinite(timeout) and timeout > 0):
        raise InvalidArgument("timeout must be a positive number of seconds")
    return max(2, math.ceil(timeout))


_OPTION = re.compile(r"-c\s*([A-Za-z_.]+)\s*=|--([A-Za-z_.-]+)\s*=")


def timeouts_sql(dsn: str, timeout: float, *, local: bool) -> str | None:
    """One statement that sets the server-side timeouts: ``lock_timeout`` of ``timeout`` (a
    row another session holds), ``statement_timeout`` of six times it, and the same for a
    session left idle inside a transaction. ``local``: for the current transaction only (as
    a transaction pooler needs, where each transaction may meet another server session);
    else for the session. A setting the DSN's own ``options`` gives is left to it; None when
    it gives them all."""
    seconds = _seconds(timeout)
    wanted = {
        "lock_timeout": seconds * 1000,
        "statement_timeout": seconds * 6000,
        "idle_in_transaction_session_timeout": seconds * 6000,
    }
    options = str(conninfo_to_dict(dsn).get("options") or "")
    given = {(a or b).replace("-", "_") for a, b in _OPTION.findall(options)}
    scope = "true" if local else "false"
    calls = [
        f"set_config('{name}', '{value}', {scope})"
        for name, value in wanted.items()
        if name not in given
    ]
    return f"SELECT {', '.join(calls)}" if calls else None


def _version(conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> int:
    row = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".schema_version',)).fetchone()
    if row is None or row[0] is None:
        return 0
    quoted = check_schema_name(schema)
    found = conn.execute(f"SELECT max(version) FROM {quoted}.schema_version").fetchone()
    return int(found[0]) if found is not None and found[0] is not None else 0


def migrate(dsn: str, *, schema: str = "voucher", timeout: float = 10.0) -> int:
    """Create the schema or bring it up to date; return its version. Idempotent.

    Raises :class:`~voucher_adapters.stores.postgres.StorageError` if the server cannot be reached,
    the role may not create what is missing, or the schema is newer than this code.
    """
    quoted = check_schema_name(schema)
    where = redact(dsn)
    try:
        conninfo = make_conninfo(dsn, **connect_kwargs(dsn, timeout))
        settings = timeouts_sql(dsn, timeout, local=True)
        with psycopg.connect(conninfo, autocommit=False) as conn:
            if settings is not None:
                conn.execute(settings)
            version = _version(conn, schema)
            if version < SCHEMA_VERSION:
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, schema))
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {quoted}.schema_version ("
                    "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                version = _version(conn, schema)  # another process may have migrated meanwhile
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        conn.execute(statement.replace("{s}", quoted))
                    conn.execute(
                        f"INSERT INTO {quoted}.schema_version (version) VALUES (%s)", (step + 1,)
                    )
                version = max(version, SCHEMA_VERSION)
            conn.commit()
    except psycopg.Error as error:
        raise StorageError(where, OPEN, describe(error, dsn=dsn)) from error
    if version > SCHEMA_VERSION:
        reason = (
            f"schema {schema} has version {version}, written by a newer voucher-core; this one "
            f"reads up to version {SCHEMA_VERSION}"
        )
        raise StorageError(where, OPEN, reason)
    return version
