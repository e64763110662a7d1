"""The seed's message flows, each run end to end against the in-memory switch.

Every :class:`Scenario` is one flow of the Electrum "voucher provision for POS" document:
which provider serves the sale, which faults the network or the switch throws in, and what the
host decides. :func:`run_scenario` plays it through the real driver, core and in-memory
adapters and returns what happened, including a readable timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

from voucher_adapters.bootstrap import DEFAULT_SCHEMA, Settings, build
from voucher_adapters.cli.switch_links import open_link
from voucher_adapters.cli.timeline import Timeline, TimelineEntry
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import Fault, FaultKind, Operation, Provider, SwitchSimulator
from voucher_core.drivers import Driver
from voucher_core.drivers.shared import DriverSettings
from voucher_core.policy import Messaging, ProviderProfile, RetryPolicy
from voucher_core.transaction import Transaction

__all__ = ["SCENARIOS", "Scenario", "ScenarioResult", "TimelineEntry", "run_scenario"]

HostDecision = Literal["confirm", "cancel", "none"]

_DUAL = ProviderProfile(messaging=Messaging.DUAL)
_SINGLE = ProviderProfile(messaging=Messaging.SINGLE)
_NO_RETRIES = ProviderProfile(messaging=Messaging.DUAL, retries_supported=False)
_NO_ADVICES = ProviderProfile(
    messaging=Messaging.DUAL, retries_supported=False, advices_supported=False
)


@attrs.frozen
class Scenario:
    name: str
    title: str
    provider: str
    profile: ProviderProfile
    faults: tuple[tuple[Operation, FaultKind, int], ...] = ()
    host: HostDecision = "confirm"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("dual-success", "successful provision, dual messaging", "dualco", _DUAL),
        Scenario("single-success", "successful provision, single messaging", "singleco", _SINGLE),
        Scenario(
            "timeout-then-success",
            "timeout at the originating system, a retry succeeds",
            "dualco",
            _DUAL,
            ((Operation.PROVISION, FaultKind.DELAY, 1),),
        ),
        Scenario(
            "timeout-retries-fail",
            "timeout at the originating system, every retry times out, reversal",
            "dualco",
            _DUAL,
            ((Operation.PROVISION, FaultKind.DELAY, 1), (Operation.RETRY, FaultKind.LOST, 3)),
        ),
        Scenario(
            "upstream-declined",
            "error upstream: hard decline, no further messaging",
            "dualco",
            _DUAL,
            ((Operation.PROVISION, FaultKind.DECLINE, 1),),
        ),
        Scenario(
            "upstream-unknown-then-success",
            "error upstream with an unknown outcome, a retry succeeds",
            "dualco",
            _DUAL,
            ((Operation.PROVISION, FaultKind.STATUS_UNKNOWN, 1),),
        ),
        Scenario(
            "upstream-retries-fail",
            "error upstream with an unknown outcome, retries fail, reversal",
            "dualco",
            _DUAL,
            (
                (Operation.PROVISION, FaultKind.UNAVAILABLE, 1),
                (Operation.RETRY, FaultKind.STATUS_UNKNOWN, 3),
            ),
        ),
        Scenario(
            "no-retry-provider",
            "timeout with a provider that takes no retries (Netcare): straight to reversal",
            "netcare",
            _NO_RETRIES,
            ((Operation.PROVISION, FaultKind.DELAY, 1),),
        ),
        Scenario(
            "no-advice-provider",
            "provider that takes no advices (Stellr): the switch consumes the confirmation",
            "stellr",
            _NO_ADVICES,
        ),
        Scenario(
            "cancelled-after-provision",
            "voucher provisioned, the customer cancels: reversal",
            "dualco",
            _DUAL,
            host="cancel",
        ),
    )
}


@attrs.define
class ScenarioResult:
    scenario: Scenario
    final_state: str
    outcome: str | None
    operations: list[str]
    provider_voucher_active: bool
    reconciliation: bool
    timeline: list[TimelineEntry]

    @property
    def messaging(self) -> str:
        return self.scenario.profile.messaging.value

    def as_json(self) -> dict[str, object]:
        return {
            "scenario": self.scenario.name,
            "messaging": self.messaging,
            "final_state": self.final_state,
            "outcome": self.outcome,
            "operations": self.operations,
            "provider_voucher_active": self.provider_voucher_active,
            "reconciliation": self.reconciliation,
        }


def run_scenario(
    scenario: Scenario,
    *,
    seed: int = 0,
    on_entry: Callable[[TimelineEntry], None] | None = None,
    http: bool = False,
    db: str | None = None,
    dsn: str | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> ScenarioResult:
    """Play ``scenario`` through the driver; over a real loopback HTTP server if ``http``,
    with the journal and advice queue in the SQLite file ``db`` or PostgreSQL ``dsn``."""
    timeline = Timeline(on_entry)
    note = timeline.note
    provider = Provider(scenario.provider, scenario.profile, frozenset({"AIRTIME10"}))
    switch = SwitchSimulator([provider], seed=seed, listener=timeline.on_switch)
    clock = SimulatedClock()
    # Ids differ per scenario, so that runs sharing one database never collide.
    ids = SeededIds(f"{seed}:{scenario.name}")
    with open_link(switch, http=http) as link:
        for operation, kind, times in scenario.faults:
            switch.faults.script(operation, Fault(kind, link.fault_delay), times=times)
        settings = Settings(
            transport=link.transport(DEMO_CLIENT_ID, timeline.on_exchange),
            db=db,
            dsn=dsn,
            schema=schema,
            clock=clock,
            driver=DriverSettings(
                policy=RetryPolicy(timeout=link.timeout),
                profile=scenario.profile,
                new_id=ids,
                observer=timeline.on_trace,
            ),
        )
        with build(settings) as app:
            tx = _play(scenario, app.driver, clock, ids, note)
        link.settle()
    return ScenarioResult(
        scenario=scenario,
        final_state=tx.state.value,
        outcome=tx.outcome.value if tx.outcome is not None else None,
        operations=timeline.operations,
        provider_voucher_active=switch.voucher_active(tx.id),
        reconciliation=tx.reconciliation is not None,
        timeline=timeline.entries,
    )


def _play(
    scenario: Scenario,
    driver: Driver,
    clock: SimulatedClock,
    ids: SeededIds,
    note: Callable[[str, str], None],
) -> Transaction:
    request = demo_request(id=ids(), time=clock.now())
    note("POS", f"sells AIRTIME10 for 10.00 ({scenario.profile.messaging.value} messaging)")
    tx = driver.sell(request)
    if tx.state == "PROVISIONED":
        if scenario.host == "confirm":
            note("host", "customer paid: confirm with one cash tender")
            driver.confirm(tx, cash(1000))
        elif scenario.host == "cancel":
            note("host", "customer walked away: cancel")
            driver.cancel(tx)
    # Deliver whatever is still queued; the caller then lets the switch forward to the provider.
    driver.drain()
    return tx
