"""The asyncio driver: the sync driver's flows, awaited, plus many sales at once."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import FaultKind, Operation, Provider, SwitchSimulator
from voucher_adapters.stores.memory import AsyncInMemoryAdviceQueue, InMemoryAdviceQueue
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.in_process import AsyncInMemoryTransport
from voucher_core import (
    AsyncDriver,
    BackoffPolicy,
    DecisionPolicy,
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
from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice
from voucher_core.policy import DUAL, NO_ADVICES, NO_RETRIES, SINGLE
from voucher_core.replies import Acknowledged, AdviceKind, AdviceReply, RepeatLater

T = TypeVar("T")

PROVIDERS = (
    Provider("dualco", DUAL, frozenset({"AIRTIME10", "DUAL1"})),
    Provider("singleco", SINGLE, frozenset({"SINGLE1"})),
    Provider("netcare", NO_RETRIES, frozenset({"NETCARE1"})),
    Provider("stellr", NO_ADVICES, frozenset({"STELLR1"})),
)
PROFILES = {product: p.profile for p in PROVIDERS for product in p.products}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class Rig:
    """An async driver wired to a real simulated switch, recording exchanges and traces."""

    def __init__(self, seed: int = 1, **settings: Any) -> None:
        self.switch = SwitchSimulator(PROVIDERS, seed=seed)
        self.clock = SimulatedClock()
        self.ids = SeededIds(seed)
        self.queue = InMemoryAdviceQueue()
        self.exchanges: list[Exchange] = []
        self.sent_at: list[float] = []
        self.traces: list[Trace] = []
        self.transport = AsyncInMemoryTransport(
            self.switch, username=DEMO_CLIENT_ID, observer=self._saw
        )
        settings.setdefault("new_id", self.ids)
        settings.setdefault("observer", self.traces.append)
        self.driver = AsyncDriver(
            self.transport,
            AsyncInMemoryAdviceQueue(self.queue),
            clock=self.clock,
            settings=DriverSettings(**settings),
        )

    def _saw(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        self.sent_at.append(self.clock.monotonic())

    def request(self, product_id: str = "AIRTIME10") -> ProvisionRequest:
        return demo_request(id=self.ids(), time=self.clock.now(), product_id=product_id)

    def operations(self, tx: Transaction) -> list[Operation]:
        return [e.operation for e in self.exchanges if e.request_id == tx.id]

    def sent(self, operation: Operation) -> list[Exchange]:
        return [e for e in self.exchanges if e.operation is operation]

    async def drain(self) -> None:
        while len(self.queue):
            due = self.queue.next_due()
            assert due is not None
            self.clock.advance(max(due - self.clock.monotonic(), 0.0))
            await self.driver.forward()
        self.switch.pump()


def test_a_dual_sale_is_confirmed_and_the_provider_holds_the_voucher() -> None:
    rig = Rig()

    async def flow() -> Transaction:
        tx = await rig.driver.sell(rig.request())
        assert tx.state is State.PROVISIONED
        assert tx.outcome is None
        return await rig.driver.confirm(tx, cash(1000))

    tx = run(flow())
    assert tx.state is State.DONE
    assert rig.operations(tx) == [Operation.PROVISION, Operation.CONFIRM]
    rig.switch.pump()
    assert rig.switch.voucher_active(tx.id)


def test_a_confirmation_answered_503_is_repeated_after_its_backoff_with_the_same_body() -> None:
    backoff = BackoffPolicy(initial=6.0)
    rig = Rig(backoff=backoff)
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.UNAVAILABLE)

    async def flow() -> Transaction:
        tx = await rig.driver.sell(rig.request())
        await rig.driver.confirm(tx, cash(1000))
        assert tx.state is State.CONFIRMING
        due = rig.queue.next_due()
        assert due is not None
        assert backoff.initial / 2 <= due - rig.clock.monotonic() <= backoff.initial
        rig.clock.advance(due - rig.clock.monotonic() - 0.01)
        assert await rig.driver.forward() == 0
        assert tx.state is State.CONFIRMING
        rig.clock.advance(0.01)
        assert await rig.driver.forward() == 1
        return tx

    tx = run(flow())
    assert tx.state is State.DONE
    first, repeat = rig.sent(Operation.CONFIRM)
    assert (first.status, repeat.status) == (503, 202)
    assert (repeat.message_id, repeat.body) == (first.message_id, first.body)
    assert len(rig.queue) == 0


def test_a_400_to_a_confirmation_parks_it_and_flags_the_sale() -> None:
    rig = Rig()
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.DECLINE)

    async def flow() -> Transaction:
        tx = await rig.driver.sell(rig.request())
        return await rig.driver.confirm(tx, cash(1000))

    tx = run(flow())
    assert tx.state is State.DONE
    assert tx.reconciliation is not None
    [parked] = rig.queue.parked()
    assert tx.advice is not None
    assert parked.queued.id == tx.advice.id
    assert len(rig.queue) == 0


def test_one_bad_advice_never_blocks_the_others() -> None:
    rig = Rig()

    async def flow() -> list[Transaction]:
        sales = [await rig.driver.sell(rig.request()) for _ in range(3)]
        bad, flaky, _ = sales
        rig.switch.faults.script(Operation.CONFIRM, FaultKind.DECLINE, provision_id=bad.id)
        rig.switch.faults.script(
            Operation.CONFIRM, FaultKind.SERVER_ERROR, times=3, provision_id=flaky.id
        )
        for tx in sales:
            await rig.driver.confirm(tx, cash(1000))
        await rig.drain()
        return sales

    bad, flaky, good = run(flow())
    assert [tx.state for tx in (bad, flaky, good)] == [State.DONE] * 3
    assert bad.reconciliation is not None
    assert flaky.reconciliation is None
    assert good.reconciliation is None
    assert [p.queued.request_id for p in rig.queue.parked()] == [bad.id]
    assert rig.switch.voucher_active(flaky.id)
    assert rig.switch.voucher_active(good.id)


def test_an_undecided_sale_is_reversed_cancelled_only_after_the_limit() -> None:
    rig = Rig(decision=DecisionPolicy(limit=20.0))

    async def flow() -> Transaction:
        tx = await rig.driver.sell(rig.request())
        rig.clock.advance(19.5)
        assert await rig.driver.expire_decisions() == []
        assert tx.state is State.PROVISIONED
        rig.clock.advance(0.5)
        assert await rig.driver.expire_decisions() == [tx]
        assert await rig.driver.expire_decisions() == []
        return tx

    tx = run(flow())
    assert tx.state is State.DECLINED
    assert tx.outcome is Outcome.DECLINED
    [reversal] = rig.sent(Operation.REVERSE)
    assert json.loads(reversal.body)["reversalReason"] == "CANCELLED"
    rig.switch.pump()
    assert not rig.switch.voucher_active(tx.id)


def test_a_cancelled_sale_is_reversed() -> None:
    rig = Rig()

    async def flow() -> Transaction:
        tx = await rig.driver.sell(rig.request())
        return await rig.driver.cancel(tx)

    tx = run(flow())
    assert tx.state is State.DECLINED
    assert rig.operations(tx) == [Operation.PROVISION, Operation.REVERSE]
    assert json.loads(rig.sent(Operation.REVERSE)[0].body)["reversalReason"] == "CANCELLED"


def test_a_lookup_is_refused_while_in_flight_and_answered_once_final() -> None:
    rig = Rig()

    async def flow() -> tuple[Transaction, int | None]:
        tx = await rig.driver.sell(rig.request())
        with pytest.raises(LookupRefused):
            await rig.driver.lookup(tx)
        await rig.driver.confirm(tx, cash(1000))
        reply = await rig.driver.lookup(tx)
        return tx, reply.status

    tx, status = run(flow())
    assert status == 200
    assert [e.request_id for e in rig.sent(Operation.LOOKUP)] == [tx.id]


def test_traces_arrive_in_order() -> None:
    rig = Rig(decision=DecisionPolicy(limit=30.0))
    rig.switch.faults.script(Operation.CONFIRM, FaultKind.LOST)

    async def flow() -> Transaction:
        tx = await rig.driver.sell(rig.request())
        await rig.driver.confirm(tx, cash(1000))
        await rig.drain()
        return tx

    tx = run(flow())
    assert tx.advice is not None
    advice_id, kind = tx.advice.id, AdviceKind.CONFIRMATION
    assert rig.traces[:4] == [
        StateChanged(tx.id, State.PROVISIONING, State.PROVISIONED),
        DecisionAwaited(tx.id, 30.0),
        StateChanged(tx.id, State.PROVISIONED, State.CONFIRMING),
        AdviceQueued(tx.id, advice_id, kind),
    ]
    replies: list[AdviceReply] = []
    for trace in rig.traces[4:6]:
        assert isinstance(trace, AdviceSettled)
        assert (trace.transaction_id, trace.advice_id, trace.kind) == (tx.id, advice_id, kind)
        replies.append(trace.reply)
    assert isinstance(replies[0], RepeatLater)
    assert isinstance(replies[1], Acknowledged)
    assert rig.traces[6:] == [
        StateChanged(tx.id, State.CONFIRMING, State.DONE),
        SaleEnded(tx.id, State.DONE, Outcome.APPROVED, 0, None),
    ]


def test_the_profile_may_be_chosen_per_request() -> None:
    def profile_of(request: ProvisionRequest) -> ProviderProfile:
        assert request.product is not None
        return PROFILES[request.product.product_id]

    rig = Rig(profile=profile_of)

    async def flow() -> tuple[Transaction, Transaction]:
        return (
            await rig.driver.sell(rig.request("SINGLE1")),
            await rig.driver.sell(rig.request("DUAL1")),
        )

    single, dual = run(flow())
    assert single.state is State.DONE
    assert dual.state is State.PROVISIONED
    assert rig.operations(single) == [Operation.PROVISION]


def test_tenders_given_up_front_confirm_without_waiting() -> None:
    rig = Rig()
    tx = run(rig.driver.sell(rig.request(), tenders=cash(1000)))
    assert tx.state is State.DONE
    assert rig.operations(tx) == [Operation.PROVISION, Operation.CONFIRM]
    assert not any(isinstance(t, DecisionAwaited) for t in rig.traces)


def test_the_retry_delay_is_awaited_on_the_clock_before_each_retry() -> None:
    rig = Rig(policy=RetryPolicy(retry_delay=3.0))
    rig.switch.faults.script(Operation.PROVISION, FaultKind.UNAVAILABLE)
    rig.switch.faults.script(Operation.RETRY, FaultKind.DELAY)
    tx = run(rig.driver.sell(rig.request()))
    assert rig.operations(tx) == [Operation.PROVISION, Operation.RETRY, Operation.RETRY]
    assert rig.sent_at == [0.0, 3.0, 6.0]
    assert {e.body for e in rig.exchanges} == {rig.exchanges[0].body}
    assert tx.state is State.PROVISIONED


def test_retries_spent_reverse_with_response_not_final() -> None:
    rig = Rig(policy=RetryPolicy(max_retries=1))
    rig.switch.faults.script(Operation.PROVISION, FaultKind.STATUS_UNKNOWN)
    rig.switch.faults.script(Operation.RETRY, FaultKind.UNAVAILABLE)
    tx = run(rig.driver.sell(rig.request()))
    assert rig.operations(tx) == [Operation.PROVISION, Operation.RETRY, Operation.REVERSE]
    assert json.loads(rig.sent(Operation.REVERSE)[0].body)["reversalReason"] == (
        "RESPONSE_NOT_FINAL"
    )
    assert tx.state is State.DECLINED
    rig.switch.pump()
    assert not rig.switch.voucher_active(tx.id)


# -- many sales at once ---------------------------------------------------------------------


def test_fifty_concurrent_sales_all_end_final_and_the_ledger_agrees() -> None:
    seed = 11
    host = random.Random(seed)
    products = sorted(PROFILES)

    def profile_of(request: ProvisionRequest) -> ProviderProfile:
        assert request.product is not None
        return PROFILES[request.product.product_id]

    rig = Rig(
        seed=seed,
        profile=profile_of,
        policy=RetryPolicy(retry_delay=1.0),
        draw=random.Random(seed).random,
    )
    rig.switch.faults.randomly(seed=seed, rate=0.3, provider_down_rate=0.2)
    plans = [(host.choice(products), host.random()) for _ in range(50)]

    async def sale(product_id: str, choice: float) -> Transaction:
        tx = await rig.driver.sell(rig.request(product_id))
        if tx.state is State.PROVISIONED:
            if choice < 0.7:
                await rig.driver.confirm(tx, cash(1000))
            else:
                await rig.driver.cancel(tx)
        return tx

    async def flow() -> list[Transaction]:
        sales = await asyncio.gather(*(sale(p, c) for p, c in plans))
        rig.switch.faults.heal()
        await rig.drain()
        return list(sales)

    sales = run(flow())
    assert len({tx.id for tx in sales}) == 50
    assert all(tx.terminal for tx in sales), [tx.state for tx in sales]
    assert rig.driver.in_flight() == []
    assert rig.switch.pending_forwards() == 0
    assert {tx.state for tx in sales} == {State.DONE, State.DECLINED}
    assert all(tx.reconciliation is None for tx in sales)
    for tx in sales:
        assert rig.switch.voucher_active(tx.id) == (tx.state is State.DONE), tx.id
    # The sales really did overlap: some sale's messages are split by another sale's.
    order = [e.request_id for e in rig.exchanges]
    runs = [tid for i, tid in enumerate(order) if i == 0 or order[i - 1] != tid]
    assert len(runs) > len(set(runs))


class _YieldingTransport(AsyncInMemoryTransport):
    """Gives the event loop a turn on every advice, as a real network client does."""

    async def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply:
        await asyncio.sleep(0)
        return await super().confirm(advice, timeout=timeout)

    async def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply:
        await asyncio.sleep(0)
        return await super().reverse(advice, timeout=timeout)


def test_a_host_deciding_while_expiry_runs_is_not_an_error() -> None:
    switch = SwitchSimulator(PROVIDERS)
    clock = SimulatedClock()
    ids = SeededIds(5)
    driver = AsyncDriver(
        _YieldingTransport(switch, username=DEMO_CLIENT_ID),
        AsyncInMemoryAdviceQueue(),
        clock=clock,
        settings=DriverSettings(decision=DecisionPolicy(limit=10.0), new_id=ids),
    )

    async def flow() -> tuple[Transaction, Transaction, list[Transaction]]:
        first = await driver.sell(demo_request(id=ids(), time=clock.now()))
        second = await driver.sell(demo_request(id=ids(), time=clock.now()))
        clock.advance(10.0)
        expired, _ = await asyncio.gather(
            driver.expire_decisions(), driver.confirm(second, cash(1000))
        )
        return first, second, expired

    first, second, expired = run(flow())
    assert expired == [first]
    assert first.state is State.DECLINED
    assert second.state is State.DONE
