"""The SUV interface under ``/suv/v1``, as Electrum's test server offers it.

Each route reads the Basic username and the body (bounded), hands them to the switch with the
operation the path names, and delivers the :class:`~voucher_adapters.simulator.SimReply`. The switch
does everything else: validation, the ``client.id`` check, records per username and password,
faults. A 201 carries the ``Location`` of the voucher it created.

The body is read as JSON whatever ``Content-Type`` says, or whether it says anything: the switch
validates the bytes themselves, which is what decides every answer of Electrum's test server
that is known. Clients should still send ``application/json``; a real switch may insist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from voucher_adapters.simulator import Operation, SwitchSimulator
from voucher_adapters.simulator.server.answers import too_large, unauthorized
from voucher_adapters.simulator.server.delivery import deliver
from voucher_adapters.simulator.server.intake import TooLarge, basic_credentials, read_body

__all__ = ["BASE", "both_slashes", "suv_routes"]

BASE = "/suv/v1"
Endpoint = Callable[[Request], Awaitable[Response]]


def both_slashes(path: str, endpoint: Endpoint, methods: list[str]) -> list[BaseRoute]:
    """The route at ``path`` and at ``path/``: Electrum's servers take both."""
    return [Route(path, endpoint, methods=methods), Route(f"{path}/", endpoint, methods=methods)]


def switch_of(request: Request) -> SwitchSimulator:
    switch: SwitchSimulator = request.app.state.switch
    return switch


async def _forward(
    request: Request,
    operation: Operation,
    *,
    provision_id: str | None = None,
    with_body: bool = True,
) -> Response:
    credentials = basic_credentials(request.headers.get("authorization"))
    if credentials is None:
        return unauthorized()
    username, password = credentials
    body = b""
    if with_body:
        try:
            body = await read_body(request, request.app.state.max_body)
        except TooLarge:
            return too_large(request.app.state.max_body)
    reply = switch_of(request).handle(
        operation,
        body,
        username=username,
        password=password,
        provision_id=provision_id,
        query=dict(request.query_params) if operation is Operation.LOOKUP else None,
    )
    return await deliver(reply, request)


async def vouchers(request: Request) -> Response:
    """``POST /vouchers`` provisions; ``GET /vouchers?provisionRequestId=`` looks one up."""
    if request.method == "POST":
        return await _forward(request, Operation.PROVISION)
    return await _forward(request, Operation.LOOKUP, with_body=False)


async def retry(request: Request) -> Response:
    provision_id = str(request.path_params["provisionId"])
    return await _forward(request, Operation.RETRY, provision_id=provision_id)


async def confirmations(request: Request) -> Response:
    return await _forward(request, Operation.CONFIRM)


async def reversals(request: Request) -> Response:
    return await _forward(request, Operation.REVERSE)


async def reset(request: Request) -> Response:
    """Electrum's own admin call: forget the caller's records."""
    return await _forward(request, Operation.RESET)


def suv_routes() -> list[BaseRoute]:
    return [
        *both_slashes(f"{BASE}/vouchers", vouchers, ["GET", "POST"]),
        *both_slashes(f"{BASE}/vouchers/confirmations", confirmations, ["POST"]),
        *both_slashes(f"{BASE}/vouchers/reversals", reversals, ["POST"]),
        *both_slashes(f"{BASE}/vouchers/{{provisionId}}/retry", retry, ["POST"]),
        *both_slashes(f"{BASE}/testServerAdmin/reset", reset, ["POST"]),
    ]
