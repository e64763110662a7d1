"""The switch's error replies: an ``ErrorDetail`` body with the right ids and status.

Whom an error is about decides its ids: an error about a request carries that request's ``id``
and no ``originalId``; an error about an advice carries the advice's ``id`` and the provision's
id as ``originalId``. When the body was too broken to tell, the id is left out, as real servers
do. ``errorMessage`` is cut to the 80 characters the interface allows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from voucher_adapters.simulator.reply import SimReply
from voucher_core.messages import ErrorType

__all__ = ["About", "FormatProblem", "refuse", "refuse_format", "server_error"]

_MESSAGE_LIMIT = 80


@attrs.frozen
class About:
    """The ids an error reply names: the message's own and, for an advice, the provision's."""

    id: str | None = None
    original_id: str | None = None


@attrs.frozen
class FormatProblem:
    """One entry of ``detailMessage.formatErrors``: the field (wire path) and what is wrong."""

    field: str
    msg: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "msg": self.msg}


def refuse(
    status: int,
    error_type: ErrorType,
    message: str,
    about: About,
    *,
    detail: Mapping[str, Any] | None = None,
) -> SimReply:
    body: dict[str, Any] = {}
    if about.id is not None:
        body["id"] = about.id
    if about.original_id is not None:
        body["originalId"] = about.original_id
    body["errorType"] = error_type.value
    body["errorMessage"] = message[:_MESSAGE_LIMIT]
    if detail is not None:
        body["detailMessage"] = dict(detail)
    return SimReply(status, json.dumps(body).encode())


def refuse_format(about: About, problems: Sequence[FormatProblem]) -> SimReply:
    count = len(problems)
    noun = "field" if count == 1 else "fields"
    return refuse(
        400,
        ErrorType.FORMAT_ERROR,
        f"The request failed validation ({count} {noun})",
        about,
        detail={"formatErrors": [problem.to_json() for problem in problems]},
    )


def server_error(plain_text: bool) -> SimReply:
    """A bare 500, the way a crashing server sends it: empty or plain text, no ErrorDetail."""
    if plain_text:
        return SimReply(500, b"Internal Server Error", "text/plain; charset=utf-8")
    return SimReply(500, b"", "text/plain; charset=utf-8")
