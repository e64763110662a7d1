"""The transport port served in-process by a :class:`~voucher_adapters.simulator.SwitchSimulator`.

Each call puts the message on the "wire" exactly as the HTTP transport would
(:func:`voucher_core.wire.to_json`), hands the bytes to the simulator, and classifies what comes
back with the same functions every transport uses. The network's failures are read off the
simulator's reply: a dropped connection, or an answer that takes at least as long as the
caller's timeout, is no answer at all, even though the switch may well have processed the
request. Nothing sleeps: a delay only decides whether the answer counts.

The switch keeps records per username and password; without a *password* (the default) the
username alone names them, so two transports with the same username share their records.

An observer sees every exchange, the unanswered ones included (their ``status`` is ``None``),
which is how tests and timelines record what was sent. An observer that raises is logged
(logger ``voucher_core.transport``) and otherwise ignored: the call returns its reply.
"""

from __future__ import annotations

from collections.abc import Callable

from voucher_adapters.simulator import SimReply, SwitchSimulator
from voucher_adapters.transports.exchange import Exchange, Operation, tell
from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice
from voucher_core.ports import LookupQuery, LookupReply
from voucher_core.replies import (
    AdviceKind,
    AdviceReply,
    ProvisionReply,
    RepeatLater,
    classify_advice,
    classify_provision,
    no_response,
)
from voucher_core.wire import to_json

__all__ = ["AsyncInMemoryTransport", "Exchange", "InMemoryTransport"]


def _latency(reply: SimReply, timeout: float) -> float:
    """How long the caller waited in simulated time: the switch's delay, at most the timeout."""
    return min(reply.delay, timeout)


def _silence(reply: SimReply, timeout: float) -> str | None:
    """Why no answer reaches the caller, or ``None`` when one does."""
    if reply.lost:
        return "connection dropped before an answer arrived"
    if reply.delay >= timeout:
        return f"no answer within {timeout:g} s (the switch answered after {reply.delay:g} s)"
    return None


class InMemoryTransport:
    """Implements :class:`voucher_core.ports.Transport` against a switch simulator."""

    def __init__(
        self,
        switch: SwitchSimulator,
        *,
        username: str,
        password: str | None = None,
        observer: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.switch = switch
        self.username = username
        self.password = password
        self._observer = observer

    def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return self._provision(Operation.PROVISION, request, timeout)

    def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return self._provision(Operation.RETRY, request, timeout)

    def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply:
        return self._advise(Operation.CONFIRM, AdviceKind.CONFIRMATION, advice, timeout)

    def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply:
        return self._advise(Operation.REVERSE, AdviceKind.REVERSAL, advice, timeout)

    def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply:
        query = LookupQuery.of(query)
        answer = self.switch.handle(
            Operation.LOOKUP,
            username=self.username,
            password=self.password,
            query=query.params(),
        )
        silence = _silence(answer, timeout)
        if silence is not None:
            reply = LookupReply(None, b"", silence)
            status = None
        else:
            reply = LookupReply(answer.status, answer.body)
            status = answer.status
        provision_id = query.provision_request_id or ""
        latency = _latency(answer, timeout)
        self._tell(
            Exchange(Operation.LOOKUP, provision_id, provision_id, b"", status, reply, latency)
        )
        return reply

    def _provision(
        self, operation: Operation, request: ProvisionRequest, timeout: float
    ) -> ProvisionReply:
        body = to_json(request)
        answer = self.switch.handle(
            operation,
            body,
            username=self.username,
            password=self.password,
            provision_id=request.id if operation is Operation.RETRY else None,
        )
        silence = _silence(answer, timeout)
        reply: ProvisionReply
        if silence is not None:
            reply = no_response(silence)
            status = None
        else:
            reply = classify_provision(answer.status, answer.body, request)
            status = answer.status
        latency = _latency(answer, timeout)
        self._tell(Exchange(operation, request.id, request.id, body, status, reply, latency))
        return reply

    def _advise(
        self,
        operation: Operation,
        kind: AdviceKind,
        advice: TenderAdvice | BasicReversal,
        timeout: float,
    ) -> AdviceReply:
        body = to_json(advice)
        answer = self.switch.handle(operation, body, username=self.username, password=self.password)
        silence = _silence(answer, timeout)
        reply: AdviceReply
        if silence is not None:
            reply = RepeatLater(silence)
            status = None
        else:
            reply = classify_advice(kind, answer.status, answer.body)
            status = answer.status
        latency = _latency(answer, timeout)
        self._tell(Exchange(operation, advice.id, advice.request_id, body, status, reply, latency))
        return reply

    def _tell(self, exchange: Exchange) -> None:
        tell(self._observer, exchange)


class AsyncInMemoryTransport:
    """Implements :class:`voucher_core.ports.AsyncTransport`: the same, awaited."""

    def __init__(
        self,
        switch: SwitchSimulator,
        *,
        username: str,
        password: str | None = None,
        observer: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.sync = InMemoryTransport(
            switch, username=username, password=password, observer=observer
        )

    async def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return self.sync.provision(request, timeout=timeout)

    async def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return self.sync.retry(request, timeout=timeout)

    async def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply:
        return self.sync.confirm(advice, timeout=timeout)

    async def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply:
        return self.sync.reverse(advice, timeout=timeout)

    async def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply:
        return self.sync.lookup(query, timeout=timeout)
