"""PostgreSQL for the tests: where it is, whether it answers, a fresh schema per test, and a
relay that can cut the server off.

``VOUCHER_TEST_PG_DSN`` names the server (default: local trust auth, database ``test``).
Without a server the PostgreSQL tests are skipped, except under CI (``CI`` set), where they
must run and fail instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from voucher_adapters.stores.postgres import redact

PG_DSN = os.environ.get("VOUCHER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@functools.cache
def _unreachable() -> str | None:
    """Why the server does not answer, or None when it does (asked once per test run)."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return " ".join(str(error).split())
    return None


def require_postgres() -> str:
    """The DSN to test against; skips the test (fails it under CI) if nothing answers."""
    cause = _unreachable()
    if cause is not None:
        message = f"no PostgreSQL at {redact(PG_DSN)}: set VOUCHER_TEST_PG_DSN ({cause})"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return PG_DSN


def drop_schema(name: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A schema name no one uses yet (``voucher_test_<hex>``), dropped afterwards."""
    require_postgres()
    name = f"voucher_test_{uuid.uuid4().hex}"
    try:
        yield name
    finally:
        drop_schema(name)


def sql(query: str, *params: object, schema: str | None = None) -> list[tuple[object, ...]]:
    """Run one statement on a connection of its own (autocommit); return its rows."""
    text = query.replace("{s}", f'"{schema}"') if schema else query
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3) as conn:
        cursor = conn.execute(text, params or None)
        return cursor.fetchall() if cursor.description is not None else []


class Proxy:
    """A TCP relay to the server that can be cut (as if the server went away) and restored.

    ``dsn(password=...)`` points at the relay. ``stop()`` drops every relayed connection and
    refuses new ones; ``start()`` listens again on the same port.
    """

    def __init__(self) -> None:
        params = conninfo_to_dict(PG_DSN)
        self.upstream = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def dsn(self, **settings: str) -> str:
        return make_conninfo(PG_DSN, host="127.0.0.1", port=str(self.port), **settings)

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(self.upstream)
            except OSError:
                return
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            doomed, self._sockets = [*self._sockets, self._listener], []
        for sock in doomed:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # also wakes the thread in accept()
                sock.close()

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
