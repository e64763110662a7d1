"""A handle on the TCP connection under a request, so a lost answer can really be lost.

ASGI gives an application no way to drop a connection without answering: if it returns
without starting a response, the server answers 500 itself. The simulator's ``LOST`` and
``DROPPED`` faults need exactly that drop, so the uvicorn protocol used by
:func:`~voucher_adapters.simulator.server.serve` and
:class:`~voucher_adapters.simulator.server.RunningServer` puts a
:class:`ConnectionLink` into each request's ``scope["extensions"]`` under :data:`EXTENSION`.
Through it the application can abort the socket (the client reads end-of-stream, or a reset,
before any byte of a response) and can tell when the server is shutting down, so that a
request held back by a ``DELAY`` fault does not hold up the shutdown.

Under any other ASGI server the extension is absent and
:mod:`voucher_adapters.simulator.server.delivery` falls
back to starting a response it never finishes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Scope

__all__ = ["EXTENSION", "ConnectionLink", "link_of"]

EXTENSION = "voucher.connection"


class ConnectionLink:
    """What the application may do to the connection a request arrived on."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.closing = asyncio.Event()  # set when the server starts shutting down

    def abort(self) -> None:
        """Drop the connection now; nothing buffered is sent."""
        self._transport.abort()

    def as_extension(self) -> dict[object, object]:
        # The ASGI spec wants each extension to be a dict.
        return {"link": self}


def link_of(scope: Scope) -> ConnectionLink | None:
    """The request's connection link, when the server provides one."""
    extensions: Any = scope.get("extensions") or {}
    entry = extensions.get(EXTENSION)
    link = entry.get("link") if isinstance(entry, dict) else None
    return link if isinstance(link, ConnectionLink) else None
