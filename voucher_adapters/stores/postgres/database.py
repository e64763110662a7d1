"""Connections to one PostgreSQL schema: short transactions that commit before they report.

The SQL of each call is a :data:`Plan`: a generator that yields ``(sql, params)`` and is sent
back ``(rowcount, rows)``, so the sync :class:`Database` and the :class:`AsyncDatabase`
run exactly the same statements. Each call is one transaction on a pooled connection
(autocommit off), committed before the call returns; any failure raises
:class:`~voucher_adapters.stores.postgres.StorageError` and, short of a failure during the commit
itself, has changed nothing. A call that makes its one change in a single idempotent statement (a
journal record, an acknowledgement, a new advice) runs in autocommit instead: the statement
is its own transaction, and the round trip of a separate ``COMMIT`` is saved.

A pooled connection the server dropped (restart, ``pg_terminate_backend``, failover) shows
up only when used. A transaction that failed that way before its ``COMMIT`` was sent did
nothing, so it is run again on another connection (at most ``pool_size + 1`` tries in all).
A failure during ``COMMIT`` is never retried: its outcome is unknown and it is reported. (An
autocommitted statement is retried like the rest: running it twice leaves what running it
once does.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg_pool

from voucher_adapters.errors import StorageError
from voucher_adapters.stores.postgres.errors import describe, redact
from voucher_adapters.stores.postgres.schema import (
    OPEN,
    check_schema_name,
    connect_kwargs,
    migrate,
    timeouts_sql,
)
from voucher_core.errors import InvalidArgument

__all__ = ["AsyncDatabase", "Database", "Plan", "Result", "Statement"]

T = TypeVar("T")
Statement = tuple[str, Sequence[Any] | Mapping[str, Any]]
Result = tuple[int, list[tuple[Any, ...]]]  # rowcount, rows (empty when none are returned)
Plan = Generator[Statement, Result, T]


POOLING = ("session", "transaction")


class _Settings:
    def __init__(
        self, dsn: str, schema: str, pool_size: int, timeout: float, pooling: str = "session"
    ) -> None:
        if pool_size < 1:
            raise InvalidArgument("pool_size must be at least 1")
        if pooling not in POOLING:
            raise InvalidArgument(f"pooling must be one of {', '.join(POOLING)}")
        self.pooling = pooling
        self.quoted = check_schema_name(schema)
        self.dsn = dsn
        self.where = redact(dsn)
        self.schema = schema
        self.pool_size = pool_size
        self.timeout = timeout
        self.commits = 0  # write transactions committed
        try:
            self.kwargs: dict[str, Any] = {**connect_kwargs(dsn, timeout), "autocommit": False}
            # Session pooling (or none): the timeouts are set once per connection, when the
            # pool opens it. Transaction pooling: at the start of every transaction, as the
            # next one may run on another server session.
            local = pooling == "transaction"
            if local:
                # Statements psycopg prepares on the server after a few runs belong to one
                # server session, which a transaction pooler hands to others ("prepared
                # statement already exists"): behind one, nothing is prepared.
                self.kwargs["prepare_threshold"] = None
            self.per_transaction = timeouts_sql(dsn, timeout, local=True) if local else None
            self.per_session = None if local else timeouts_sql(dsn, timeout, local=False)
        except psycopg.Error as exc:  # a DSN that cannot be parsed
            raise self.error(OPEN, exc) from exc

    def error(self, operation: str, cause: BaseException) -> StorageError:
        reason = describe(cause, dsn=self.dsn, timeout=self.timeout)
        error = StorageError(self.where, operation, reason)
        error.__cause__ = cause
        return error


def _retryable(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any] | None) -> bool:
    return conn is not None and conn.closed


class Database(_Settings):
    """A pool of connections to one schema, migrated on opening; safe to share by threads."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str,
        pool_size: int,
        timeout: float,
        pooling: str = "session",
        pool: psycopg_pool.ConnectionPool[Any] | None = None,
    ) -> None:
        # A host's pool: its connections were not opened here, so the timeouts are set in
        # each transaction, as behind a transaction pooler; the host closes it.
        super().__init__(dsn, schema, pool_size, timeout, "transaction" if pool else pooling)
        migrate(dsn, schema=schema, timeout=timeout)
        self._owns_pool = pool is None
        self._closed = False
        if pool is not None:
            self._pool = pool
            self._lock = threading.Lock()
            return
        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs=self.kwargs,
            configure=self._configure,
            timeout=timeout,
            open=True,
            name=f"voucher-core {schema}",
            num_workers=1,
        )
        self._lock = threading.Lock()

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        if self.per_session is not None:
            conn.execute(self.per_session)
            conn.commit()

    def run(
        self,
        operation: str,
        plan: Callable[[], Plan[T]],
        *,
        write: bool = True,
        single: bool = False,
    ) -> T:
        """Run a fresh ``plan()`` in one transaction and commit; raise if it did not commit.

        ``single``: the plan makes one change, in one idempotent statement (any statements
        after it only read); it runs in autocommit, which saves the round trip of a
        ``COMMIT``. Being idempotent, it is tried again on another connection like any plan
        whose connection was found dropped.
        """
        for attempt in range(self.pool_size + 1):
            conn: psycopg.Connection[Any] | None = None
            committing = False
            try:
                if self._closed:
                    raise psycopg_pool.PoolClosed("the storage was closed")
                with self._pool.connection() as conn:
                    if conn.autocommit:  # only a host's pool can hand out such a connection
                        raise InvalidArgument(
                            "the pool's connections are in autocommit mode; give the store "
                            "a pool whose connections are not (psycopg_pool's default)"
                        )
                    if self.per_transaction is not None:
                        # A statement of its own transaction would lose the timeouts set
                        # for the transaction, so every plan runs in one here.
                        conn.execute(self.per_transaction)
                        result = _drive(conn, plan(), self.quoted)
                        committing = True
                        conn.commit()
                    elif single:
                        conn.autocommit = True
                        try:
                            result = _drive(conn, plan(), self.quoted)
                        finally:
                            with contextlib.suppress(psycopg.Error):
                                conn.autocommit = False
                    else:
                        result = _drive(conn, plan(), self.quoted)
                        committing = True
                        conn.commit()
            except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
                if committing or not _retryable(conn) or attempt == self.pool_size:
                    raise self.error(operation, exc) from exc
                continue
            if write:
                with self._lock:
                    self.commits += 1
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._closed = True
        if self._owns_pool:
            self._pool.close()

    @property
    def closed(self) -> bool:
        return self._closed or self._pool.closed


class AsyncDatabase(_Settings):
    """The same on an :class:`~psycopg_pool.AsyncConnectionPool`, opened on first use.

    The pool lives in the event loop that opened it, watched by a small task: when that loop
    ends (``asyncio.run`` cancels what is left running) the watcher closes the pool, so the
    loop can finish, and a call from a later loop opens a new pool. One object cannot serve
    two loops running at the same time.
    """

    def __init__(
        self, dsn: str, *, schema: str, pool_size: int, timeout: float, pooling: str = "session"
    ) -> None:
        super().__init__(dsn, schema, pool_size, timeout, pooling)
        self._pool: psycopg_pool.AsyncConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def _get_pool(self) -> psycopg_pool.AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self._opening is None or self._opening[0] is not loop:
            self._opening = (loop, asyncio.Lock())
        async with self._opening[1]:
            if self._closed:
                raise psycopg_pool.PoolClosed("closed")
            if self._pool is not None and self._loop is loop:
                return self._pool
            if self._loop is not None and self._loop.is_running():
                raise StorageError(
                    self.where,
                    "open a connection pool",
                    "this store is in use by another running event loop: create one per loop",
                )
            # A pool left by a loop that was closed without ending its tasks is dropped.
            self._pool = self._loop = self._watcher = None
            await asyncio.to_thread(migrate, self.dsn, schema=self.schema, timeout=self.timeout)
            pool = psycopg_pool.AsyncConnectionPool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size,
                kwargs=self.kwargs,
                configure=self._configure,
                timeout=self.timeout,
                open=False,
                name=f"voucher-core {self.schema}",
                num_workers=1,
            )
            await pool.open()
            self._pool, self._loop = pool, loop
            self._watcher = loop.create_task(self._watch(pool), name=f"{pool.name} watcher")
            return pool

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.per_session is not None:
            await conn.execute(self.per_session)
            await conn.commit()

    async def _watch(self, pool: psycopg_pool.AsyncConnectionPool) -> None:
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            if self._pool is pool:
                self._pool = self._loop = self._watcher = None
            await pool.close()

    async def run(
        self,
        operation: str,
        plan: Callable[[], Plan[T]],
        *,
        write: bool = True,
        single: bool = False,
    ) -> T:
        """Run a fresh ``plan()`` in one transaction and commit; raise if it did not commit.
        ``single`` as for :meth:`Database.run`."""
        try:
            pool = await self._get_pool()
        except psycopg_pool.PoolClosed as exc:
            raise self.error(operation, exc) from exc
        for attempt in range(self.pool_size + 1):
            conn: psycopg.AsyncConnection[Any] | None = None
            committing = False
            try:
                async with pool.connection() as conn:
                    if self.per_transaction is not None:
                        await conn.execute(self.per_transaction)
                        result = await _adrive(conn, plan(), self.quoted)
                        committing = True
                        await conn.commit()
                    elif single:
                        await conn.set_autocommit(True)
                        try:
                            result = await _adrive(conn, plan(), self.quoted)
                        finally:
                            with contextlib.suppress(psycopg.Error):
                                await conn.set_autocommit(False)
                    else:
                        result = await _adrive(conn, plan(), self.quoted)
                        committing = True
                        await conn.commit()
            except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
                if committing or not _retryable(conn) or attempt == self.pool_size:
                    raise self.error(operation, exc) from exc
                continue
            if write:
                self.commits += 1
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the pool (from its own loop; from another, it is closed there, later)."""
        self._closed = True
        watcher, loop = self._watcher, self._loop
        if watcher is None or loop is None or loop.is_closed():
            self._pool = self._loop = self._watcher = None
        elif loop is asyncio.get_running_loop():
            watcher.cancel()
            await asyncio.wait([watcher])
        else:
            loop.call_soon_threadsafe(watcher.cancel)


def _drive(conn: psycopg.Connection[Any], plan: Plan[T], schema: str) -> T:
    try:
        sql, params = next(plan)
        while True:
            cursor = conn.execute(sql.replace("{s}", schema), params)
            rows = cursor.fetchall() if cursor.description is not None else []
            sql, params = plan.send((cursor.rowcount, rows))
    except StopIteration as stop:
        result: T = stop.value
        return result


async def _adrive(conn: psycopg.AsyncConnection[Any], plan: Plan[T], schema: str) -> T:
    try:
        sql, params = next(plan)
        while True:
            cursor = await conn.execute(sql.replace("{s}", schema), params)
            rows = await cursor.fetchall() if cursor.description is not None else []
            sql, params = plan.send((cursor.rowcount, rows))
    except StopIteration as stop:
        result: T = stop.value
        return result
