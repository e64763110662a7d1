"""The ``voucher`` store commands run for real, on either durable store.

* :class:`Where`: a SQLite file, or a PostgreSQL database of its own (the commands always use
  the schema ``voucher``, so each test gets a fresh database rather than a fresh schema, and
  never meets another test's rows), with how to open its journal and queue here and how to
  name it on a command line.
* :func:`voucher`: run the command as a subprocess, as an operator would.
* :func:`damage_row`: write a bad snapshot into a journal row with the raw driver.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from pg import PG_DSN, require_postgres
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from voucher_adapters.stores.postgres import PostgresAdviceQueue, PostgresJournal, migrate
from voucher_adapters.stores.sqlite import SqliteAdviceQueue, SqliteJournal

ROOT = Path(__file__).resolve().parent.parent
VOUCHER = [sys.executable, "-m", "voucher_adapters.cli"]


def voucher(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VOUCHER, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@contextmanager
def fresh_database() -> Iterator[str]:
    """The DSN of a new, empty PostgreSQL database (dropped afterwards)."""
    require_postgres()
    name = f"voucher_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(PG_DSN, dbname=name)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def url_dsn(dsn: str, *, password: str | None = None) -> str:
    """``dsn`` as a postgresql:// URL, with ``password`` in its user info if given."""
    params = conninfo_to_dict(dsn)
    user = str(params.get("user") or "postgres")
    userinfo = f"{user}:{password}" if password is not None else user
    host, port = params.get("host") or "127.0.0.1", params.get("port") or 5432
    return f"postgresql://{userinfo}@{host}:{port}/{params['dbname']}"


class Where:
    """One durable store, as the commands name it and as a test opens it."""

    def __init__(self, kind: str, place: str) -> None:
        self.kind = kind
        self.place = place  # the SQLite file, or the DSN

    @property
    def option(self) -> list[str]:
        return ["--db", self.place] if self.kind == "sqlite" else ["--dsn", self.place]

    def journal(self, owner: str | None = None) -> SqliteJournal | PostgresJournal:
        if self.kind == "sqlite":
            return SqliteJournal(self.place, owner=owner)
        return PostgresJournal(self.place, owner=owner, timeout=5.0)

    def queue(self) -> SqliteAdviceQueue | PostgresAdviceQueue:
        if self.kind == "sqlite":
            return SqliteAdviceQueue(self.place)
        return PostgresAdviceQueue(self.place, timeout=5.0)


@contextmanager
def store_of(kind: str, tmp_path: Path) -> Iterator[Where]:
    if kind == "sqlite":
        yield Where("sqlite", str(tmp_path / "pos.db"))
        return
    with fresh_database() as dsn:
        migrate(dsn)
        yield Where("postgres", dsn)


def damage_row(where: Where, transaction_id: str, snapshot: str) -> None:
    """Overwrite the stored snapshot of one journal row, behind the library's back."""
    if where.kind == "sqlite":
        import sqlite3  # noqa: PLC0415

        with sqlite3.connect(where.place) as conn:
            changed = conn.execute(
                "UPDATE journal SET snapshot = ? WHERE id = ?", (snapshot, transaction_id)
            ).rowcount
    else:
        with psycopg.connect(where.place, autocommit=True) as conn:
            changed = conn.execute(
                "UPDATE voucher.journal SET snapshot = %s WHERE id = %s",
                (snapshot, transaction_id),
            ).rowcount
    assert changed == 1


def wait_until(check: object, *, within: float, what: str) -> None:
    """Poll ``check()`` (a callable) until true; fail the test after ``within`` seconds."""
    assert callable(check)
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {within:g} s")
        time.sleep(0.05)
