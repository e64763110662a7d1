"""Many sales through a misbehaving network, then a check that the money adds up.

:func:`run_chaos` sells ``count`` vouchers across providers of every profile while the switch
drops, delays and fails requests at random (seeded, so a run repeats exactly). Hosts confirm,
cancel or forget to decide. Then the network heals, every queue drains (the library's advice
queue and the switch's own store-and-forward), and each transaction's final state is compared
with the provider's ledger: an approved sale must have an active voucher, a declined one none.
Sales flagged for reconciliation are counted apart, since they are the ones a person resolves.
"""

from __future__ import annotations

import random
from collections import Counter

import attrs

from voucher_adapters.bootstrap import Settings, build
from voucher_adapters.cli.switch_links import SwitchLink, open_link
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import FaultKind, Provider, SwitchSimulator
from voucher_core.drivers import Driver
from voucher_core.drivers.shared import DriverSettings
from voucher_core.messages import ProvisionRequest
from voucher_core.policy import DecisionPolicy, Messaging, ProviderProfile, RetryPolicy
from voucher_core.table import State
from voucher_core.transaction import Transaction

__all__ = ["CHAOS_PROVIDERS", "ChaosSummary", "run_chaos"]

CHAOS_PROVIDERS: tuple[Provider, ...] = (
    Provider("dualco", ProviderProfile(messaging=Messaging.DUAL), frozenset({"DUAL1"})),
    Provider("singleco", ProviderProfile(messaging=Messaging.SINGLE), frozenset({"SINGLE1"})),
    Provider(
        "netcare",
        ProviderProfile(messaging=Messaging.DUAL, retries_supported=False),
        frozenset({"NETCARE1"}),
    ),
    Provider(
        "stellr",
        ProviderProfile(messaging=Messaging.DUAL, retries_supported=False, advices_supported=False),
        frozenset({"STELLR1"}),
    ),
    Provider(
        "singlenoadvice",
        ProviderProfile(messaging=Messaging.SINGLE, advices_supported=False),
        frozenset({"SINGLE2"}),
    ),
)
_FAULTS = (
    FaultKind.DELAY,
    FaultKind.LOST,
    FaultKind.DROPPED,
    FaultKind.UNAVAILABLE,
    FaultKind.STATUS_UNKNOWN,
    FaultKind.SERVER_ERROR,
    FaultKind.DECLINE,
)


@attrs.frozen
class ChaosSummary:
    count: int
    final_states: dict[str, int]
    mismatches: int
    reconciliation: int
    mismatched_ids: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "final_states": self.final_states,
            "mismatches": self.mismatches,
            "reconciliation": self.reconciliation,
        }


def run_chaos(
    count: int,
    seed: int,
    *,
    fault_rate: float = 0.3,
    http: bool = False,
    db: str | None = None,
    dsn: str | None = None,
) -> ChaosSummary:
    """Sell ``count`` vouchers through random faults; over loopback HTTP if ``http``; with
    the journal and advice queue in the SQLite file ``db`` if given."""
    switch = SwitchSimulator(CHAOS_PROVIDERS, seed=seed)
    with open_link(switch, http=http) as link:
        switch.faults.randomly(
            seed=seed,
            rate=fault_rate,
            kinds=_FAULTS,
            provider_down_rate=0.3,
            delay=link.fault_delay,
        )
        rng = random.Random(seed)
        profiles = {product: p.profile for p in CHAOS_PROVIDERS for product in p.products}

        def profile_of(request: ProvisionRequest) -> ProviderProfile:
            assert request.product is not None
            return profiles[request.product.product_id]

        settings = Settings(
            transport=link.transport(DEMO_CLIENT_ID),
            db=db,
            dsn=dsn,
            clock=SimulatedClock(),
            driver=DriverSettings(
                policy=RetryPolicy(timeout=link.timeout, retry_delay=1.0),
                profile=profile_of,
                decision=DecisionPolicy(limit=120.0),
                new_id=SeededIds(f"{seed}:chaos"),
                draw=rng.random,
            ),
        )
        with build(settings) as app:
            return _sell_through(link, switch, app.driver, sorted(profiles), rng, count=count)


def _sell_through(
    link: SwitchLink,
    switch: SwitchSimulator,
    driver: Driver,
    products: list[str],
    rng: random.Random,
    *,
    count: int,
) -> ChaosSummary:
    clock = driver.clock
    assert isinstance(clock, SimulatedClock)
    ids, decision = driver.settings.new_id, driver.settings.decision
    sales: list[Transaction] = []
    for _ in range(count):
        amount = rng.choice((500, 1000, 2000, 5000))
        request = demo_request(
            id=ids(), time=clock.now(), product_id=rng.choice(products), amount=amount
        )
        tenders_first = rng.random() < 0.2
        tx = driver.sell(request, tenders=cash(amount) if tenders_first else None)
        sales.append(tx)
        if tx.state is State.PROVISIONED:
            choice = rng.random()
            if choice < 0.6:
                driver.confirm(tx, cash(amount))
            elif choice < 0.8:
                driver.cancel(tx)
            # else: the host never answers; the decision limit reverses it later.
        clock.advance(rng.uniform(0.0, 5.0))
        driver.expire_decisions()
        if rng.random() < 0.3:
            driver.forward()
            link.pump_once()

    # The network heals; undecided sales time out; everything queued is delivered.
    switch.faults.heal()
    clock.advance(decision.limit)
    driver.expire_decisions()
    driver.drain()
    link.settle()

    states = Counter(tx.state.value for tx in sales)
    flagged = [tx for tx in sales if tx.reconciliation is not None]
    unsettled = {e.provision_id for e in switch.ledger() if e.state != "reversed"}
    mismatched = tuple(tx.id for tx in sales if _disagrees(tx, switch, unsettled))
    return ChaosSummary(
        count=count,
        final_states={state.value: states.get(state.value, 0) for state in State},
        mismatches=len(mismatched),
        reconciliation=len(flagged),
        mismatched_ids=mismatched,
    )


def _disagrees(tx: Transaction, switch: SwitchSimulator, unsettled: set[str]) -> bool:
    """Whether the provider's books contradict how the sale ended.

    Excused: a sale whose advice met a final conflict or rejection, flagged and reported for a
    person to settle. A voucher flagged because its host was gone when it was issued is not
    excused: it was issued all the same, and the books must show it active.
    """
    if tx.reconciliation is not None and tx.advice is not None:
        return False
    if not tx.terminal:
        return True
    if tx.state is State.DONE:
        return not switch.voucher_active(tx.id)
    # Declined: no active voucher, and nothing left issued at a provider that takes advices.
    return switch.voucher_active(tx.id) or (tx.profile.advices_supported and tx.id in unsettled)
