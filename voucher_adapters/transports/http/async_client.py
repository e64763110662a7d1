"""The transport port over HTTP, for asyncio: :class:`AsyncHttpTransport`.

The twin of :class:`voucher_adapters.transports.http.HttpTransport`: the same calls, URLs, headers
and classification, awaited. The caller's ``timeout`` bounds the whole exchange (token, connect,
send, wait, read) through one ``asyncio.timeout`` around it, so a server that drips its reply
cannot stretch a call.

An ``httpx.AsyncClient`` belongs to the event loop that first used it: create the transport
where it will run, and ``aclose`` it there.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from types import TracebackType

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

__all__ = ["AsyncHttpTransport"]


class AsyncHttpTransport(TransportBase):
    """Implements :class:`voucher_core.ports.AsyncTransport` over HTTP(S), one pooled client.

    ``base_url`` without a path gets the interface's ``/suv/v1``. A caller-supplied
    ``client`` is used as is (``verify`` and ``max_connections`` do not apply to it) and is
    not closed by :meth:`aclose`.
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
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, auth=auth, max_body=max_body, observer=observer)
        if client is None:
            client = httpx.AsyncClient(
                verify=ssl_context(verify),
                limits=limits(max_connections),
                follow_redirects=False,
                trust_env=False,
            )
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client

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
        if self._owns_client:
            await self._client.aclose()

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
                outcome = await self._send(call, authorization, timeout)
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
                    token = await self._fetch_token(auth, timeout)
        return f"Bearer {token}", token

    async def _fetch_token(self, auth: OAuth2ClientCredentials, timeout: float) -> str:
        call = self._token_call(auth)
        asked_at = auth.clock()
        started = time.monotonic()
        outcome = await self._send(call, None, timeout)
        log_outcome(
            call,
            outcome.status if isinstance(outcome, Answer) else None,
            time.monotonic() - started,
        )
        if isinstance(outcome, Silence):
            raise TokenError(outcome.detail)
        return auth.accept(outcome.status, outcome.content, asked_at)

    async def _send(self, call: Call, authorization: str | None, timeout: float) -> Outcome:
        try:
            request = self._client.build_request(
                call.method,
                call.url,
                params=call.params,
                content=call.body or None,
                headers=self._headers(call, authorization),
                # The asyncio.timeout around the call is the real limit; this keeps httpx's
                # 5 s default from cutting a longer one short.
                timeout=httpx.Timeout(timeout),
            )
            response = await self._client.send(request, stream=True)
            try:
                reader = BodyReader(call, response, self.max_body)
                refusal = reader.refuse_early()
                if refusal is not None:
                    return refusal
                async for chunk in response.aiter_raw():
                    refusal = reader.feed(chunk)
                    if refusal is not None:
                        return refusal
                return reader.answer()
            finally:
                await response.aclose()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return describe_failure(call, exc, timeout)
