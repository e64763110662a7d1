"""What came back from the switch, reduced to what the state machine needs to know.

A transport (HTTP, in-memory, anything) never hands raw HTTP to the core. It hands one of the
classified replies below, produced by :func:`classify_provision` and :func:`classify_advice`
from the status code and the body bytes, or made directly with :func:`no_response` when
nothing usable arrived (timeout, reset, refused connection).

The rules are a direct reading of the reply tables in the specification:

Provision or retry
    2xx with a ``ProvisionResponse`` that proves the approval of *this* request ->
    :class:`Approved`: its ``id`` is the request's id, its voucher has a non-empty ``code``,
    it names the request's client, and any amount it names is the request's. A 2xx that
    fails that test (no voucher, an empty code, another sale's id, another client or amount,
    a body that is not a ``ProvisionResponse``) proves nothing -> :class:`Unknown`.
    ``UPSTREAM_UNAVAILABLE`` / ``VOUCHER_STATUS_UNKNOWN`` with any status, any 5xx, and
    ``DUPLICATE_RECORD`` (the id already holds a voucher, which the retry endpoint returns)
    -> :class:`Unknown`; other 4xx with an ``ErrorDetail`` -> :class:`Declined`, a 4xx without
    one proves no decline -> :class:`Unknown`. Anything else (1xx, 3xx) is treated
    as unknown: the safe reading, since a retry or reversal settles it either way.

Advice (confirmation or reversal)
    2xx -> :class:`Acknowledged`; a reversal answered 404 ``UNABLE_TO_LOCATE_RECORD`` ->
    acknowledged (nothing to reverse); ``VOUCHER_ALREADY_CONFIRMED`` to a reversal or
    ``VOUCHER_ALREADY_REVERSED`` / 404 to a confirmation -> :class:`Conflict`; other 4xx ->
    :class:`Rejected` (parked); 5xx and no response -> :class:`RepeatLater`.
    A reply that says the advice's own goal is already reached (``VOUCHER_ALREADY_CONFIRMED``
    to a confirmation, ``VOUCHER_ALREADY_REVERSED`` to a reversal) is acknowledged.

A body is read with :func:`voucher_core.wire.decode_json`, so no body, however malformed or
deeply nested, makes a classifier raise: what cannot be read is read as no body at all.
"""

from __future__ import annotations

import enum

import attrs

from voucher_core.messages import (
    ErrorDetail,
    ErrorType,
    LedgerAmount,
    ProvisionRequest,
    ProvisionResponse,
)
from voucher_core.wire import WireFormatError, decode_json, from_json, from_wire

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
# The id is already taken, so this sale may hold a voucher: the retry endpoint returns it.
_ALREADY_USED = ErrorType.DUPLICATE_RECORD
_UNPROVEN = "proves no approval"


class UnknownReason(enum.StrEnum):
    """Why the outcome of a provision is unknown; it picks the reversal reason later."""

    NO_RESPONSE = "no_response"  # timeout, reset, refused: reverse with TIMEOUT
    # An answer that settles nothing: a 5xx, an "unknown" error type, DUPLICATE_RECORD, a 2xx
    # that proves no approval. Reverse with RESPONSE_NOT_FINAL.
    NOT_FINAL = "not_final"


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
        data = decode_json(content)
    except ValueError:  # not JSON, a bad encoding, nested too deep
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


def _amount(amount: LedgerAmount) -> str:
    return f"{amount.amount} ({amount.currency})"


def _doubt(response: ProvisionResponse, request: ProvisionRequest) -> str | None:
    """Why ``response`` does not prove that ``request`` was approved; ``None`` if it does."""
    if response.id != request.id:
        return f"it is the response to provision {response.id}, not to {request.id}"
    code = response.voucher.code
    if code is None or not code.strip():
        return "its voucher has no code"
    if response.client.id != request.client.id:
        return f"it names client {response.client.id!r}, not {request.client.id!r}"
    asked = request.amounts.request_amount if request.amounts is not None else None
    if asked is not None and response.amounts is not None:
        named = (
            ("requestAmount", response.amounts.request_amount),
            ("approvedAmount", response.amounts.approved_amount),
        )
        for field, amount in named:
            if amount is not None and amount != asked:
                return f"its {field} is {_amount(amount)}, not the {_amount(asked)} asked for"
    return None


def classify_provision(status: int, content: bytes, request: ProvisionRequest) -> ProvisionReply:
    """Classify the reply to ``provisionVoucher`` or ``retryProvisionVoucher`` of ``request``.

    A 2xx is :class:`Approved` only when it proves the approval of ``request`` (see the
    module's docstring); otherwise it is :class:`Unknown`, with a detail that says why.
    """
    if 200 <= status < 300:
        try:
            response = from_json(ProvisionResponse, content)
        except WireFormatError as exc:
            return Unknown(
                UnknownReason.NOT_FINAL,
                f"HTTP {status} but the body is not a ProvisionResponse: {exc}",
                status,
            )
        doubt = _doubt(response, request)
        if doubt is not None:
            return Unknown(UnknownReason.NOT_FINAL, f"HTTP {status} {_UNPROVEN}: {doubt}", status)
        return Approved(response, status)
    error = parse_error_detail(content)
    if error is not None and error.error_type == _ALREADY_USED:
        detail = _describe(status, error, content) + " (this id may already hold a voucher)"
        return Unknown(UnknownReason.NOT_FINAL, detail, status, error)
    if error is not None and error.error_type in _UNKNOWN_OUTCOME:
        return Unknown(UnknownReason.NOT_FINAL, _describe(status, error, content), status, error)
    if 400 <= status < 500 and error is not None:
        return Declined(status, error)
    # A 5xx, or a 4xx that is not an ErrorDetail (a proxy's page, a body that cannot be read):
    # it proves no decline, and a sale that might hold a voucher is never let go unreversed.
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
