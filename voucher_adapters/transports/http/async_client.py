"""The transport port over HTTP, for asyncio: :class:`AsyncHttpTransport`, on aiohttp.

The twin of :class:`voucher_adapters.transports.http.HttpTransport`: the same calls, URLs, headers
and classification, awaited. The caller's ``timeout`` bounds the whole exchange (token, connect,
send, wait, read) through one ``asyncio.timeout`` around it, so a server that drips its reply
cannot stretch a call.

It runs on aiohttp rather than httpx: with many requests in flight, httpx's connection pool
spends more time matching requests to connections than the requests take, and aiohttp's
does not (see docs/performance.md). Bodies are read undecoded (``auto_decompress=False``)
so that :class:`~voucher_adapters.transports.http.base.BodyReader` bounds them, compressed or
not. An ``aiohttp.ClientSession`` belongs to the event loop it was made in: the transport
makes its session on its first call, in the loop that call runs in, and ``aclose`` closes it
there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

import aiohttp

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
    ssl_context,
    timed_out,
    why,
)
from voucher_adapters.transports.tls import Cert, Verify
from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice
from voucher_core.ports import LookupQuery, LookupReply
from voucher_core.replies import AdviceKind, AdviceReply, ProvisionReply

__all__ = ["AsyncHttpTransport"]

_CHUNK = 65_536


class AsyncHttpTransport(TransportBase):
    """Implements :class:`voucher_core.ports.AsyncTransport` over HTTP(S), one pooled session.

    ``base_url`` without a path gets the interface's ``/suv/v1``. ``max_connections`` bounds
    the connections open at once; more calls than that wait for one, within their timeout.
    ``verify`` says which authorities to trust and ``cert`` is a client certificate for mutual
    TLS (see :func:`voucher_adapters.transports.tls.ssl_context`). A caller-supplied ``client``
    (an ``aiohttp.ClientSession``) is used as is (``verify``, ``cert`` and ``max_connections``
    do not apply to it; make it with ``auto_decompress=False``, or the body cap applies to
    bodies already decompressed) and is not closed by :meth:`aclose`.
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
        client: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(base_url, auth=auth, max_body=max_body, observer=observer)
        #: The most connections open at once (not applied to a caller-supplied ``client``).
        self.max_connections = check_max_connections(max_connections)
        self._ssl = ssl_context(verify, cert)
        self._owns_session = client is None
        self._session = client

    def _open(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, limit_per_host=0, ssl=self._ssl
            )
            session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                trust_env=False,
                # The asyncio.timeout around each call is the limit; aiohttp's own is off.
                timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent",),
            )
            self._session = session
        return session

    # -- the port -----------------------------------------------------------------------

    async def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return await self._provision(Operation.PROVISION, request, timeout)

    async def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return await self._provision(Operation.RETRY, request, timeout)

    async def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply:
        return await self._advise(Operation.CONFIRM, AdviceKind.CONFIRMATION, advice, timeout)

    async def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply:
        return await self._advise(Operation.REVERSE, AdviceKind.REVERSAL, advice, timeout)

    async def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply:
        call = self._lookup_call(query)
        started = time.monotonic()
        return self._lookup_reply(call, await self._perform(call, timeout), started)

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> AsyncHttpTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- one call -----------------------------------------------------------------------

    async def _provision(
        self, operation: Operation, request: ProvisionRequest, timeout: float
    ) -> ProvisionReply:
        call = self._provision_call(operation, request)
        started = time.monotonic()
        return self._provision_reply(call, request, await self._perform(call, timeout), started)

    async def _advise(
        self,
        operation: Operation,
        kind: AdviceKind,
        advice: TenderAdvice | BasicReversal,
        timeout: float,
    ) -> AdviceReply:
        call = self._advice_call(operation, advice)
        started = time.monotonic()
        return self._advice_reply(call, kind, await self._perform(call, timeout), started)

    async def _perform(self, call: Call, timeout: float) -> Outcome:
        if not timeout > 0:
            return timed_out(call, timeout)
        sending = False
        try:
            async with asyncio.timeout(timeout):
                authorization, token = await self._authorization(timeout)
                sending = True
                outcome = await self._send(call, authorization)
        except TokenError as exc:
            return Silence(f"{call.label}: not sent, no token ({exc.detail})")
        except TimeoutError:
            if sending:
                return timed_out(call, timeout)
            return Silence(f"{call.label}: not sent, no token within {timeout:g} s")
        self._after(outcome, token)
        return outcome

    async def _authorization(self, timeout: float) -> tuple[str | None, str | None]:
        """The ``Authorization`` header and, for OAuth2, the bare token."""
        auth: Auth | None = self.auth
        if auth is None:
            return None, None
        if isinstance(auth, BasicAuth):
            return auth.header(), None
        token = auth.current()
        if token is None:
            async with auth.async_lock():
                token = auth.current()  # fetched while this task waited
                if token is None:
                    token = await self._fetch_token(auth)
        return f"Bearer {token}", token

    async def _fetch_token(self, auth: OAuth2ClientCredentials) -> str:
        call = self._token_call(auth)
        asked_at = auth.clock()
        started = time.monotonic()
        outcome = await self._send(call, auth.token_authorization())
        log_outcome(
            call,
            outcome.status if isinstance(outcome, Answer) else None,
            time.monotonic() - started,
        )
        if isinstance(outcome, Silence):
            raise TokenError(outcome.detail)
        return auth.accept(outcome.status, outcome.content, asked_at)

    async def _send(self, call: Call, authorization: str | None) -> Outcome:
        try:
            async with self._open().request(
                call.method,
                call.url,
                params=call.params,
                data=call.body or None,
                headers=self._headers(call, authorization),
                allow_redirects=False,
            ) as response:
                reader = BodyReader(call, response.status, response.headers, self.max_body)
                refusal = reader.refuse_early()
                if refusal is None and reader.declared_within():
                    # One read of the declared length; the asyncio.timeout bounds it in time.
                    refusal = reader.feed(await response.read())
                elif refusal is None:
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        refusal = reader.feed(chunk)
                        if refusal is not None:
                            break
                if refusal is not None:
                    response.close()  # the rest of the body is not read: drop the connection
                    return refusal
                return reader.answer()
        except aiohttp.ClientError as exc:
            return _failure(call, exc)


def _failure(call: Call, exc: aiohttp.ClientError) -> Silence:
    """A fixed phrase per kind of failure. ``str(exc)`` is not used: some protocol errors
    quote the offending header, and a header may be ``Authorization``."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        what = "could not connect" + why(exc.certificate_error)
    elif isinstance(exc, aiohttp.ClientConnectorError):
        what = "could not connect" + why(exc.os_error)
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        what = "the server closed the connection or broke HTTP before a complete answer"
    elif isinstance(exc, aiohttp.ClientPayloadError):
        what = "connection lost while reading the answer"
    elif isinstance(exc, aiohttp.ClientOSError):
        what = "connection lost" + why(exc)
    elif isinstance(exc, aiohttp.InvalidURL):
        what = "the request could not be put on the wire"
    else:
        what = f"request failed ({type(exc).__name__})"
    return Silence(f"{call.label}: {what}")
