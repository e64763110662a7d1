"""Turning the switch's answers, and the server's own refusals, into HTTP responses.

Every error the server itself produces (no credentials, a body too large, an unknown path, a
crash) is an ``ErrorDetail`` in JSON, built by the simulator's own refusal helpers so that it
reads exactly like the switch's errors. None of them carries an id: the server refuses these
requests before reading who they are about, as real servers do when a body is unusable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response

from voucher_adapters.simulator import SimReply
from voucher_adapters.simulator.refusals import About, FormatProblem, refuse, refuse_format
from voucher_core.messages import ErrorType

__all__ = [
    "REALM",
    "bad_input",
    "crashed",
    "document",
    "http_refusal",
    "relay",
    "too_large",
    "unauthorized",
]

JSON = "application/json"
REALM = 'Basic realm="suv"'
_NOBODY = About()


def relay(reply: SimReply, *, headers: Mapping[str, str] | None = None) -> Response:
    """The switch's answer as it is: status, body bytes, content type and ``Location``."""
    if reply.location is not None:
        headers = {**(headers or {}), "Location": reply.location}
    return Response(reply.body, reply.status, headers=headers, media_type=reply.content_type)


def document(data: Any, status: int = 200) -> Response:
    """A JSON document of the admin API."""
    return Response(json.dumps(data).encode(), status, media_type=JSON)


def unauthorized() -> Response:
    reply = refuse(
        401,
        ErrorType.AUTHENTICATION_ERROR,
        "HTTP Basic credentials (username and password) are required",
        _NOBODY,
    )
    return relay(reply, headers={"WWW-Authenticate": REALM})


def too_large(limit: int) -> Response:
    problem = FormatProblem("body", f"request body is larger than {limit} bytes")
    # The rest of the body is never read: closing says so to the client and the server.
    return relay(refuse_format(_NOBODY, [problem]), headers={"Connection": "close"})


def bad_input(problems: Sequence[FormatProblem]) -> Response:
    """400 ``FORMAT_ERROR`` naming each bad field of an admin request."""
    return relay(refuse_format(_NOBODY, problems))


def http_refusal(status: int, headers: Mapping[str, str] | None = None) -> Response:
    """A routing refusal (no such path, wrong method) as an ``ErrorDetail``."""
    if status == 404:
        kind, message = ErrorType.FUNCTION_NOT_SUPPORTED, "There is no such path"
    elif status == 405:
        kind, message = ErrorType.FUNCTION_NOT_SUPPORTED, "This path does not take that method"
    elif 400 <= status < 500:
        kind, message = ErrorType.FORMAT_ERROR, "The request could not be read"
    else:
        kind, message = ErrorType.GENERAL_ERROR, "The server could not answer this request"
    return relay(refuse(status, kind, message, _NOBODY), headers=headers)


def crashed() -> Response:
    """500 ``GENERAL_ERROR``: something broke; no detail of what leaves the server."""
    return relay(refuse(500, ErrorType.GENERAL_ERROR, "Internal server error", _NOBODY))
