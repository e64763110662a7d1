"""The transport port over HTTP, blocking: :class:`HttpTransport`.

The caller's ``timeout`` bounds the whole exchange: token, connect, send, wait, read. httpx's
own timeouts apply to each socket operation, so a server dripping a byte at a time would never
trip them; the connection pool this transport builds therefore runs on a network backend that
clamps every socket operation to what is left of the call's deadline (held in a context
variable for the duration of the call), and the body loop checks the deadline between chunks.
With a caller-supplied ``httpx.Client`` only the second guard applies: a reply that drips its
*headers* is then bounded by httpx's per-read timeout rather than by the deadline.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import httpcore
import httpx

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
    describe_failure,
    limits,
    log_outcome,
    ssl_context,
    timed_out,
)
from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice
from voucher_core.ports import LookupQuery, LookupReply
from voucher_core.replies import AdviceKind, AdviceReply, ProvisionReply

__all__ = ["HttpTransport"]

_DEADLINE: ContextVar[float | None] = ContextVar("voucher_core_http_deadline", default=None)


def _bounded(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` shortened to what is left of the current call's deadline."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise expired("the call's deadline has passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        inner = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(inner)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport over a pool whose sockets honour the call's deadline."""

    def __init__(self, context: ssl.SSLContext, pool_limits: httpx.Limits) -> None:
        super().__init__(verify=context, limits=pool_limits, trust_env=False)
        # httpx has no parameter for the network backend; the pool it built is replaced
        # before any use, with the same settings.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=pool_limits.max_connections,
            max_keepalive_connections=pool_limits.max_keepalive_connections,
            keepalive_expiry=pool_limits.keepalive_expiry,
            network_backend=_DeadlineBackend(httpcore.SyncBackend()),
        )


class HttpTransport(TransportBase):
    """Implements :class:`voucher_core.ports.Transport` over HTTP(S) with one pooled client.

    ``base_url`` without a path gets the interface's ``/suv/v1``. A caller-supplied
    ``client`` is used as is (``verify`` and ``max_connections`` do not apply to it) and is
    not closed by :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: BasicAuth | OAuth2ClientCredentials | None = None,
        verify: bool | str | ssl.SSLContext = True,
        max_body: int = 1_048_576,
        max_connections: int = 100,
        observer: Callable[[Exchange], None] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, auth=auth, max_body=max_body, observer=observer)
        if client is None:
            transport = _DeadlineTransport(ssl_context(verify), limits(max_connections))
            client = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client

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
        if self._owns_client:
            self._client.close()

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
        reset = _DEADLINE.set(deadline)
        try:
            try:
                authorization, token = self._authorization(deadline, timeout)
            except TokenError as exc:
                return Silence(f"{call.label}: not sent, no token ({exc.detail})")
            outcome = self._send(call, authorization, deadline, timeout)
            self._after(outcome, token)
            return outcome
        finally:
            _DEADLINE.reset(reset)

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
            outcome = self._send(call, None, deadline, timeout)
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
        try:
            request = self._client.build_request(
                call.method,
                call.url,
                params=call.params,
                content=call.body or None,
                headers=self._headers(call, authorization),
                timeout=httpx.Timeout(remaining),
            )
            response = self._client.send(request, stream=True)
            try:
                reader = BodyReader(call, response, self.max_body)
                refusal = reader.refuse_early()
                if refusal is not None:
                    return refusal
                for chunk in response.iter_raw():
                    refusal = reader.feed(chunk)
                    if refusal is not None:
                        return refusal
                    if time.monotonic() > deadline:
                        return timed_out(call, timeout)
                return reader.answer()
            finally:
                response.close()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return describe_failure(call, exc, timeout)
