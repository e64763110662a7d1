"""The composition root: the one place that wires a driver to its parts.

A host, a command, a test kit or a benchmark says what it wants in one :class:`Settings`
value (where the switch is, where the stores live, how the driver behaves) and gets back an
:class:`Application` from :func:`build` (or an :class:`AsyncApplication` from
:func:`build_async`): the driver with its transport, advice queue, journal, clock and, on
request, a background forwarder. Closing the application closes them in order: the
forwarder stops first, then the transport, the queue, and last the journal, whose owner claim
goes with it.

A durable journal and its queue always share one database here (one SQLite file, one
PostgreSQL schema), so the driver is also handed the pair as a
:class:`~voucher_core.ports.JournalQueue`: a state change and the advice it queues are one
commit, and the queue alone shows every advice owed.

Every application whose journal is durable claims the journal's owner for this process when
it is built, before anything is sold or resumed, so that a second live process (another
till under the same name, or a ``voucher recover`` run while the host is up) is refused with
:class:`~voucher_adapters.stores.sqlite.OwnerBusy` instead of driving the same sales twice.

Nothing is imported from an optional extra unless the settings ask for it: HTTP only with a
``url``, PostgreSQL only with a ``dsn``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

import attrs

from voucher_adapters.clock import SystemClock
from voucher_adapters.demo import DEMO_CLIENT_ID
from voucher_adapters.errors import MissingDatabase, SettingsError
from voucher_adapters.forwarder import FORWARD_INTERVAL, ForwarderThread, forward_forever
from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.stores.memory import (
    AsyncInMemoryAdviceQueue,
    AsyncInMemoryJournal,
    InMemoryAdviceQueue,
    InMemoryJournal,
)
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.in_process import AsyncInMemoryTransport, InMemoryTransport
from voucher_adapters.transports.tls import Cert, Verify
from voucher_core.drivers import AsyncDriver, Driver
from voucher_core.drivers.shared import DriverSettings, Trace
from voucher_core.ports import (
    AdviceQueue,
    AsyncAdviceQueue,
    AsyncJournalQueue,
    AsyncTransactionJournal,
    AsyncTransport,
    Clock,
    JournalQueue,
    ParkedAdvice,
    QueuedAdvice,
    TransactionJournal,
    Transport,
)

if TYPE_CHECKING:
    from voucher_adapters.telemetry import Telemetry
    from voucher_adapters.transports.http import BasicAuth, OAuth2ClientCredentials

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_SCHEMA",
    "Application",
    "AsyncApplication",
    "AsyncLocalQueue",
    "DurableJournal",
    "LocalQueue",
    "MissingDatabase",
    "OperatorQueue",
    "Settings",
    "SettingsError",
    "build",
    "build_async",
    "build_async_in_memory",
    "open_stores",
]

DEFAULT_DB = "./voucher.db"
DEFAULT_SCHEMA = "voucher"  # the PostgreSQL schema of the stores unless told otherwise
ExchangeObserver = Callable[[Exchange], None]


class LocalQueue(AdviceQueue, Protocol):
    """A queue a command can also inspect: how many wait, and which."""

    def __len__(self) -> int: ...

    def pending(self) -> Sequence[QueuedAdvice]: ...


class OperatorQueue(LocalQueue, Protocol):
    """A durable queue, with what an operator needs on top."""

    def parked(self) -> Sequence[ParkedAdvice]: ...

    def requeue(self, advice_id: str, *, due: float) -> bool: ...

    def stats(self) -> dict[str, int | float | None]: ...

    def close(self) -> None: ...


class AsyncLocalQueue(AsyncAdviceQueue, Protocol):
    async def pending(self) -> Sequence[QueuedAdvice]: ...


class DurableJournal(TransactionJournal, Protocol):
    def claim(self) -> None: ...

    def close(self) -> None: ...


@attrs.frozen(kw_only=True)
class Settings:
    """Everything :func:`build` needs, with defaults that run with no outside service.

    The switch: ``url`` (Electrum's SUV base URL, over HTTP with ``auth``, Basic or OAuth2,
    sent as given, trusting ``verify`` and presenting the client certificate ``cert`` as
    :func:`~voucher_adapters.transports.tls.ssl_context` reads them; needs the ``[http]``
    extra), else the ``simulator`` in this process (a
    fresh default one if none), reached as ``username``. ``transport`` hands in a ready
    transport instead (sync or async to match the application); the application does not
    close a transport it did not make.

    The stores: the SQLite file ``db``, else the PostgreSQL database ``dsn`` (``[postgres]``
    extra; its schema is created or migrated first), else memory: an advice queue, and a
    journal only with ``memory_journal`` (for tests of restarts; a journal that dies with the
    process guards nothing, and its snapshots cost time). ``owner`` names the process
    whose unfinished sales the journal resumes; ``claim`` (on by default) claims it when the
    application is built. ``create=False`` refuses a SQLite file that does not exist yet.
    ``commit_on`` picks where the async SQLite stores commit (see ``AsyncSqliteJournal``);
    ``schema`` and ``pool_size`` say where and how wide the PostgreSQL stores are;
    ``pooling="transaction"`` when ``dsn`` goes through a transaction pooler (PgBouncer's
    ``pool_mode = transaction``), with ``claim_dsn`` reaching the server directly or through
    session pooling for the journal's owner claim.

    The driver: ``driver`` (policies, profiles, ids, trace observer) and ``clock`` (the
    system's by default). ``exchange_observer`` sees every exchange of a transport built
    here. ``telemetry`` (a :class:`~voucher_adapters.telemetry.Telemetry`, ``[otel]`` extra)
    watches every exchange and trace too, beside those observers.
    """

    url: str | None = None
    auth: BasicAuth | OAuth2ClientCredentials | None = None
    verify: Verify = True
    cert: Cert | None = None
    simulator: SwitchSimulator | None = None
    username: str = DEMO_CLIENT_ID
    transport: Transport | AsyncTransport | None = None
    max_connections: int = 100
    exchange_observer: ExchangeObserver | None = None
    db: str | None = None
    dsn: str | None = None
    memory_journal: bool = False
    schema: str = DEFAULT_SCHEMA
    pool_size: int = 4
    pooling: Literal["session", "transaction"] = "session"
    claim_dsn: str | None = None
    owner: str | None = None
    claim: bool = True
    create: bool = True
    commit_on: Literal["thread", "loop"] = "thread"
    driver: DriverSettings = attrs.field(factory=DriverSettings)
    clock: Clock | None = None
    telemetry: Telemetry | None = None

    def __attrs_post_init__(self) -> None:
        if self.db is not None and self.dsn is not None:
            raise SettingsError("choose one store: a SQLite file (db) or PostgreSQL (dsn)")
        switches = [self.url is not None, self.simulator is not None, self.transport is not None]
        if sum(switches) > 1:
            raise SettingsError("choose one switch: a url, a simulator or a ready transport")

    @property
    def durable(self) -> bool:
        return self.db is not None or self.dsn is not None


def _exchange_observer(settings: Settings) -> ExchangeObserver | None:
    """The settings' exchange observer, and telemetry's beside it."""
    observer, telemetry = settings.exchange_observer, settings.telemetry
    if telemetry is None:
        return observer
    if observer is None:
        return telemetry.on_exchange
    on_exchange = telemetry.on_exchange

    def both(exchange: Exchange) -> None:
        try:
            observer(exchange)
        finally:  # telemetry hears of it even when the host's observer raised
            on_exchange(exchange)

    return both


def _driver_settings(settings: Settings) -> DriverSettings:
    """The driver's settings, with telemetry's trace observer beside the host's."""
    driver, telemetry = settings.driver, settings.telemetry
    if telemetry is None:
        return driver
    observer, on_trace = driver.observer, telemetry.on_trace
    if observer is None:
        return attrs.evolve(driver, observer=on_trace)

    def both(item: Trace) -> None:
        try:
            observer(item)
        finally:  # telemetry hears of it even when the host's observer raised
            on_trace(item)

    return attrs.evolve(driver, observer=both)


class _Closers:
    """What an application made, closed in reverse order of making (the journal, made
    first, is closed last). Every part is closed even when one fails; the first failure is
    raised after."""

    def __init__(self) -> None:
        self._closes: list[Callable[[], object]] = []

    def add(self, close: Callable[[], object]) -> None:
        self._closes.append(close)

    def close(self) -> None:
        errors: list[BaseException] = []
        while self._closes:
            try:
                self._closes.pop()()
            except BaseException as error:
                errors.append(error)
        if errors:
            raise errors[0]

    async def aclose(self) -> None:
        errors: list[BaseException] = []
        while self._closes:
            try:
                result = self._closes.pop()()
                if asyncio.iscoroutine(result):
                    await result
            except BaseException as error:
                errors.append(error)
        if errors:
            raise errors[0]


class Application:
    """A sync :class:`~voucher_core.Driver` and the parts it runs on. Use it as a context
    manager, or call :meth:`close`."""

    def __init__(
        self,
        settings: Settings,
        driver: Driver,
        queue: LocalQueue,
        journal: TransactionJournal | None,
        closers: _Closers,
    ) -> None:
        self.settings = settings
        self.driver = driver
        self.queue = queue
        self.journal = journal
        self._closers = closers

    @property
    def transport(self) -> Transport:
        return self.driver.transport

    @property
    def clock(self) -> Clock:
        return self.driver.clock

    def restart(self) -> Driver:
        """A fresh driver on the same parts, as a restarted process would build: what the
        old driver held in memory (live sales, decision deadlines) is gone, the journal and
        queue are not. Returns it (``recover()`` is the caller's next step)."""
        old = self.driver
        self.driver = Driver(
            old.transport,
            old.queue,
            clock=old.clock,
            settings=old.settings,
            journal=old.journal,
            journal_queue=old.journal_queue,
        )
        return self.driver

    def forwarder(
        self, *, interval: float = FORWARD_INTERVAL, expire: bool = False
    ) -> ForwarderThread:
        """Start a :class:`ForwarderThread` on this driver; :meth:`close` stops it first."""
        thread = ForwarderThread(self.driver, interval=interval, expire=expire).start()
        self._closers.add(thread.stop)
        return thread

    def close(self) -> None:
        self._closers.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class AsyncApplication:
    """An :class:`~voucher_core.AsyncDriver` and the parts it runs on. Use it as an async
    context manager, or await :meth:`aclose`."""

    def __init__(
        self,
        settings: Settings,
        driver: AsyncDriver,
        queue: AsyncLocalQueue,
        journal: AsyncTransactionJournal | None,
        closers: _Closers,
    ) -> None:
        self.settings = settings
        self.driver = driver
        self.queue = queue
        self.journal = journal
        self._closers = closers

    @property
    def transport(self) -> AsyncTransport:
        return self.driver.transport

    @property
    def clock(self) -> Clock:
        return self.driver.clock

    def restart(self) -> AsyncDriver:
        """As :meth:`Application.restart`."""
        old = self.driver
        self.driver = AsyncDriver(
            old.transport,
            old.queue,
            clock=old.clock,
            settings=old.settings,
            journal=old.journal,
            journal_queue=old.journal_queue,
        )
        return self.driver

    def forwarder(
        self, *, interval: float = FORWARD_INTERVAL, expire: bool = True
    ) -> asyncio.Task[None]:
        """Run :func:`forward_forever` as a task; :meth:`aclose` stops it first."""
        stop = asyncio.Event()
        task = asyncio.create_task(
            forward_forever(self.driver, stop, interval=interval, expire=expire)
        )

        async def stopped() -> None:
            stop.set()
            await task

        self._closers.add(stopped)
        return task

    async def aclose(self) -> None:
        await self._closers.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()


def _check_db(settings: Settings) -> None:
    if settings.db is not None and not settings.create and not Path(settings.db).exists():
        raise MissingDatabase(f"no database at {settings.db} (nothing has been stored there yet)")


def _switch(settings: Settings) -> SwitchSimulator:
    return settings.simulator if settings.simulator is not None else SwitchSimulator()


def build(settings: Settings) -> Application:
    """Wire a sync driver as ``settings`` say. Close the application when done."""
    closers = _Closers()
    try:
        journal, queue, together = _open_stores(settings, closers)
        transport = _transport(settings, closers)
        driver = Driver(
            transport,
            queue,
            clock=settings.clock if settings.clock is not None else SystemClock(),
            settings=_driver_settings(settings),
            journal=journal,
            journal_queue=together,
        )
    except BaseException:
        closers.close()
        raise
    return Application(settings, driver, queue, journal, closers)


def _open_stores(
    settings: Settings, closers: _Closers
) -> tuple[TransactionJournal | None, LocalQueue, JournalQueue | None]:
    if not settings.durable:
        memory = InMemoryJournal() if settings.memory_journal else None
        return memory, InMemoryAdviceQueue(), None
    journal, queue, together = _open_durable(settings, closers)
    if settings.claim:
        journal.claim()
    return journal, queue, together


@contextmanager
def open_stores(
    settings: Settings, *, read_only: bool = False
) -> Iterator[tuple[OperatorQueue, DurableJournal]]:
    """The durable queue and journal of ``settings``, for an operator to read or requeue:
    no driver, so no owner claim. Closed when the block ends. ``read_only`` opens a SQLite
    file without writing to it (so a file in a read-only folder can be listed); PostgreSQL
    stores are opened as usual."""
    if not settings.durable:
        raise SettingsError("open_stores() needs a db or a dsn")
    closers = _Closers()
    try:
        journal, queue, _ = _open_durable(settings, closers, read_only=read_only)
        yield queue, journal
    finally:
        closers.close()


def _open_durable(
    settings: Settings, closers: _Closers, *, read_only: bool = False
) -> tuple[DurableJournal, OperatorQueue, JournalQueue]:
    """The durable journal and queue of ``settings`` (a SQLite file or PostgreSQL), each
    registered with ``closers``, and the two as one :class:`JournalQueue`; no claim is
    taken here."""
    journal: DurableJournal
    if settings.dsn is not None:
        from voucher_adapters.stores.postgres import (  # noqa: PLC0415  (an optional extra)
            PostgresAdviceQueue,
            PostgresJournal,
            PostgresJournalQueue,
            migrate,
        )

        schema, pool_size = settings.schema, settings.pool_size
        migrate(settings.dsn, schema=settings.schema)
        pooling = settings.pooling
        journal = PostgresJournal(
            settings.dsn,
            owner=settings.owner,
            schema=schema,
            pool_size=pool_size,
            pooling=pooling,
            claim_dsn=settings.claim_dsn,
        )
        closers.add(journal.close)
        pg_queue = PostgresAdviceQueue(
            settings.dsn, schema=schema, pool_size=pool_size, pooling=pooling
        )
        closers.add(pg_queue.close)
        return journal, pg_queue, PostgresJournalQueue(journal, pg_queue)
    _check_db(settings)
    from voucher_adapters.stores.sqlite import (  # noqa: PLC0415
        SqliteAdviceQueue,
        SqliteJournal,
        SqliteJournalQueue,
    )

    path = settings.db if settings.db is not None else DEFAULT_DB
    sqlite_journal = SqliteJournal(path, owner=settings.owner, read_only=read_only)
    closers.add(sqlite_journal.close)
    # One connection for both: the pair commits together, on one lock.
    sqlite_queue = SqliteAdviceQueue(path, database=sqlite_journal.database)
    closers.add(sqlite_queue.close)
    return sqlite_journal, sqlite_queue, SqliteJournalQueue(sqlite_journal, sqlite_queue)


def _http_options(settings: Settings, observer: ExchangeObserver | None) -> dict[str, Any]:
    """What both HTTP transports are built with: one place, so the two cannot drift apart."""
    return {
        "auth": settings.auth,
        "verify": settings.verify,
        "cert": settings.cert,
        "max_connections": settings.max_connections,
        "observer": observer,
    }


def _transport(settings: Settings, closers: _Closers) -> Transport:
    if settings.transport is not None:
        return settings.transport  # type: ignore[return-value]  # the caller's choice
    observer = _exchange_observer(settings)
    if settings.url is None:
        return InMemoryTransport(_switch(settings), username=settings.username, observer=observer)
    from voucher_adapters.transports.http import HttpTransport  # noqa: PLC0415  (an extra)

    http = HttpTransport(settings.url, **_http_options(settings, observer))
    closers.add(http.close)
    return http


async def build_async(settings: Settings) -> AsyncApplication:
    """Wire an asyncio driver as ``settings`` say. Await ``aclose()`` when done."""
    closers = _Closers()
    try:
        journal, queue, together = await _open_async_stores(settings, closers)
        return _async_application(settings, journal, queue, closers, together)
    except BaseException:
        await closers.aclose()
        raise


def build_async_in_memory(settings: Settings) -> AsyncApplication:
    """:func:`build_async` for settings with memory stores, callable outside an event loop
    (a plain test fixture, say): nothing is opened that would need awaiting."""
    if settings.durable:
        raise SettingsError("build_async_in_memory() takes no db or dsn: use build_async()")
    journal, queue = _async_memory_stores(settings)
    return _async_application(settings, journal, queue, _Closers(), None)


def _async_application(
    settings: Settings,
    journal: AsyncTransactionJournal | None,
    queue: AsyncLocalQueue,
    closers: _Closers,
    together: AsyncJournalQueue | None,
) -> AsyncApplication:
    driver = AsyncDriver(
        _async_transport(settings, closers),
        queue,
        clock=settings.clock if settings.clock is not None else SystemClock(),
        settings=_driver_settings(settings),
        journal=journal,
        journal_queue=together,
    )
    return AsyncApplication(settings, driver, queue, journal, closers)


async def _open_async_stores(
    settings: Settings, closers: _Closers
) -> tuple[AsyncTransactionJournal | None, AsyncLocalQueue, AsyncJournalQueue | None]:
    if settings.dsn is not None:
        from voucher_adapters.stores.postgres import (  # noqa: PLC0415  (an optional extra)
            AsyncPostgresAdviceQueue,
            AsyncPostgresJournal,
            AsyncPostgresJournalQueue,
            migrate,
        )

        await asyncio.to_thread(migrate, settings.dsn, schema=settings.schema)
        schema, pool_size = settings.schema, settings.pool_size
        pooling = settings.pooling
        pg_journal = AsyncPostgresJournal(
            settings.dsn,
            owner=settings.owner,
            schema=schema,
            pool_size=pool_size,
            pooling=pooling,
            claim_dsn=settings.claim_dsn,
        )
        closers.add(pg_journal.aclose)
        pg_queue = AsyncPostgresAdviceQueue(
            settings.dsn, schema=schema, pool_size=pool_size, pooling=pooling
        )
        closers.add(pg_queue.aclose)
        if settings.claim:
            await asyncio.to_thread(pg_journal.sync.claim)
        return pg_journal, pg_queue, AsyncPostgresJournalQueue(pg_journal, pg_queue)
    if settings.db is not None:
        from voucher_adapters.stores.sqlite import (  # noqa: PLC0415
            AsyncSqliteAdviceQueue,
            AsyncSqliteJournal,
            AsyncSqliteJournalQueue,
        )

        _check_db(settings)
        path, commit_on = settings.db, settings.commit_on
        journal = await asyncio.to_thread(
            AsyncSqliteJournal, path, commit_on=commit_on, owner=settings.owner
        )
        closers.add(journal.aclose)
        # The journal's connection and group commit for both: the pair commits together, and
        # queue calls join the journal's commits.
        queue = AsyncSqliteAdviceQueue(path, journal=journal)
        closers.add(queue.aclose)
        if settings.claim:
            journal.sync.claim()  # a non-blocking lock on a local file
        return journal, queue, AsyncSqliteJournalQueue(journal, queue)
    journal_in_memory, queue_in_memory = _async_memory_stores(settings)
    return journal_in_memory, queue_in_memory, None


def _async_memory_stores(
    settings: Settings,
) -> tuple[AsyncInMemoryJournal | None, AsyncInMemoryAdviceQueue]:
    journal = AsyncInMemoryJournal() if settings.memory_journal else None
    return journal, AsyncInMemoryAdviceQueue()


def _async_transport(settings: Settings, closers: _Closers) -> AsyncTransport:
    if settings.transport is not None:
        return settings.transport  # type: ignore[return-value]  # the caller's choice
    observer = _exchange_observer(settings)
    if settings.url is None:
        return AsyncInMemoryTransport(
            _switch(settings), username=settings.username, observer=observer
        )
    from voucher_adapters.transports.http import AsyncHttpTransport  # noqa: PLC0415

    http = AsyncHttpTransport(settings.url, **_http_options(settings, observer))
    closers.add(http.aclose)
    return http
