"""What a request brings in: its Basic credentials and a body read only up to a limit.

Electrum's test server only checks that the Basic username equals ``client.id`` in the body,
so the password is accepted whatever it is, as long as it is not empty: the password agreed
with Electrum works here unchanged, and a client that forgot to send one finds out. The records
are kept per username and password, as that server keeps them.

Bodies are read chunk by chunk and abandoned as soon as they pass the limit, so neither a large
``Content-Length`` nor a chunked upload that never ends makes the server buffer more than the
limit.
"""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from voucher_core.errors import VoucherError

__all__ = ["TooLarge", "basic_credentials", "read_body"]


class TooLarge(VoucherError):
    """The request body is larger than the server accepts."""


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """The username and password of well-formed Basic credentials, or ``None``.

    Well-formed means the ``Basic`` scheme, strict base64, UTF-8, and a non-empty username and
    password separated by a colon.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    username, colon, password = decoded.partition(":")
    if not colon or not username or not password:
        return None
    return username, password


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`TooLarge` once it is known to pass ``limit`` bytes."""
    declared = request.headers.get("content-length")
    # The server has already refused a Content-Length that is not a number.
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)
