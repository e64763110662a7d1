"""A readable timeline of one sale: what was sent, what came back, how the state moved.

The same observers serve ``voucher simulate`` and ``voucher provision``: hand
:meth:`Timeline.on_exchange` to a transport, :meth:`Timeline.on_trace` to a driver's
settings, and :meth:`Timeline.on_switch` to a simulator.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from voucher_adapters.simulator import SwitchEvent
from voucher_adapters.transports.exchange import Exchange
from voucher_core.drivers import AdviceQueued, AdviceSettled, DecisionAwaited, StateChanged, Trace
from voucher_core.ports import LookupReply
from voucher_core.replies import (
    Acknowledged,
    Approved,
    Conflict,
    Declined,
    Rejected,
    RepeatLater,
    Unknown,
)

__all__ = ["Timeline", "TimelineEntry", "describe_reply"]


@attrs.frozen
class TimelineEntry:
    actor: str
    text: str


def describe_reply(reply: object) -> str:
    """One line for a classified reply."""
    if isinstance(reply, Approved):
        return f"{reply.status} ProvisionResponse: voucher issued"
    if isinstance(reply, Declined):
        return f"hard decline ({reply.detail})"
    if isinstance(reply, Unknown):
        return f"outcome unknown ({reply.detail})"
    if isinstance(reply, Acknowledged):
        return f"{reply.status} acknowledged"
    if isinstance(reply, Conflict):
        return f"conflict ({reply.detail})"
    if isinstance(reply, Rejected):
        return f"rejected ({reply.detail})"
    if isinstance(reply, RepeatLater):
        return f"not final, will repeat ({reply.detail})"
    if isinstance(reply, LookupReply):
        return f"lookup answered {reply.status}"
    return repr(reply)


class Timeline:
    """Collects entries, and hands each to ``on_entry`` as it happens (for live printing)."""

    def __init__(self, on_entry: Callable[[TimelineEntry], None] | None = None) -> None:
        self.entries: list[TimelineEntry] = []
        self.operations: list[str] = []
        self._on_entry = on_entry

    def note(self, actor: str, text: str) -> None:
        entry = TimelineEntry(actor, text)
        self.entries.append(entry)
        if self._on_entry is not None:
            self._on_entry(entry)

    def on_exchange(self, exchange: Exchange) -> None:
        self.operations.append(exchange.operation.value)
        self.note("POS -> switch", f"{exchange.operation.value} id={exchange.message_id}")
        self.note("switch -> POS", describe_reply(exchange.reply))

    def on_trace(self, trace: Trace) -> None:
        if isinstance(trace, StateChanged):
            self.note("state", f"{trace.source} -> {trace.dest}")
        elif isinstance(trace, AdviceQueued):
            self.note("queue", f"{trace.kind} {trace.advice_id} stored for delivery")
        elif isinstance(trace, DecisionAwaited):
            self.note("POS", "voucher in hand; waiting for the host to confirm or cancel")
        elif isinstance(trace, AdviceSettled) and not isinstance(trace.reply, RepeatLater):
            self.note("queue", f"{trace.kind} {trace.advice_id} settled")

    def on_switch(self, event: SwitchEvent) -> None:
        self.note(event.leg, f"{event.operation}: {event.detail}")
