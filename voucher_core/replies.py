"""What came back from the switch, reduced to what the state machine needs to know.

A transport (HTTP, in-memory, anything) never hands raw HTTP to the core. It hands one of the
classified replies below, produced by :func:`classify_provision` and :func:`classify_advice`
from the status code and the body bytes, or made directly with :func:`no_response` when
nothing usable arrived (timeout, reset, refused connection).

The rules are a direct reading of the reply tables in the specification:

Provision or retry
    2xx with a parseable ``ProvisionResponse`` -> :class:`Approved`;
    ``UPSTREAM_UNAVAILABLE`` / ``VOUCHER_STATUS_UNKNOWN`` with any status, any 5xx, and any
    2xx whose body is not a ``ProvisionResponse`` -> :class:`Unknown`;
    other 4xx -> :class:`Declined`. Anything else (1xx, 3xx) is treated as unknown: the
    safe reading, since a retry or reversal settles it either way.

Advice (confirmation or reversal)
    2xx -> :class:`Acknowledged`; a reversal answered 404 ``UNABLE_TO_LOCATE_RECORD`` ->
    acknowledged (nothing to reverse); ``VOUCHER_ALREADY_CONFIRMED`` to a reversal or
    ``VOUCHER_ALREADY_REVERSED`` / 404 to a confirmation -> :class:`Conflict`; other 4xx ->
    :class:`Rejected` (parked); 5xx and no response -> :class:`RepeatLater`.
    A reply that says the advice's own goal is already reached (``VOUCHER_ALREADY_CONFIRMED``
    to a confirmation, ``VOUCHER_ALREADY_REVERSED`` to a reversal) is acknowledged.
"""

from __future__ import annotations

import enum
import json

import attrs

from voucher_core.messages import ErrorDetail, ErrorType, ProvisionResponse
from voucher_core.wire import WireFormatError, from_json, from_wire

__all__ = [
    "Acknowledged",
    "AdviceKind",
    "AdviceReply",
    "Approved",
    "Conflict",
    "Declined",
    "ProvisionReply",
    "Rejected",
    "RepeatLater",
    "Unknown",
    "UnknownReason",
    "classify_advice",
    "classify_provision",
    "no_response",
    "parse_error_detail",
]

_UNKNOWN_OUTCOME = frozenset({ErrorType.UPSTREAM_UNAVAILABLE, ErrorType.VOUCHER_STATUS_UNKNOWN})


class UnknownReason(enum.StrEnum):
    """Why the outcome of a provision is unknown; it picks the reversal reason later."""

    NO_RESPONSE = "no_response"  # timeout, reset, refused: reverse with TIMEOUT
    NOT_FINAL = "not_final"  # 5xx or an "unknown" error type: reverse with RESPONSE_NOT_FINAL


class AdviceKind(enum.StrEnum):
    CONFIRMATION = "confirmation"
    REVERSAL = "reversal"


@attrs.frozen
class Approved:
    """The provider issued a voucher."""

    response: ProvisionResponse
    status: int = 201


@attrs.frozen
class Declined:
    """A hard decline: the switch or provider refused and nothing was issued."""

    status: int
    error: ErrorDetail | None = None

    @property
    def detail(self) -> str:
        if self.error is None:
            return f"HTTP {self.status}"
        return f"HTTP {self.status} {self.error.error_type}: {self.error.error_message}"


@attrs.frozen
class Unknown:
    """Nobody can tell whether a voucher was issued."""

    reason: UnknownReason
    detail: str
    status: int | None = None
    error: ErrorDetail | None = None


ProvisionReply = Approved | Declined | Unknown


@attrs.frozen
class Acknowledged:
    """The advice reached a final, agreeing status: take it off the queue."""

    status: int
    error: ErrorDetail | None = None


@attrs.frozen
class Conflict:
    """The switch holds the opposite outcome: leave the queue, flag for reconciliation."""

    status: int
    error: ErrorDetail | None
    detail: str


@attrs.frozen
class Rejected:
    """A final refusal that is not a conflict: park the advice, flag the transaction."""

    status: int
    error: ErrorDetail | None
    detail: str


@attrs.frozen
class RepeatLater:
    """Not final: keep the advice queued and send it again after a backoff."""

    detail: str
    status: int | None = None


AdviceReply = Acknowledged | Conflict | Rejected | RepeatLater


def no_response(detail: str) -> Unknown:
    """The reply for a provision or retry that got no usable answer."""
    return Unknown(UnknownReason.NO_RESPONSE, detail)


def parse_error_detail(content: bytes) -> ErrorDetail | None:
    """Best-effort ``ErrorDetail`` from a body; ``None`` for empty, plain-text or odd bodies."""
    if not content:
        return None
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        return from_wire(ErrorDetail, data)
    except WireFormatError:
        return None


def _describe(status: int, error: ErrorDetail | None, content: bytes) -> str:
    if error is not None:
        return f"HTTP {status} {error.error_type}: {error.error_message}"
    if not content:
        return f"HTTP {status} with an empty body"
    return f"HTTP {status} with a body that is not an ErrorDetail"


def classify_provision(status: int, content: bytes) -> ProvisionReply:
    """Classify the reply to ``provisionVoucher`` or ``retryProvisionVoucher``."""
    if 200 <= status < 300:
        try:
            return Approved(from_json(ProvisionResponse, content), status)
        except WireFormatError as exc:
            return Unknown(
                UnknownReason.NOT_FINAL,
                f"HTTP {status} but the body is not a ProvisionResponse: {exc}",
                status,
            )
    error = parse_error_detail(content)
    if error is not None and error.error_type in _UNKNOWN_OUTCOME:
        return Unknown(UnknownReason.NOT_FINAL, _describe(status, error, content), status, error)
    if 400 <= status < 500:
        return Declined(status, error)
    return Unknown(UnknownReason.NOT_FINAL, _describe(status, error, content), status, error)


def classify_advice(kind: AdviceKind, status: int, content: bytes) -> AdviceReply:
    """Classify the reply to ``confirmVoucher`` or ``reverseVoucher``."""
    if 200 <= status < 300:
        return Acknowledged(status)
    error = parse_error_detail(content)
    error_type = error.error_type if error is not None else None
    if 400 <= status < 500:
        if kind is AdviceKind.REVERSAL:
            if status == 404 and error_type == ErrorType.UNABLE_TO_LOCATE_RECORD:
                return Acknowledged(status, error)
            if error_type == ErrorType.VOUCHER_ALREADY_REVERSED:
                return Acknowledged(status, error)
            if error_type == ErrorType.VOUCHER_ALREADY_CONFIRMED:
                return Conflict(status, error, _describe(status, error, content))
        else:
            if error_type == ErrorType.VOUCHER_ALREADY_CONFIRMED:
                return Acknowledged(status, error)
            if status == 404 or error_type == ErrorType.VOUCHER_ALREADY_REVERSED:
                return Conflict(status, error, _describe(status, error, content))
        return Rejected(status, error, _describe(status, error, content))
    return RepeatLater(_describe(status, error, content), status)
