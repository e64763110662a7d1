"""The transport port over HTTP, blocking: :class:`HttpTransport`, on urllib3.

The caller's ``timeout`` bounds the whole exchange: token, connect, send, wait, read. urllib3's
own timeouts apply to each socket operation, so a server dripping a byte at a time would never
trip them. Each call therefore starts with what is left of its deadline as urllib3's connect and
read timeouts, the body loop checks the deadline between chunks, and a watchdog thread (one per
transport, started on first use) shuts the call's socket down when the deadline passes, which
ends a wait for dripped headers too. The connections this transport makes tell the watchdog
which socket a call runs on; with a caller-supplied ``urllib3.PoolManager`` only the first two
guards apply.

It runs on urllib3 rather than httpx: one request at a time, urllib3 does about two thirds
more requests per second against the same server (see docs/performance.md), and its pool
needs no replacing to honour a deadline.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError

from voucher_adapters.transports.exchange import Exchange, Operation
from voucher_adapters.transports.http.auth import BasicAuth, OAuth2ClientCredentials, TokenError
from voucher_adapters.transports.http.base import (
    Answer,
    Auth,
    BodyReader,
    Call,
    Outcome,
    Silence,
    TransportBase,
    check_max_connections,
    log_outcome,
    os_error,
    ssl_context,
    timed_out,
    why,
)
from voucher_adapters.transports.tls import Cert, Verify
from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice
from voucher_core.ports import LookupQuery, LookupReply
from voucher_core.replies import AdviceKind, AdviceReply, ProvisionReply

__all__ = ["HttpTransport"]

_CHUNK = 65_536


class _Watch:
    """One call's deadline, and the connection it runs on once it has one."""

    __slots__ = ("connection", "deadline", "done", "expired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connection: HTTPConnection | None = None
        self.done = False
        self.expired = False

    def __lt__(self, other: _Watch) -> bool:
        return self.deadline < other.deadline


# The call running on this thread, which the connection it uses reports itself to.
_current = threading.local()


class _Watchdog:
    """Shuts a call's socket down once its deadline passes, so no read outlives it."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._due: list[_Watch] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        # When the watchdog wakes next by itself. A call due earlier wakes it; the usual call,
        # due after those before it, does not, so a call costs no thread switch.
        self._alarm = math.inf

    def watch(self, deadline: float) -> _Watch:
        watch = _Watch(deadline)
        with self._lock:
            due = self._due
            while due and due[0].done:  # calls that ended, oldest first: drop them
                heapq.heappop(due)
            heapq.heappush(due, watch)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="voucher-http-deadlines", daemon=True
                )
                self._thread.start()
            elif deadline < self._alarm:
                self._lock.notify()
        return watch

    def finish(self, watch: _Watch) -> None:
        with self._lock:  # after this the watchdog never touches the call's connection
            watch.done = True
            watch.connection = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                due = self._due
                if not due:
                    self._alarm = math.inf
                    self._lock.wait()
                    continue
                first = due[0]
                if first.done:
                    heapq.heappop(due)
                    continue
                wait = first.deadline - time.monotonic()
                if wait > 0:
                    self._alarm = first.deadline
                    self._lock.wait(wait)
                    continue
                heapq.heappop(due)
                first.expired = True
                connection = first.connection
                sock = connection.sock if connection is not None else None
                if sock is not None:
                    with contextlib.suppress(OSError):  # already closed
                        sock.shutdown(socket.SHUT_RDWR)


def _expired() -> bool:
    """Whether the watchdog has shut the current call's socket down."""
    watch: _Watch | None = getattr(_current, "watch", None)
    return watch is not None and watch.expired


def _report_to_call(connection: HTTPConnection) -> None:
    watch: _Watch | None = getattr(_current, "watch", None)
    if watch is not None and not watch.done:
        watch.connection = connection


class _WatchedConnection(HTTPConnection):
    """A connection that tells the call using it which socket to shut at the deadline."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        _report_to_call(self)
        super().request(*args, **kwargs)


class _WatchedTLSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _report_to_call(self)
        super().request(*args, **kwargs)


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedTLSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedTLSConnection


def _pool_manager(context: ssl.SSLContext, max_connections: int) -> urllib3.PoolManager:
    manager = urllib3.PoolManager(
        num_pools=4,  # the switch and, for OAuth2, its token endpoint
        maxsize=max_connections,
        block=False,
        ssl_context=context,
        retries=False,
    )
    manager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedTLSPool}
    return manager


def _failure(call: Call, exc: Exception, timeout: float) -> Silence:
    """A fixed phrase per kind of failure. ``str(exc)`` is not used: some protocol errors
    quote the offending header, and a header may be ``Authorization``."""
    if isinstance(exc, NewConnectionError):
        what = "could not connect" + why(exc)
    elif isinstance(exc, ConnectTimeoutError):
        what = f"could not connect within {timeout:g} s"
    elif isinstance(exc, ReadTimeoutError):
        return timed_out(call, timeout)
    elif isinstance(exc, Urllib3SSLError):
        what = "could not connect" + why(exc)
    elif isinstance(exc, ProtocolError):
        cause = os_error(exc)
        if cause is not None and not isinstance(cause, TimeoutError):
            what = "connection lost" + why(exc)
        else:
            what = "the server closed the connection or broke HTTP before a complete answer"
    elif isinstance(exc, LocationValueError):
        what = "the request could not be put on the wire"
    else:
        what = f"request failed ({type(exc).__name__})"
    return Silence(f"{call.label}: {what}")


class HttpTransport(TransportBase):
    """Implements :class:`voucher_core.ports.Transport` over HTTP(S) with one pooled client.

    ``base_url`` without a path gets the interface's ``/suv/v1``. ``max_connections``
    bounds the connections kept for reuse. ``verify`` says which authorities to trust and
    ``cert`` is a client certificate for mutual TLS (see
    :func:`voucher_adapters.transports.tls.ssl_context`). A caller-supplied ``client`` (a
    ``urllib3.PoolManager``) is used as is (``verify``, ``cert`` and ``max_connections`` do
    not apply to it) and is not closed by :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: BasicAuth | OAuth2ClientCredentials | None = None,
        verify: Verify = True,
        cert: Cert | None = None,
        max_body: int = 1_048_576,
        max_connections: int = 100,
        observer: Callable[[Exchange], None] | None = None,
        client: urllib3.PoolManager | None = None,
    ) -> None:
        super().__init__(base_url, auth=auth, max_body=max_body, observer=observer)
        #: The most connections kept for reuse (not applied to a caller-supplied ``client``).
        self.max_connections = check_max_connections(max_connections)
        if client is None:
            client = _pool_manager(ssl_context(verify, cert), max_connections)
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self._watchdog = _Watchdog()

    # -- the port -----------------------------------------------------------------------

    def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return self._provision(Operation.PROVISION, request, timeout)

    def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return self._provision(Operation.RETRY, request, timeout)

    def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply:
        return self._advise(Operation.CONFIRM, AdviceKind.CONFIRMATION, advice, timeout)

    def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply:
        return self._advise(Operation.REVERSE, AdviceKind.REVERSAL, advice, timeout)

    def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply:
        call = self._lookup_call(query)
        started = time.monotonic()
        return self._lookup_reply(call, self._perform(call, timeout), started)

    def close(self) -> None:
        self._watchdog.close()
        if self._owns_client:
            self._client.clear()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- one call -----------------------------------------------------------------------

    def _provision(
        self, operation: Operation, request: ProvisionRequest, timeout: float
    ) -> ProvisionReply:
        call = self._provision_call(operation, request)
        started = time.monotonic()
        return self._provision_reply(call, request, self._perform(call, timeout), started)

    def _advise(
        self,
        operation: Operation,
        kind: AdviceKind,
        advice: TenderAdvice | BasicReversal,
        timeout: float,
    ) -> AdviceReply:
        call = self._advice_call(operation, advice)
        started = time.monotonic()
        return self._advice_reply(call, kind, self._perform(call, timeout), started)

    def _perform(self, call: Call, timeout: float) -> Outcome:
        if not timeout > 0:
            return timed_out(call, timeout)
        deadline = time.monotonic() + timeout
        watch = self._watchdog.watch(deadline)
        _current.watch = watch
        try:
            try:
                authorization, token = self._authorization(deadline, timeout)
            except TokenError as exc:
                return Silence(f"{call.label}: not sent, no token ({exc.detail})")
            outcome = self._send(call, authorization, deadline, timeout)
            self._after(outcome, token)
            return outcome
        finally:
            _current.watch = None
            self._watchdog.finish(watch)

    def _authorization(self, deadline: float, timeout: float) -> tuple[str | None, str | None]:
        """The ``Authorization`` header and, for OAuth2, the bare token."""
        auth: Auth | None = self.auth
        if auth is None:
            return None, None
        if isinstance(auth, BasicAuth):
            return auth.header(), None
        token = auth.current()
        if token is None:
            token = self._fetch_token(auth, deadline, timeout)
        return f"Bearer {token}", token

    def _fetch_token(self, auth: OAuth2ClientCredentials, deadline: float, timeout: float) -> str:
        wait = deadline - time.monotonic()
        if wait <= 0 or not auth.sync_lock.acquire(timeout=wait):
            raise TokenError(f"another thread's token request took longer than {timeout:g} s")
        try:
            token = auth.current()  # fetched while this thread waited
            if token is not None:
                return token
            call = self._token_call(auth)
            asked_at = auth.clock()
            started = time.monotonic()
            outcome = self._send(call, auth.token_authorization(), deadline, timeout)
            log_outcome(
                call,
                outcome.status if isinstance(outcome, Answer) else None,
                time.monotonic() - started,
            )
            if isinstance(outcome, Silence):
                raise TokenError(outcome.detail)
            return auth.accept(outcome.status, outcome.content, asked_at)
        finally:
            auth.sync_lock.release()

    def _send(
        self, call: Call, authorization: str | None, deadline: float, timeout: float
    ) -> Outcome:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return timed_out(call, timeout)
        url = call.url
        if call.params:
            url = f"{url}?{urlencode(call.params)}"
        try:
            response = self._client.urlopen(
                call.method,
                url,
                body=call.body or None,
                headers=self._headers(call, authorization),
                timeout=urllib3.Timeout(connect=remaining, read=remaining),
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=False,
            )
            try:
                return self._read(call, response, deadline, timeout)
            finally:
                response.release_conn()
        except (Urllib3Error, OSError) as exc:
            if time.monotonic() >= deadline:
                return timed_out(call, timeout)
            return _failure(call, exc, timeout)

    def _read(
        self, call: Call, response: urllib3.BaseHTTPResponse, deadline: float, timeout: float
    ) -> Outcome:
        """The reply's body, capped, within the deadline."""
        reader = BodyReader(call, response.status, response.headers, self.max_body)
        refusal = reader.refuse_early()
        if refusal is None and self._owns_client and reader.declared_within():
            # One read of the declared length; the watchdog bounds it in time.
            refusal = reader.feed(response.read(decode_content=False))
        else:
            while refusal is None:
                chunk = response.read(_CHUNK, decode_content=False)
                if not chunk:
                    break
                refusal = reader.feed(chunk)
                if refusal is None and time.monotonic() > deadline:
                    refusal = timed_out(call, timeout)
        if refusal is None and (_expired() or time.monotonic() > deadline):
            # The deadline passed: what was read (headers cut short by the watchdog read as
            # complete, a body ended early) is no answer.
            refusal = timed_out(call, timeout)
        if refusal is not None:
            response.close()  # the rest of the body is not read: drop the connection
            return refusal
        return reader.answer()
