"""How the switch's answer leaves the server: on time, late, or not at all.

The simulator only says what should happen (``SimReply.delay``, ``SimReply.lost``, status 0 for
a request dropped unread); here it happens on the socket:

* a delay is slept through before answering. The wait ends early if the client hangs up (it
  timed out; nobody is left to answer) or the server shuts down (the connection is dropped,
  as a switch going down would);
* a lost or dropped answer aborts the TCP connection before a single byte of a response, so
  the client sees the connection close with no answer: a protocol or read error, never a
  status. Under an ASGI server that gives no
  :class:`~voucher_adapters.simulator.server.connection.ConnectionLink`
  the response is started with a ``Content-Length`` and never finished, which ends the same
  way for the client but with a status line already read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from voucher_adapters.simulator import SimReply
from voucher_adapters.simulator.server.answers import relay
from voucher_adapters.simulator.server.connection import ConnectionLink, link_of

__all__ = ["DroppedConnection", "deliver"]

_NOTICE = 1.0  # seconds to wait for the server to notice a connection it was told to drop
_FALLBACK_STATUS = 502  # the status line the fallback has to send for a request dropped unread


class DroppedConnection(Response):
    """Not a response at all: the connection goes away instead."""

    def __init__(self, reply: SimReply) -> None:
        super().__init__(reply.body, media_type=reply.content_type)
        self.status_code = reply.status if reply.status >= 100 else _FALLBACK_STATUS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        link = link_of(scope)
        if link is not None:
            link.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_hung_up(receive), _NOTICE)
            return
        # No way to abort: announce a body and never send it. The server has to close the
        # connection to end a response it cannot complete.
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": [
                    (b"content-type", self.media_type.encode() if self.media_type else b""),
                    (b"content-length", str(len(self.body) + 1).encode()),
                ],
            }
        )


async def deliver(reply: SimReply, request: Request) -> Response:
    """The response that carries ``reply`` to the client, after any delay it calls for."""
    link = link_of(request.scope)
    if reply.delay > 0 and not await _wait_out(reply.delay, request.receive, link):
        return DroppedConnection(reply)
    if reply.lost or reply.status == 0:
        return DroppedConnection(reply)
    return relay(reply)


async def _hung_up(receive: Receive) -> None:
    """Return once the client has gone away. The body must already have been read."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _wait_out(delay: float, receive: Receive, link: ConnectionLink | None) -> bool:
    """Sleep ``delay`` seconds; ``False`` if the server began shutting down meanwhile.

    A client that hangs up ends the wait too (``True``): answering it is harmless, the server
    discards what it sends on a closed connection.
    """
    waits: list[Awaitable[object]] = [asyncio.sleep(delay), _hung_up(receive)]
    if link is not None:
        waits.append(link.closing.wait())
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return link is None or not link.closing.is_set()
