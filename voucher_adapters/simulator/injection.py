"""How an injected fault turns into what the client sees.

A fault that strikes before processing replaces the answer outright; one that strikes after
processing keeps the switch's work and spoils only the answer (late, lost, or a 504).
"""

from __future__ import annotations

import attrs

from voucher_adapters.simulator.faults import Fault, FaultKind
from voucher_adapters.simulator.refusals import About, refuse, server_error
from voucher_adapters.simulator.reply import SimReply
from voucher_core.messages import ErrorType

__all__ = ["after_processing", "instead_of_processing"]


def instead_of_processing(fault: Fault, about: About, *, plain_text: bool) -> SimReply:
    """The answer to a request the fault kept from being processed."""
    kind = fault.kind
    if kind is FaultKind.DROPPED:
        return SimReply(0, b"", lost=True)
    if kind is FaultKind.UNAVAILABLE:
        return refuse(503, ErrorType.UPSTREAM_UNAVAILABLE, "The provider is unavailable", about)
    if kind is FaultKind.DECLINE:
        return refuse(400, ErrorType.DO_NOT_HONOUR, "Do not honour", about)
    return server_error(plain_text=plain_text)


def after_processing(fault: Fault, reply: SimReply, about: About) -> SimReply:
    """The switch's ``reply`` as the fault lets it reach the client."""
    if fault.kind is FaultKind.DELAY:
        return attrs.evolve(reply, delay=fault.delay)
    if fault.kind is FaultKind.LOST:
        return attrs.evolve(reply, lost=True)
    return refuse(
        504,
        ErrorType.VOUCHER_STATUS_UNKNOWN,
        "The provider did not say whether the request succeeded",
        about,
    )
