"""The admin API under ``/suv/v1/testServerAdmin/``: faults, providers, the ledger, the pump.

Beyond what Electrum's test server offers, a test (or a person with curl) can script faults,
turn on random ones, heal the network, read the providers and their ledger, and make the
switch forward its queued advices to the providers now. JSON in and out, camelCase keys.

These endpoints act on the whole switch, not on one user's records, so they take no
credentials: the server is a test double meant for loopback, and Basic credentials here would
suggest a separation that does not exist. ``docs/admin-api.md`` documents every endpoint.

Bad input is refused like a bad SUV request: 400 ``FORMAT_ERROR`` with one
``detailMessage.formatErrors`` entry per bad field, naming it. Unknown keys are refused too.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from voucher_adapters.simulator import Fault, FaultKind, Operation, Provider, SwitchSimulator
from voucher_adapters.simulator.refusals import FormatProblem
from voucher_adapters.simulator.server.admin_input import Fields, Invalid, json_object
from voucher_adapters.simulator.server.answers import bad_input, document, too_large
from voucher_adapters.simulator.server.intake import TooLarge
from voucher_adapters.simulator.server.suv import BASE, Endpoint, both_slashes, switch_of
from voucher_core.policy import Messaging, ProviderProfile

__all__ = ["admin_routes", "provider_list"]

ADMIN = f"{BASE}/testServerAdmin"


def _admin(action: Endpoint) -> Endpoint:
    """Turn a bad body into 400 ``FORMAT_ERROR`` and an oversized one into its refusal."""

    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await action(request)
        except Invalid as invalid:
            return bad_input(invalid.problems)
        except TooLarge:
            return too_large(request.app.state.max_body)
        return response

    return endpoint


# -- faults ---------------------------------------------------------------------------------


def _faults_state(switch: SwitchSimulator) -> dict[str, Any]:
    return {"scripted": switch.faults.scripted}


async def script_fault(request: Request) -> Response:
    fields = Fields(
        await json_object(request),
        {"operation", "kind", "times", "productId", "provisionId", "delay"},
    )
    operation = fields.enum("operation", Operation, required=True)
    kind = fields.enum("kind", FaultKind, required=True)
    times = fields.whole("times", minimum=1)
    product_id = fields.text("productId")
    provision_id = fields.text("provisionId")
    delay = fields.number("delay")
    fields.check()
    assert operation is not None and kind is not None  # checked: required
    fault = Fault(kind) if delay is None else Fault(kind, delay)
    switch = switch_of(request)
    switch.faults.script(
        operation,
        fault,
        times=1 if times is None else times,
        product_id=product_id,
        provision_id=provision_id,
    )
    scripted: dict[str, Any] = {
        "operation": operation.value,
        "kind": kind.value,
        "times": 1 if times is None else times,
        "delay": fault.delay,
    }
    if product_id is not None:
        scripted["productId"] = product_id
    if provision_id is not None:
        scripted["provisionId"] = provision_id
    return document({**scripted, **_faults_state(switch)}, 201)


async def random_faults(request: Request) -> Response:
    fields = Fields(
        await json_object(request), {"seed", "rate", "kinds", "operations", "providerDownRate"}
    )
    seed = fields.whole("seed", required=True)
    rate = fields.number("rate", high=1.0, required=True)
    kinds = fields.enums("kinds", FaultKind)
    operations = fields.enums("operations", Operation)
    down = fields.number("providerDownRate", high=1.0)
    if kinds == [] and rate:
        fields.problems.append(FormatProblem("kinds", "kinds may not be empty when rate > 0"))
    fields.check()
    assert seed is not None and rate is not None  # checked: required
    options: dict[str, Any] = {}
    if kinds is not None:
        options["kinds"] = kinds
    if operations is not None:
        options["operations"] = operations
    if down is not None:
        options["provider_down_rate"] = down
    switch = switch_of(request)
    switch.faults.randomly(seed=seed, rate=rate, **options)
    echo: dict[str, Any] = {"seed": seed, "rate": rate}
    if kinds is not None:
        echo["kinds"] = [kind.value for kind in kinds]
    if operations is not None:
        echo["operations"] = [operation.value for operation in operations]
    if down is not None:
        echo["providerDownRate"] = down
    return document(echo)


async def faults(request: Request) -> Response:
    """``GET``: how many scripted faults are still waiting; ``POST``: script one more."""
    if request.method == "POST":
        return await script_fault(request)
    return document(_faults_state(switch_of(request)))


async def heal(request: Request) -> Response:
    switch = switch_of(request)
    switch.faults.heal()
    return document(_faults_state(switch))


# -- providers, ledger, pump ------------------------------------------------------------------


def provider_list(switch: SwitchSimulator) -> list[dict[str, Any]]:
    """The switch's providers as the admin API shows them."""
    default = switch.default_provider
    return [_provider(provider, provider is default) for provider in switch.providers]


def _provider(provider: Provider, default: bool) -> dict[str, Any]:
    profile = provider.profile
    return {
        "name": provider.name,
        "messaging": profile.messaging.value,
        "retriesSupported": profile.retries_supported,
        "advicesSupported": profile.advices_supported,
        "products": sorted(provider.products),
        "default": default,
    }


async def providers(request: Request) -> Response:
    """``GET``: the providers; ``PUT``: replace them (``{"providers": [...], "default"?}``)."""
    switch = switch_of(request)
    if request.method == "PUT":
        wanted, default = _read_providers(await json_object(request))
        try:
            switch.configure_providers(wanted, default_provider=default)
        except ValueError as refused:
            raise Invalid([FormatProblem("providers", str(refused))]) from None
    return document(provider_list(switch))


def _read_providers(data: dict[str, Any]) -> tuple[list[Provider], str | None]:
    fields = Fields(data, {"providers", "default"})
    default = fields.text("default")
    entries = data.get("providers")
    wanted: list[Provider] = []
    if not isinstance(entries, list) or not entries:
        fields.problems.append(
            FormatProblem("providers", "providers must be a non-empty list of providers")
        )
        entries = []
    for index, entry in enumerate(entries):
        path = f"providers[{index}]"
        if not isinstance(entry, dict):
            fields.problems.append(FormatProblem(path, f"{path} must be an object"))
            continue
        one = Fields(
            entry, {"name", "messaging", "retriesSupported", "advicesSupported", "products"}
        )
        name = one.text("name")
        if name is None:
            one.problems.append(FormatProblem("name", "name may not be null"))
        messaging = one.enum("messaging", Messaging) or Messaging.DUAL
        profile = ProviderProfile(
            messaging=messaging,
            retries_supported=one.flag("retriesSupported", default=True),
            advices_supported=one.flag("advicesSupported", default=True),
        )
        products = frozenset(one.texts("products"))
        fields.nested(path, one)
        if name is not None:
            wanted.append(Provider(name, profile, products))
    names = [provider.name for provider in wanted]
    if len(set(names)) != len(names):
        fields.problems.append(FormatProblem("providers", "provider names must be unique"))
    if default is not None and default not in names:
        fields.problems.append(FormatProblem("default", f"no provider named {default!r}"))
    fields.check()
    return wanted, default


async def ledger(request: Request) -> Response:
    entries = switch_of(request).ledger()
    return document(
        [
            {"provisionId": entry.provision_id, "provider": entry.provider, "state": entry.state}
            for entry in entries
        ]
    )


async def pump(request: Request) -> Response:
    fields = Fields(await json_object(request, optional=True), {"maxRounds"})
    rounds = fields.whole("maxRounds", minimum=1)
    fields.check()
    switch = switch_of(request)
    delivered = switch.pump() if rounds is None else switch.pump(max_rounds=rounds)
    return document({"delivered": delivered, "pending": switch.pending_forwards()})


def admin_routes() -> list[BaseRoute]:
    return [
        *both_slashes(f"{ADMIN}/faults", _admin(faults), ["GET", "POST"]),
        *both_slashes(f"{ADMIN}/faults/random", _admin(random_faults), ["POST"]),
        *both_slashes(f"{ADMIN}/heal", _admin(heal), ["POST"]),
        *both_slashes(f"{ADMIN}/providers", _admin(providers), ["GET", "PUT"]),
        *both_slashes(f"{ADMIN}/ledger", _admin(ledger), ["GET"]),
        *both_slashes(f"{ADMIN}/pump", _admin(pump), ["POST"]),
    ]
