"""The ASGI application: the SUV routes and the admin API over one switch simulator.

Theory of operation
-------------------
The switch is not thread-safe and needs none: every request is handled on the server's event
loop, and so is the background task that lets the switch forward queued advices to its
providers (``switch.pump(max_rounds=1)`` every ``pump_interval`` seconds, as Electrum's own
store-and-forward would). Anything else that touches the switch while the server runs in
another thread should go through the admin API, or wait until the server is idle.

Nothing that goes wrong inside reaches the client as a traceback: routing refusals (404, 405)
are ``ErrorDetail`` JSON, and any exception is logged here and answered 500
``GENERAL_ERROR`` with no detail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.simulator.server.admin import admin_routes
from voucher_adapters.simulator.server.answers import crashed, http_refusal
from voucher_adapters.simulator.server.suv import suv_routes
from voucher_core.errors import InvalidArgument

__all__ = ["create_app"]

logger = logging.getLogger("voucher_core.server")


def create_app(
    switch: SwitchSimulator | None = None,
    *,
    pump_interval: float = 0.05,
    max_body: int = 65_536,
) -> Starlette:
    """The simulator as an ASGI application; ``app.state.switch`` is the simulator.

    ``pump_interval`` is how often, in seconds, the switch forwards queued advices to its
    providers while the server runs; ``0`` (or less) leaves that to ``POST
    /suv/v1/testServerAdmin/pump``. ``max_body`` is the largest request body read, in bytes.
    """
    if not math.isfinite(pump_interval):
        raise InvalidArgument(f"pump_interval must be a finite number, got {pump_interval!r}")
    if max_body < 0:
        raise InvalidArgument(f"max_body must not be negative, got {max_body!r}")
    the_switch = switch if switch is not None else SwitchSimulator()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        pumping = None
        if pump_interval > 0:
            pumping = asyncio.create_task(_pump_forever(the_switch, pump_interval))
        try:
            yield
        finally:
            if pumping is not None:
                pumping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pumping

    app = Starlette(
        routes=[*suv_routes(), *admin_routes()],
        middleware=[Middleware(_NeverATraceback)],
        exception_handlers={HTTPException: _routing_refusal},
        lifespan=lifespan,
    )
    # Electrum's servers answer both spellings of a path; a redirect would be another answer.
    app.router.redirect_slashes = False
    app.state.switch = the_switch
    app.state.max_body = max_body
    return app


async def _pump_forever(switch: SwitchSimulator, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            switch.pump(max_rounds=1)
        except Exception:
            logger.exception("the switch failed to forward its queued advices")


async def _routing_refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_refusal(exc.status_code, exc.headers)


class _NeverATraceback:
    """Answer any exception 500 ``GENERAL_ERROR``; the traceback goes to the log only.

    Starlette's own error middleware re-raises after answering, so that the server logs the
    traceback; this one logs it itself and stops it there.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception:
            logger.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if not started:
                await crashed()(scope, receive, send)
