"""How an injected fault turns into what the client sees.

A fault that strikes before processing replaces the answer outright; one that strikes after
processing keeps the switch's work and spoils only the answer (late, lost, a 504, or an
approval that proves nothing).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import attrs

from voucher_adapters.simulator.faults import PROVISIONS, Damage, Fault, FaultKind
from voucher_adapters.simulator.refusals import About, refuse, server_error
from voucher_adapters.simulator.reply import Operation, SimReply
from voucher_core.messages import ErrorType

__all__ = ["after_processing", "instead_of_processing"]

# Another sale's id: a fixed namespace makes it the same for the same sale on every run.
_ELSEWHERE = uuid.UUID("6f1d3c1e-8a0b-4d52-9a43-6a4a0f5e2b17")


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


def after_processing(fault: Fault, operation: Operation, reply: SimReply, about: About) -> SimReply:
    """The switch's ``reply`` to ``operation`` as the fault lets it reach the client."""
    if fault.kind is FaultKind.DELAY:
        return attrs.evolve(reply, delay=fault.delay)
    if fault.kind is FaultKind.LOST:
        return attrs.evolve(reply, lost=True)
    if fault.kind in (FaultKind.UNPROVEN, FaultKind.DUPLICATE_RECORD):
        return _spoil_approval(fault, operation, reply, about)
    return refuse(
        504,
        ErrorType.VOUCHER_STATUS_UNKNOWN,
        "The provider did not say whether the request succeeded",
        about,
    )


def _spoil_approval(fault: Fault, operation: Operation, reply: SimReply, about: About) -> SimReply:
    """An approval that proves nothing, though the voucher was issued. Anything but a 2xx
    answer to a provision (or, for ``UNPROVEN``, a retry) passes unchanged."""
    if operation not in PROVISIONS or not 200 <= reply.status < 300:
        return reply
    if fault.kind is FaultKind.DUPLICATE_RECORD and operation is not Operation.PROVISION:
        return reply
    data: dict[str, Any] = json.loads(reply.body)
    if fault.kind is FaultKind.DUPLICATE_RECORD:
        return refuse(
            400,
            ErrorType.DUPLICATE_RECORD,
            "A provision with this id already exists",
            about,
            detail={"voucher": data.get("voucher")},
        )
    _damage(data, fault.damage or Damage.NO_VOUCHER)
    return attrs.evolve(reply, body=json.dumps(data).encode(), damaged=True)


def _damage(data: dict[str, Any], damage: Damage) -> None:
    if damage is Damage.NO_VOUCHER:
        data.pop("voucher", None)
    elif damage is Damage.EMPTY_CODE:
        data["voucher"] = {**data.get("voucher", {}), "code": ""}
    elif damage is Damage.ANOTHER_SALE:
        data["id"] = str(uuid.uuid5(_ELSEWHERE, str(data.get("id"))))
    elif damage is Damage.ANOTHER_CLIENT:
        data["client"] = {"id": "another-vendor", "name": "Another vendor"}
    else:
        amounts = data.setdefault("amounts", {})
        request_amount = amounts.get("requestAmount") or {"amount": 0, "currency": "710"}
        amounts["requestAmount"] = {**request_amount, "amount": request_amount["amount"] + 100}
