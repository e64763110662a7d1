"""The message flows of the seed document, one test each, named in the flow's words.

Each runs the real driver and core against the switch simulator twice: through the in-memory
transport, and end to end over HTTP (the HTTP transport, a real socket on loopback, the
simulator's uvicorn server). Each checks what went over the wire, where the sale ended and
what the provider holds; every body sent and every answer given is also checked against
Electrum's published definitions (the watch in ``tests/conftest.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import attrs
import pytest

from voucher_adapters.cli.switch_links import SwitchLink, open_link
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import Fault, FaultKind, Operation, Provider, SwitchSimulator
from voucher_adapters.stores.memory import InMemoryAdviceQueue
from voucher_adapters.transports.exchange import Exchange
from voucher_core import Driver, DriverSettings, LookupRefused, RetryPolicy, State, Transaction
from voucher_core.policy import Messaging, ProviderProfile
from voucher_core.wire import to_json

DUAL = ProviderProfile(messaging=Messaging.DUAL)
SINGLE = ProviderProfile(messaging=Messaging.SINGLE)
NETCARE = ProviderProfile(messaging=Messaging.DUAL, retries_supported=False)
STELLR = ProviderProfile(messaging=Messaging.DUAL, retries_supported=False, advices_supported=False)

PROVISION, RETRY = "provisionVoucher", "retryProvisionVoucher"
CONFIRM, REVERSE = "confirmVoucher", "reverseVoucher"


@attrs.define
class Till:
    """A point of sale wired to a simulated switch with one provider."""

    switch: SwitchSimulator
    link: SwitchLink
    driver: Driver
    queue: InMemoryAdviceQueue
    clock: SimulatedClock
    exchanges: list[Exchange]
    ids: SeededIds

    @property
    def operations(self) -> list[str]:
        return [e.operation.value for e in self.exchanges]

    def bodies(self, operation: str) -> list[bytes]:
        return [e.body for e in self.exchanges if e.operation.value == operation]

    def sell(self, **kwargs: object) -> Transaction:
        request = demo_request(id=self.ids(), time=self.clock.now())
        return self.driver.sell(request, **kwargs)  # type: ignore[arg-type]

    def settle(self) -> None:
        """Deliver everything queued, then let the switch forward to the provider."""
        while len(self.queue):
            due = self.queue.next_due()
            assert due is not None
            self.clock.advance(max(due - self.clock.monotonic(), 0.0))
            self.driver.forward()
        self.link.settle()

    def ledger_states(self, tx: Transaction) -> list[str]:
        return [e.state for e in self.switch.ledger() if e.provision_id == tx.id]


TillFactory = Callable[..., Till]


@pytest.fixture(params=["memory", "http"])
def till(request: pytest.FixtureRequest) -> Iterator[TillFactory]:
    """Builds a till wired to a fresh simulated switch, in-process or over loopback HTTP."""
    opened: list[tuple[SwitchLink, Till]] = []

    def build(profile: ProviderProfile, *faults: tuple[Operation, FaultKind, int]) -> Till:
        switch = SwitchSimulator([Provider("provider", profile, frozenset({"AIRTIME10"}))], seed=5)
        link = open_link(switch, http=request.param == "http").__enter__()
        for operation, kind, times in faults:
            switch.faults.script(operation, Fault(kind, link.fault_delay), times=times)
        exchanges: list[Exchange] = []
        clock = SimulatedClock()
        ids = SeededIds(5)
        queue = InMemoryAdviceQueue()
        settings = DriverSettings(
            policy=RetryPolicy(timeout=link.timeout), profile=profile, new_id=ids
        )
        driver = Driver(
            link.transport(DEMO_CLIENT_ID, exchanges.append), queue, clock=clock, settings=settings
        )
        built = Till(switch, link, driver, queue, clock, exchanges, ids)
        opened.append((link, built))
        return built

    yield build
    for link, _ in opened:
        link.close()


def test_successful_voucher_provision_dual_messaging(till: TillFactory) -> None:
    t = till(DUAL)
    tx = t.sell()
    assert tx.state is State.PROVISIONED and t.operations == [PROVISION]
    t.driver.confirm(tx, cash(1000))
    t.settle()
    assert t.operations == [PROVISION, CONFIRM]
    assert tx.state is State.DONE
    # Electrum acknowledged at once and forwarded the confirmation to the provider.
    assert t.ledger_states(tx) == ["confirmed"]
    assert t.switch.voucher_active(tx.id)
    confirmation = json.loads(t.bodies(CONFIRM)[0])
    assert confirmation["requestId"] == tx.id
    # It carries the identifiers exactly as the ProvisionResponse returned them.
    response = json.loads(to_json(tx.response))  # type: ignore[arg-type]
    assert confirmation["thirdPartyIdentifiers"] == response["thirdPartyIdentifiers"]
    assert len(response["thirdPartyIdentifiers"]) > len(tx.request.third_party_identifiers)


def test_successful_voucher_provision_single_messaging_is_complete_on_the_response(
    till: TillFactory,
) -> None:
    t = till(SINGLE)
    tx = t.sell()
    t.settle()
    assert t.operations == [PROVISION]
    assert tx.state is State.DONE
    assert t.switch.voucher_active(tx.id)


@pytest.mark.parametrize("profile", [DUAL, SINGLE], ids=["dual", "single"])
def test_error_or_timeout_at_originating_system_retry_returns_the_voucher(
    till: TillFactory, profile: ProviderProfile
) -> None:
    t = till(profile, (Operation.PROVISION, FaultKind.DELAY, 1))
    tx = t.sell(tenders=cash(1000))
    t.settle()
    expected = [PROVISION, RETRY, CONFIRM] if profile.dual else [PROVISION, RETRY]
    assert t.operations == expected
    assert tx.state is State.DONE and t.switch.voucher_active(tx.id)
    # The retry is the original request, unchanged.
    assert t.bodies(RETRY) == t.bodies(PROVISION)
    # The provider issued one voucher, not two.
    assert len(t.ledger_states(tx)) == 1


def test_error_or_timeout_at_originating_system_retries_fail_then_reversal(
    till: TillFactory,
) -> None:
    t = till(DUAL, (Operation.PROVISION, FaultKind.DELAY, 1), (Operation.RETRY, FaultKind.LOST, 3))
    tx = t.sell()
    t.settle()
    assert t.operations == [PROVISION, RETRY, RETRY, RETRY, REVERSE]
    assert all(body == t.bodies(PROVISION)[0] for body in t.bodies(RETRY))
    reversal = json.loads(t.bodies(REVERSE)[0])
    assert reversal["reversalReason"] == "TIMEOUT" and reversal["requestId"] == tx.id
    assert tx.state is State.DECLINED
    # The delayed first attempt did land; the reversal undid it at the provider.
    assert t.ledger_states(tx) == ["reversed"]
    assert not t.switch.voucher_active(tx.id)


def test_error_upstream_transaction_failed_hard_decline_sends_nothing_more(
    till: TillFactory,
) -> None:
    t = till(DUAL, (Operation.PROVISION, FaultKind.DECLINE, 1))
    tx = t.sell(tenders=cash(1000))
    t.settle()
    assert t.operations == [PROVISION]
    assert tx.state is State.DECLINED and tx.declined is not None
    assert tx.declined.error is not None and tx.declined.error.error_type == "DO_NOT_HONOUR"
    assert t.ledger_states(tx) == []


@pytest.mark.parametrize("fault", [FaultKind.UNAVAILABLE, FaultKind.STATUS_UNKNOWN])
def test_error_upstream_unknown_transaction_outcome_retry_succeeds(
    till: TillFactory, fault: FaultKind
) -> None:
    t = till(DUAL, (Operation.PROVISION, fault, 1))
    tx = t.sell()
    assert tx.state is State.PROVISIONED
    t.driver.confirm(tx, cash(1000))
    t.settle()
    assert t.operations == [PROVISION, RETRY, CONFIRM]
    assert tx.state is State.DONE and t.switch.voucher_active(tx.id)


def test_error_upstream_retries_fail_then_reversal(till: TillFactory) -> None:
    t = till(
        DUAL,
        (Operation.PROVISION, FaultKind.STATUS_UNKNOWN, 1),
        (Operation.RETRY, FaultKind.UNAVAILABLE, 3),
    )
    tx = t.sell()
    t.settle()
    assert t.operations == [PROVISION, RETRY, RETRY, RETRY, REVERSE]
    assert json.loads(t.bodies(REVERSE)[0])["reversalReason"] == "RESPONSE_NOT_FINAL"
    assert tx.state is State.DECLINED
    assert not t.switch.voucher_active(tx.id)


def test_error_upstream_retries_fail_with_a_hard_decline_at_any_point_then_reversal(
    till: TillFactory,
) -> None:
    t = till(
        DUAL,
        (Operation.PROVISION, FaultKind.SERVER_ERROR, 1),
        (Operation.RETRY, FaultKind.DECLINE, 1),
    )
    tx = t.sell()
    t.settle()
    assert t.operations == [PROVISION, RETRY, REVERSE]
    assert tx.state is State.DECLINED and not t.switch.voucher_active(tx.id)


def test_netcare_and_stellr_do_not_support_retries_so_a_timeout_goes_to_reversal(
    till: TillFactory,
) -> None:
    t = till(NETCARE, (Operation.PROVISION, FaultKind.DELAY, 1))
    tx = t.sell()
    t.settle()
    assert t.operations == [PROVISION, REVERSE]
    assert tx.state is State.DECLINED and not t.switch.voucher_active(tx.id)


def test_electrum_hard_declines_a_retry_for_a_provider_without_retries(till: TillFactory) -> None:
    # Even a host that misconfigures the profile ends right: the decline is reversed.
    t = till(NETCARE, (Operation.PROVISION, FaultKind.DELAY, 1))
    t.driver.settings = attrs.evolve(t.driver.settings, profile=DUAL)
    tx = t.sell()
    t.settle()
    assert t.operations == [PROVISION, RETRY, REVERSE]
    assert tx.state is State.DECLINED and not t.switch.voucher_active(tx.id)


def test_stellr_does_not_support_advices_so_electrum_consumes_them(till: TillFactory) -> None:
    t = till(STELLR)
    tx = t.sell(tenders=cash(1000))
    t.settle()
    # The originating system sends the confirmation as usual.
    assert t.operations == [PROVISION, CONFIRM]
    assert tx.state is State.DONE
    # The provider never heard of it; the switch's own record holds the confirmation.
    assert t.ledger_states(tx) == ["issued"]
    assert t.switch.voucher_active(tx.id)


def test_customer_cancels_after_provision_so_the_voucher_is_reversed(till: TillFactory) -> None:
    t = till(DUAL)
    tx = t.sell()
    t.driver.cancel(tx)
    t.settle()
    assert t.operations == [PROVISION, REVERSE]
    assert json.loads(t.bodies(REVERSE)[0])["reversalReason"] == "CANCELLED"
    assert tx.state is State.DECLINED and t.ledger_states(tx) == ["reversed"]


def test_no_transaction_lookups_until_the_initial_processing_period_concludes(
    till: TillFactory,
) -> None:
    t = till(DUAL)
    tx = t.sell()
    with pytest.raises(LookupRefused):
        t.driver.lookup(tx)
    assert t.operations == [PROVISION]
    t.driver.confirm(tx, cash(1000))
    t.settle()
    assert t.driver.lookup(tx).status == 200
