"""The driver with a journal: what it records, how it fails closed, and how it recovers."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import Fault, FaultKind, Operation, Provider, SwitchSimulator
from voucher_adapters.stores.memory import InMemoryAdviceQueue, InMemoryJournal
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.in_process import InMemoryTransport
from voucher_core import DecisionPolicy, Driver, DriverSettings, RetryPolicy, State
from voucher_core.messages import BasicReversal, ReversalReason, TenderAdvice
from voucher_core.policy import Messaging, ProviderProfile
from voucher_core.ports import JournalEntry, QueuedAdvice
from voucher_core.reconciliation import Issue, report
from voucher_core.transaction import Transaction

DUAL = ProviderProfile(messaging=Messaging.DUAL)


class DiskFull(OSError):
    pass


class FlakyJournal(InMemoryJournal):
    """A journal whose writes start failing on demand, like a disk filling up."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.states: list[str] = []

    def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        if self.failing:
            raise DiskFull("database or disk is full")
        super().record(tx, decision_deadline=decision_deadline)
        self.states.append(tx.state.value)


class FlakyQueue(InMemoryAdviceQueue):
    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        if self.failing:
            raise DiskFull("database or disk is full")
        return super().enqueue(advice, due=due, take=take)


class Till:
    def __init__(self, *faults: tuple[Operation, FaultKind, int]) -> None:
        self.switch = SwitchSimulator([Provider("p", DUAL, frozenset({"AIRTIME10"}))], seed=2)
        for operation, kind, times in faults:
            self.switch.faults.script(operation, Fault(kind), times=times)
        self.exchanges: list[Exchange] = []
        self.clock = SimulatedClock()
        self.ids = SeededIds(2)
        self.journal = FlakyJournal()
        self.queue = FlakyQueue()
        self.transport = InMemoryTransport(
            self.switch, username=DEMO_CLIENT_ID, observer=self.exchanges.append
        )
        self.driver = self.restart()

    def restart(self) -> Driver:
        self.driver = Driver(
            self.transport,
            self.queue,
            clock=self.clock,
            journal=self.journal,
            settings=DriverSettings(
                profile=DUAL,
                new_id=self.ids,
                policy=RetryPolicy(),
                decision=DecisionPolicy(limit=100.0),
            ),
        )
        return self.driver

    def request(self) -> object:
        return demo_request(id=self.ids(), time=self.clock.now())

    def operations(self) -> list[str]:
        return [e.operation.value for e in self.exchanges]

    def stored(self, tx: Transaction) -> Transaction:
        entry = self.journal.get(tx.id)
        assert entry is not None
        return entry.transaction


def test_every_step_is_journaled_before_the_next_message_leaves() -> None:
    till = Till((Operation.PROVISION, FaultKind.LOST, 1))
    tx = till.driver.sell(till.request())  # type: ignore[arg-type]
    till.driver.confirm(tx, cash(1000))
    assert till.journal.states == [
        "PROVISIONING",  # before provisionVoucher
        "RETRYING",  # before the retry
        "PROVISIONED",  # voucher in hand, waiting for the host
        "CONFIRMING",  # before the confirmation is queued
        "DONE",
    ]
    assert till.stored(tx).state is State.DONE


def test_a_journal_that_cannot_write_stops_the_sale_before_anything_is_sent() -> None:
    till = Till()
    till.journal.failing = True
    with pytest.raises(DiskFull):
        till.driver.sell(till.request())  # type: ignore[arg-type]
    assert till.exchanges == []
    assert till.driver.in_flight() == []


def test_a_journal_failure_after_the_voucher_arrives_hands_out_nothing_and_recovery_reverses() -> (
    None
):
    till = Till()
    request = till.request()
    original_record = till.journal.record

    def fail_on_provisioned(tx: Transaction, *, decision_deadline: float | None = None) -> None:
        if tx.state is State.PROVISIONED:
            raise DiskFull("database or disk is full")
        original_record(tx, decision_deadline=decision_deadline)

    till.journal.record = fail_on_provisioned  # type: ignore[method-assign]
    with pytest.raises(DiskFull):
        till.driver.sell(request)  # type: ignore[arg-type]
    assert till.driver.in_flight() == []  # the host got an error, not a voucher
    till.journal.record = original_record  # type: ignore[method-assign]
    # The journal still says PROVISIONING: recovery retries and gets the voucher back, which
    # nobody can be given (the host was told the sale failed): it is reversed at once.
    driver = till.restart()
    [resumed] = driver.recover()
    assert resumed.state is State.DECLINED and resumed.unattended
    assert not resumed.host_timed_out
    assert isinstance(resumed.advice, BasicReversal)
    assert resumed.advice.reversal_reason is ReversalReason.CANCELLED
    assert till.operations() == ["provisionVoucher", "retryProvisionVoucher", "reverseVoucher"]
    assert till.stored(resumed).state is State.DECLINED
    till.switch.pump()
    assert not till.switch.voucher_active(resumed.id)


def test_an_advice_the_queue_could_not_take_stays_decided_and_is_queued_by_the_next_forward() -> (
    None
):
    till = Till()
    tx = till.driver.sell(till.request())  # type: ignore[arg-type]
    till.queue.failing = True
    till.driver.confirm(tx, cash(1000))
    assert tx.state is State.CONFIRMING and tx.outcome is not None
    assert till.stored(tx).state is State.CONFIRMING  # the decision is durable
    assert len(till.queue) == 0 and "confirmVoucher" not in till.operations()
    till.queue.failing = False
    till.driver.forward()
    assert till.operations() == ["provisionVoucher", "confirmVoucher"]
    assert till.stored(tx).state is State.DONE


@pytest.mark.parametrize(
    ("faults", "before_crash", "expected", "final"),
    [
        # Died after the provision was journaled but before its reply was read: the retry
        # gets the voucher, which nobody was told of, so it is reversed though paid up front.
        (
            (),
            "PROVISIONING",
            ["provisionVoucher", "retryProvisionVoucher", "reverseVoucher"],
            State.DECLINED,
        ),
        # Died with the confirmation journaled but never queued: the outcome was decided.
        ((), "CONFIRMING", ["provisionVoucher", "confirmVoucher"], State.DONE),
    ],
)
def test_recovery_resumes_from_the_last_journaled_state(
    faults: Sequence[tuple[Operation, FaultKind, int]],
    before_crash: str,
    expected: list[str],
    final: State,
) -> None:
    till = Till(*faults)
    request = till.request()
    tx, _ = Transaction.begin(request, profile=DUAL, tenders=cash(1000))  # type: ignore[arg-type]
    if before_crash == "PROVISIONING":
        till.journal.record(tx)
        till.transport.provision(request, timeout=60.0)  # type: ignore[arg-type]
    else:
        reply = till.transport.provision(request, timeout=60.0)  # type: ignore[arg-type]
        tx.provision_replied(reply, now=till.clock.now())
        till.journal.record(tx)
    [resumed] = till.restart().recover()
    assert resumed.state is final
    assert till.operations() == expected
    assert till.stored(resumed).state is final
    assert resumed.reconciliation is None


def test_a_provisioned_sale_waits_only_for_what_is_left_of_its_limit_after_a_restart() -> None:
    till = Till()
    tx = till.driver.sell(till.request())  # type: ignore[arg-type]
    till.clock.advance(60.0)
    driver = till.restart()
    driver.recover()
    till.clock.advance(39.0)
    assert driver.expire_decisions() == []
    till.clock.advance(1.0)
    [expired] = driver.expire_decisions()
    assert expired.id == tx.id and expired.host_timed_out
    assert isinstance(expired.advice, BasicReversal)
    assert expired.advice.reversal_reason is ReversalReason.CANCELLED


def test_the_reconciliation_report_explains_timeouts_and_rejections() -> None:
    till = Till((Operation.CONFIRM, FaultKind.DECLINE, 1))
    timed_out = till.driver.sell(till.request())  # type: ignore[arg-type]
    rejected = till.driver.sell(till.request())  # type: ignore[arg-type]
    till.driver.confirm(rejected, cash(1000))
    clean = till.driver.sell(till.request(), tenders=cash(1000))  # type: ignore[arg-type]
    till.clock.advance(100.0)
    till.driver.expire_decisions()
    entries: list[JournalEntry] = list(till.journal.entries())
    findings = {
        f.transaction_id: f for f in report(entries, [p.queued.advice for p in till.queue.parked()])
    }
    assert set(findings) == {timed_out.id, rejected.id}
    assert clean.state is State.DONE
    assert findings[timed_out.id].issue is Issue.HOST_TIMEOUT
    assert "till" in findings[timed_out.id].action
    rejection = findings[rejected.id]
    assert rejection.issue is Issue.REJECTED and rejection.state == "DONE"
    assert "parked in the advice queue" in rejection.happened
    assert f"voucher queue requeue {rejection.advice_id}" in rejection.action


def test_a_conflict_is_reported_with_what_to_ask_the_switch() -> None:
    till = Till()
    tx = till.driver.sell(till.request())  # type: ignore[arg-type]
    # Someone else confirmed this provision at the switch (another till, a person).
    stray = TenderAdvice(
        id=till.ids(),
        request_id=tx.id,
        time=till.clock.now(),
        third_party_identifiers=tx.third_party_identifiers,
        tenders=cash(1000),
    )
    till.transport.confirm(stray, timeout=60.0)
    till.driver.cancel(tx)
    assert tx.state is State.DECLINED and tx.reconciliation is not None
    [finding] = report(till.journal.entries())
    assert finding.issue is Issue.CONFLICT and finding.outcome == "declined"
    assert "VOUCHER_ALREADY_CONFIRMED" in finding.happened
    assert "reverse it" in finding.action
    assert finding.as_json()["issue"] == "conflict"


def test_recovery_logs_each_sale_it_resumes_with_the_sale_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    till = Till()
    tx = till.driver.sell(till.request())  # type: ignore[arg-type]
    caplog.set_level("INFO", logger="voucher_core.driver")
    till.restart().recover()
    [line] = [record for record in caplog.records if getattr(record, "sale_id", None) == tx.id]
    assert line.getMessage() == f"recovery resumes sale {tx.id} in PROVISIONED"
