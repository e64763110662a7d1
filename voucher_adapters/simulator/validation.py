"""Reading a request body the way Electrum's servers do: strictly, reporting every bad field.

A body must be a JSON object no larger than :data:`MAX_BODY` bytes that reads as the expected
message with no unknown fields (:func:`voucher_core.wire.from_wire` with ``strict=True``), and
whose values the swagger allows (enums, whole-string patterns, lengths:
:mod:`voucher_core.messages.outgoing`). Ids must have the 8-4-4-4-12 hexadecimal shape; their
UUID version is not checked. Each problem becomes one ``formatErrors`` entry whose ``msg`` names
the field by its wire path, so a missing merchant id reads
``originator.merchant.merchantId may not be null``.

Where Electrum's Java server is lenient, so is this: a JSON number where the model has a string
is read as its text (``"currency": 710``), and a missing array the server's model starts empty
(``thirdPartyIdentifiers``, a confirmation's ``tenders``) reads as empty. Only numbers are
coerced: Jackson would also read ``true`` as ``"true"``, which no SUV field can use.
:attr:`Parsed.data` is the message as this switch writes it back (numbers coerced, the missing
arrays present, times in UTC), so whatever it echoes conforms to the swagger.

:func:`peek` is the lenient twin: it pulls ids out of whatever arrived, without judging it, so
that faults can be matched and errors addressed even for a body that fails validation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import attrs

from voucher_adapters.simulator.refusals import FormatProblem
from voucher_core.wire import WireFormatError, from_wire, to_wire

__all__ = ["MAX_BODY", "UUID_MSG", "Parsed", "is_uuid", "parse", "peek", "read_object"]

M = TypeVar("M")

MAX_BODY = 64 * 1024
UUID_MSG = "UUID must conform to the format 8-4-4-4-12 hexadecimal values"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_BODY = "body"


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


_UNREADABLE = object()


def _decode(body: bytes) -> Any:
    # json.loads is recursive: a deeply nested body raises RecursionError, not ValueError.
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _UNREADABLE


def read_object(body: bytes) -> dict[str, Any] | FormatProblem:
    """The body as a JSON object, or the one problem that stops it being one."""
    if len(body) > MAX_BODY:
        return FormatProblem(_BODY, f"request body is larger than {MAX_BODY} bytes")
    data = _decode(body)
    if data is _UNREADABLE:
        return FormatProblem(_BODY, "request body is not valid JSON")
    if not isinstance(data, dict):
        return FormatProblem(_BODY, "request body must be a JSON object")
    return data


@attrs.frozen
class Parsed(Generic[M]):
    """A request that passed validation: the message and its JSON as the switch echoes it."""

    data: dict[str, Any]
    message: M


def parse(
    cls: type[M],
    body: bytes,
    *,
    id_fields: Sequence[str],
    empty_if_missing: Sequence[str] = ("thirdPartyIdentifiers",),
) -> Parsed[M] | list[FormatProblem]:
    """Validate ``body`` as a ``cls``; ``id_fields`` are the top-level keys holding UUIDs,
    ``empty_if_missing`` the top-level arrays read as empty when absent."""
    data = read_object(body)
    if isinstance(data, FormatProblem):
        return [data]
    for key in empty_if_missing:
        if key not in data:
            data[key] = []
    problems = [
        FormatProblem(field, UUID_MSG)
        for field in id_fields
        if isinstance(data.get(field), str) and not is_uuid(data[field])
    ]
    flagged = {problem.field for problem in problems}
    try:
        message = from_wire(cls, data, strict=True, numbers_as_strings=True)
    except WireFormatError as exc:
        problems.extend(
            FormatProblem(error.path or _BODY, str(error))
            for error in exc.errors
            if error.path not in flagged
        )
    else:
        if not problems:
            return Parsed(to_wire(message), message)
    return problems


@attrs.frozen
class Peek:
    """Whatever ids a body seems to carry, trusted for nothing but addressing and matching."""

    id: str | None = None
    request_id: str | None = None
    product_id: str | None = None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def peek(body: bytes) -> Peek:
    data = read_object(body)
    if isinstance(data, FormatProblem):
        return Peek()
    product = data.get("product")
    product_id = _text(product.get("productId")) if isinstance(product, dict) else None
    return Peek(_text(data.get("id")), _text(data.get("requestId")), product_id)
