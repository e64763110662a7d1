"""The synchronous driver, end to end over the in-memory switch, queue and a simulated clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import FaultKind, Operation, Provider, SwitchSimulator
from voucher_adapters.stores.memory import InMemoryAdviceQueue
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.in_process import InMemoryTransport
from voucher_core import (
    BackoffPolicy,
    DecisionPolicy,
    Driver,
    DriverSettings,
    LookupRefused,
    Outcome,
    ProviderProfile,
    RetryPolicy,
    State,
    Transaction,
)
from voucher_core.drivers import (
    AdviceQueued,
    AdviceSettled,
    DecisionAwaited,
    SaleEnded,
    StateChanged,
    Trace,
)
from voucher_core.messages import BasicReversal, ProvisionRequest, ReversalReason
from voucher_core.policy import DUAL, SINGLE
from voucher_core.replies import Acknowledged, AdviceKind, Conflict, Rejected, RepeatLater
from voucher_core.table import TRANSITIONS

PROVIDERS = (
    Provider("dualco", DUAL, frozenset({"AIRTIME10", "DUAL1"})),
    Provider("singleco", SINGLE, frozenset({"SINGLE1"})),
)


def state_of(tx: Transaction) -> State:
    """The state now (a plain ``tx.state`` after an earlier assert reads as narrowed to mypy)."""
    return tx.state


class Rig:
    """A driver wired to a real simulated switch, recording every exchange and trace."""

    def __init__(self, seed: int = 1, **settings: Any) -> None:
        self.switch = SwitchSimulator(PROVIDERS, seed=seed)
        self.clock = SimulatedClock()
        self.ids = SeededIds(seed)
        self.queue = InMemoryAdviceQueue()
        self.exchanges: list[Exchange] = []
        self.sent_at: list[float] = []
        self.traces: list[Trace] = []
        self.transport = InMemoryTransport(self.switch, username=DEMO_CLIENT_ID, observer=self._saw)
        settings.setdefault("new_id", self.ids)
        settings.setdefault("observer", self.traces.append)
        self.driver = Driver(
            self.transport, self.queue, clock=self.clock, settings=DriverSettings(**settings)
        )

    def _saw(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        self.sent_at.append(self.clock.monotonic())

    def request(self, product_id: str = "AIRTIME10") -> ProvisionRequest:
        return demo_request(id=self.ids(), time=self.clock.now(), product_id=product_id)

    def operations(self, tx: Transaction | None = None) -> list[Operation]:
        return [e.operation for e in self.exchanges if tx is None or e.request_id == tx.id]

    def sent(self, operation: Operation) -> list[Exchange]:
        return [e for e in self.exchanges if e.operation is operation]

    def drain(self) -> None:
        """Let time pass until every queued advice is delivered, then let the switch forward."""
        while len(self.queue):
            due = self.queue.next_due()
            assert due is not None
            self.clock.advance(max(due - self.clock.monotonic(), 0.0))
            self.driver.forward()
        self.switch.pump()


# -- a confirmation the switch cannot take yet ---------------------------------------------------


def test_a_confirmation_answered_503_stays_queued_until_its_backoff_passes() -> None:
    backoff = BackoffPolicy(initial=8.0)
    rig = Rig(backoff=backoff)
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.UNAVAILABLE, times=1)
    tx = rig.driver.sell(rig.request())
    rig.driver.confirm(tx, cash(1000))

    assert tx.state is State.CONFIRMING
    assert tx.outcome is Outcome.APPROVED
    assert len(rig.queue) == 1
    [first] = rig.sent(Operation.CONFIRM)
    assert first.status == 503
    assert isinstance(first.reply, RepeatLater)
    due = rig.queue.next_due()
    assert due is not None
    assert backoff.initial / 2 <= due - rig.clock.monotonic() <= backoff.initial

    # Not yet: nothing is sent before the due time.
    rig.clock.advance(due - rig.clock.monotonic() - 0.001)
    assert rig.driver.forward() == 0
    assert len(rig.sent(Operation.CONFIRM)) == 1
    assert tx.state is State.CONFIRMING

    rig.clock.advance(0.001)
    assert rig.driver.forward() == 1
    first, repeat = rig.sent(Operation.CONFIRM)
    assert repeat.message_id == first.message_id
    assert repeat.body == first.body
    assert repeat.status == 202
    assert state_of(tx) is State.DONE
    assert tx.reconciliation is None
    assert len(rig.queue) == 0
    rig.switch.pump()
    assert rig.switch.voucher_active(tx.id)


def test_the_backoff_grows_with_each_failed_repeat() -> None:
    rig = Rig(backoff=BackoffPolicy(initial=8.0, multiplier=2.0), draw=lambda: 0.0)
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.UNAVAILABLE, times=3)
    tx = rig.driver.sell(rig.request())
    rig.driver.confirm(tx, cash(1000))

    gaps = []
    while tx.state is State.CONFIRMING:
        due = rig.queue.next_due()
        assert due is not None
        gaps.append(due - rig.clock.monotonic())
        rig.clock.advance(gaps[-1])
        rig.driver.forward()
    assert gaps == [8.0, 16.0, 32.0]
    assert tx.state is State.DONE
    confirmations = rig.sent(Operation.CONFIRM)
    assert [e.status for e in confirmations] == [503, 503, 503, 202]
    assert len({e.message_id for e in confirmations}) == 1
    assert len({e.body for e in confirmations}) == 1


def test_an_unanswered_reversal_is_repeated_with_the_same_id_and_body() -> None:
    rig = Rig()
    rig.switch.faults.script(Operation.REVERSE, FaultKind.LOST, times=2)
    tx = rig.driver.sell(rig.request())
    rig.driver.cancel(tx)
    assert tx.state is State.REVERSING
    assert tx.outcome is Outcome.DECLINED
    rig.drain()
    reversals = rig.sent(Operation.REVERSE)
    assert [e.status for e in reversals] == [None, None, 202]
    assert len({(e.message_id, e.body) for e in reversals}) == 1
    assert state_of(tx) is State.DECLINED
    assert not rig.switch.voucher_active(tx.id)


# -- final refusals ---------------------------------------------------------------------------


def test_a_400_to_a_confirmation_parks_it_and_flags_the_sale_for_reconciliation() -> None:
    rig = Rig()
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.DECLINE, times=1)
    tx = rig.driver.sell(rig.request())
    rig.driver.confirm(tx, cash(1000))

    assert tx.state is State.DONE
    assert tx.reconciliation is not None
    assert tx.reconciliation.startswith("rejected")
    assert "DO_NOT_HONOUR" in tx.reconciliation
    assert len(rig.queue) == 0
    [parked] = rig.queue.parked()
    assert tx.advice is not None
    assert parked.queued.id == tx.advice.id
    assert "DO_NOT_HONOUR" in parked.reason
    # Parked means no more sending, however much time passes.
    rig.clock.advance(10_000)
    assert rig.driver.forward() == 0
    assert len(rig.sent(Operation.CONFIRM)) == 1
    assert tx not in rig.driver.in_flight()


def test_a_parked_advice_requeued_by_hand_is_delivered_with_the_same_id_and_body() -> None:
    rig = Rig()
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.DECLINE, times=1)
    tx = rig.driver.sell(rig.request())
    rig.driver.confirm(tx, cash(1000))
    [parked] = rig.queue.parked()

    assert rig.queue.requeue(parked.queued.id, due=rig.clock.monotonic())
    assert rig.driver.forward() == 1
    first, again = rig.sent(Operation.CONFIRM)
    assert (again.message_id, again.body) == (first.message_id, first.body)
    assert again.status == 202
    assert rig.queue.parked() == []
    assert len(rig.queue) == 0
    rig.switch.pump()
    assert rig.switch.voucher_active(tx.id)


def test_a_confirmation_of_a_reversed_voucher_is_a_conflict_acknowledged_and_flagged() -> None:
    rig = Rig()
    tx = rig.driver.sell(rig.request())
    # Someone else (another till, an operator) reverses the provision first.
    other = BasicReversal(
        id=rig.ids(),
        request_id=tx.id,
        time=rig.clock.now(),
        third_party_identifiers=tx.third_party_identifiers,
        reversal_reason=ReversalReason.CANCELLED,
    )
    assert isinstance(rig.transport.reverse(other, timeout=60.0), Acknowledged)

    rig.driver.confirm(tx, cash(1000))
    assert tx.state is State.DONE
    assert tx.reconciliation is not None
    assert tx.reconciliation.startswith("conflict")
    assert len(rig.queue) == 0
    assert rig.queue.parked() == []
    settled = [t for t in rig.traces if isinstance(t, AdviceSettled)]
    assert isinstance(settled[-1].reply, Conflict)


def test_one_bad_advice_never_blocks_the_others() -> None:
    rig = Rig()
    bad, flaky, good = (rig.driver.sell(rig.request()) for _ in range(3))
    # The bad sale's confirmation is refused for good; the flaky one's switch is down a while.
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.DECLINE, provision_id=bad.id)
    rig.switch.faults.script(
        Operation.CONFIRM, FaultKind.UNAVAILABLE, times=2, provision_id=flaky.id
    )
    for tx in (bad, flaky, good):
        rig.driver.confirm(tx, cash(1000))

    assert good.state is State.DONE
    assert bad.state is State.DONE
    assert bad.reconciliation is not None
    assert flaky.state is State.CONFIRMING
    rig.drain()
    assert state_of(flaky) is State.DONE
    assert flaky.reconciliation is None
    assert good.reconciliation is None
    assert [p.queued.request_id for p in rig.queue.parked()] == [bad.id]
    assert rig.switch.voucher_active(flaky.id)
    assert rig.switch.voucher_active(good.id)


def test_an_advice_that_keeps_failing_does_not_hold_up_one_queued_after_it() -> None:
    rig = Rig(draw=lambda: 0.0)
    stuck, later = rig.driver.sell(rig.request()), rig.driver.sell(rig.request())
    rig.switch.faults.script(
        Operation.CONFIRM, FaultKind.SERVER_ERROR, times=1000, provision_id=stuck.id
    )
    rig.driver.confirm(stuck, cash(1000))
    rig.clock.advance(30.0)
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.UNAVAILABLE, provision_id=later.id)
    rig.driver.confirm(later, cash(1000))
    assert later.state is State.CONFIRMING

    for _ in range(10):
        due = rig.queue.next_due()
        assert due is not None
        rig.clock.advance(max(due - rig.clock.monotonic(), 0.0))
        rig.driver.forward(limit=1)
    assert state_of(later) is State.DONE
    assert stuck.state is State.CONFIRMING
    assert [q.request_id for q in rig.queue.pending()] == [stuck.id]
    # Nothing is dropped by a retry count or an age.
    assert len([e for e in rig.sent(Operation.CONFIRM) if e.request_id == stuck.id]) > 2


# -- the host's decision -------------------------------------------------------------------------


def test_a_sale_the_host_never_decides_is_reversed_cancelled_once_the_limit_passes() -> None:
    rig = Rig(decision=DecisionPolicy(limit=45.0))
    tx = rig.driver.sell(rig.request())
    assert tx.state is State.PROVISIONED
    assert rig.driver.expire_decisions() == []

    rig.clock.advance(44.999)
    assert rig.driver.expire_decisions() == []
    assert tx.state is State.PROVISIONED
    assert rig.sent(Operation.REVERSE) == []

    rig.clock.advance(0.001)
    assert rig.driver.expire_decisions() == [tx]
    assert state_of(tx) is State.DECLINED
    assert tx.outcome is Outcome.DECLINED
    [reversal] = rig.sent(Operation.REVERSE)
    body = json.loads(reversal.body)
    assert body["reversalReason"] == "CANCELLED"
    assert body["requestId"] == tx.id
    assert rig.driver.expire_decisions() == []
    rig.switch.pump()
    assert not rig.switch.voucher_active(tx.id)


def test_a_decided_sale_is_never_expired() -> None:
    rig = Rig(decision=DecisionPolicy(limit=10.0))
    confirmed, cancelled, undecided = (rig.driver.sell(rig.request()) for _ in range(3))
    rig.driver.confirm(confirmed, cash(1000))
    rig.driver.cancel(cancelled)
    rig.clock.advance(10.0)
    assert rig.driver.expire_decisions() == [undecided]
    assert confirmed.state is State.DONE
    assert cancelled.state is State.DECLINED
    assert len(rig.sent(Operation.REVERSE)) == 2
    assert len(rig.sent(Operation.CONFIRM)) == 1


def test_the_decision_deadline_counts_from_when_the_voucher_arrived() -> None:
    rig = Rig(decision=DecisionPolicy(limit=10.0), policy=RetryPolicy(retry_delay=4.0))
    rig.switch.faults.script(Operation.PROVISION, FaultKind.LOST)
    tx = rig.driver.sell(rig.request())
    assert tx.state is State.PROVISIONED
    awaited = [t for t in rig.traces if isinstance(t, DecisionAwaited)]
    assert awaited == [DecisionAwaited(tx.id, 14.0)]
    rig.clock.advance(9.0)
    assert rig.driver.expire_decisions() == []
    rig.clock.advance(1.0)
    assert rig.driver.expire_decisions() == [tx]


# -- lookups ------------------------------------------------------------------------------------


def test_a_lookup_is_refused_while_in_flight_and_answered_once_final() -> None:
    rig = Rig()
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.UNAVAILABLE)
    tx = rig.driver.sell(rig.request())
    with pytest.raises(LookupRefused):
        rig.driver.lookup(tx)
    rig.driver.confirm(tx, cash(1000))
    assert tx.state is State.CONFIRMING
    with pytest.raises(LookupRefused) as refused:
        rig.driver.lookup(tx)
    assert refused.value.transaction_id == tx.id
    assert rig.sent(Operation.LOOKUP) == []

    rig.drain()
    assert state_of(tx) is State.DONE
    reply = rig.driver.lookup(tx)
    assert reply.status == 200
    found = json.loads(reply.content)
    assert tx.response is not None
    assert tx.response.voucher is not None
    assert found["voucher"]["code"] == tx.response.voucher.code
    assert [e.request_id for e in rig.sent(Operation.LOOKUP)] == [tx.id]


# -- traces ------------------------------------------------------------------------------------


def test_traces_arrive_in_order_for_a_dual_sale() -> None:
    rig = Rig(decision=DecisionPolicy(limit=30.0))
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.UNAVAILABLE)
    tx = rig.driver.sell(rig.request())
    rig.clock.advance(5.0)
    rig.driver.confirm(tx, cash(1000))
    rig.drain()

    assert tx.advice is not None
    advice_id = tx.advice.id
    kind = AdviceKind.CONFIRMATION
    refused = rig.sent(Operation.CONFIRM)[0].reply
    assert isinstance(refused, RepeatLater)
    assert rig.traces[:5] == [
        StateChanged(tx.id, State.PROVISIONING, State.PROVISIONED),
        DecisionAwaited(tx.id, 30.0),
        StateChanged(tx.id, State.PROVISIONED, State.CONFIRMING),
        AdviceQueued(tx.id, advice_id, kind),
        AdviceSettled(tx.id, advice_id, kind, refused),
    ]
    last_settled, done, ended = rig.traces[5:]
    assert isinstance(last_settled, AdviceSettled)
    assert isinstance(last_settled.reply, Acknowledged)
    assert done == StateChanged(tx.id, State.CONFIRMING, State.DONE)
    assert ended == SaleEnded(tx.id, State.DONE, Outcome.APPROVED, 0, None)


def test_traces_of_a_parked_advice_say_rejected_then_the_sale_ends() -> None:
    rig = Rig()
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.DECLINE)
    tx = rig.driver.sell(rig.request())
    rig.traces.clear()
    rig.driver.confirm(tx, cash(1000))
    assert [type(t) for t in rig.traces] == [
        StateChanged,
        AdviceQueued,
        AdviceSettled,
        StateChanged,
        SaleEnded,
    ]
    settled = rig.traces[2]
    assert isinstance(settled, AdviceSettled)
    assert isinstance(settled.reply, Rejected)
    assert rig.traces[-2] == StateChanged(tx.id, State.CONFIRMING, State.DONE)
    ended = rig.traces[-1]
    assert isinstance(ended, SaleEnded)
    assert ended.reconciliation is not None and ended.reconciliation.startswith("rejected: ")


def test_no_observer_is_fine() -> None:
    rig = Rig(observer=None)
    tx = rig.driver.sell(rig.request(), tenders=cash(1000))
    assert tx.state is State.DONE
    assert rig.traces == []


def _edges() -> set[tuple[State, State]]:
    return {(rule.source, rule.dest) for rule in TRANSITIONS if rule.dest is not None}


@pytest.mark.parametrize("how", ["single messaging", "tenders up front"])
def test_every_state_change_trace_is_an_edge_of_the_state_machine(how: str) -> None:
    rig = Rig()
    if how == "single messaging":
        tx = rig.driver.sell(rig.request("SINGLE1"), profile=SINGLE)
    else:
        tx = rig.driver.sell(rig.request(), tenders=cash(1000))
    assert tx.state is State.DONE
    changes = [(t.source, t.dest) for t in rig.traces if isinstance(t, StateChanged)]
    assert set(changes) <= _edges(), changes


# -- profiles and tenders -----------------------------------------------------------------------


def test_the_profile_may_be_chosen_per_request() -> None:
    asked: list[str] = []

    def profile_of(request: ProvisionRequest) -> ProviderProfile:
        assert request.product is not None
        asked.append(request.product.product_id)
        return SINGLE if request.product.product_id == "SINGLE1" else DUAL

    rig = Rig(profile=profile_of)
    single = rig.driver.sell(rig.request("SINGLE1"))
    dual = rig.driver.sell(rig.request("DUAL1"))
    assert asked == ["SINGLE1", "DUAL1"]
    assert single.profile == SINGLE
    assert single.state is State.DONE
    assert dual.profile == DUAL
    assert dual.state is State.PROVISIONED
    assert rig.operations(single) == [Operation.PROVISION]
    # An explicit profile wins over the settings' choice.
    explicit = rig.driver.sell(rig.request("DUAL1"), profile=SINGLE)
    assert asked == ["SINGLE1", "DUAL1"]
    assert explicit.state is State.DONE


def test_tenders_given_up_front_confirm_without_waiting_for_the_host() -> None:
    rig = Rig()
    tenders = cash(2500)
    tx = rig.driver.sell(rig.request(), tenders=tenders)
    assert tx.state is State.DONE
    assert rig.operations(tx) == [Operation.PROVISION, Operation.CONFIRM]
    assert not any(isinstance(t, DecisionAwaited) for t in rig.traces)
    [confirmation] = rig.sent(Operation.CONFIRM)
    body = json.loads(confirmation.body)
    assert body["requestId"] == tx.id
    assert body["tenders"] == [
        {"tenderType": "CASH", "amount": {"amount": 2500, "currency": "710"}}
    ]
    # The confirmation carries the response's third-party identifiers, not the request's.
    assert tx.response is not None
    assert len(body["thirdPartyIdentifiers"]) == len(tx.response.third_party_identifiers)
    assert len(body["thirdPartyIdentifiers"]) > len(tx.request.third_party_identifiers)
    assert rig.driver.expire_decisions() == []
    rig.switch.pump()
    assert rig.switch.voucher_active(tx.id)


# -- retries -----------------------------------------------------------------------------------


def test_the_retry_delay_is_slept_on_the_clock_before_each_retry() -> None:
    rig = Rig(policy=RetryPolicy(retry_delay=2.5))
    rig.switch.faults.script(Operation.PROVISION, FaultKind.DELAY)
    rig.switch.faults.script(Operation.RETRY, FaultKind.LOST, times=2)
    tx = rig.driver.sell(rig.request())
    assert rig.operations(tx) == [Operation.PROVISION] + [Operation.RETRY] * 3
    assert rig.sent_at == [0.0, 2.5, 5.0, 7.5]
    assert rig.clock.monotonic() == 7.5
    assert tx.state is State.PROVISIONED
    assert tx.retries == 3


def test_retries_reuse_the_id_and_body_then_a_timeout_reversal_follows() -> None:
    rig = Rig(policy=RetryPolicy(max_retries=2))
    rig.switch.faults.script(Operation.PROVISION, FaultKind.DELAY)
    rig.switch.faults.script(Operation.RETRY, FaultKind.DROPPED, times=2)
    tx = rig.driver.sell(rig.request())
    assert rig.operations(tx) == [
        Operation.PROVISION,
        Operation.RETRY,
        Operation.RETRY,
        Operation.REVERSE,
    ]
    attempts = rig.exchanges[:3]
    assert {e.message_id for e in attempts} == {tx.id}
    assert len({e.body for e in attempts}) == 1
    assert json.loads(rig.exchanges[3].body)["reversalReason"] == "TIMEOUT"
    assert tx.state is State.DECLINED
    rig.switch.pump()
    assert not rig.switch.voucher_active(tx.id)


def test_no_retry_delay_means_no_time_passes() -> None:
    rig = Rig()
    rig.switch.faults.script(Operation.PROVISION, FaultKind.STATUS_UNKNOWN)
    tx = rig.driver.sell(rig.request())
    assert rig.operations(tx) == [Operation.PROVISION, Operation.RETRY]
    assert rig.clock.monotonic() == 0.0


def test_a_first_attempt_hard_decline_sends_nothing_more() -> None:
    rig = Rig()
    rig.switch.faults.script(Operation.PROVISION, FaultKind.DECLINE)
    tx = rig.driver.sell(rig.request())
    assert rig.operations(tx) == [Operation.PROVISION]
    assert tx.state is State.DECLINED
    assert tx.outcome is Outcome.DECLINED
    assert len(rig.queue) == 0
    assert tx not in rig.driver.in_flight()
    rig.drain()
    assert rig.operations(tx) == [Operation.PROVISION]


def test_in_flight_lists_only_unfinished_sales() -> None:
    rig = Rig()
    waiting = rig.driver.sell(rig.request())
    done = rig.driver.sell(rig.request(), tenders=cash(1000))
    assert rig.driver.in_flight() == [waiting]
    assert done.terminal
    rig.driver.cancel(waiting)
    assert rig.driver.in_flight() == []
