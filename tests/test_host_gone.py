"""Sales that end without their host, and a transaction that never claims more than the
journal holds (SPEC section 6, invariant 8).

A sale's host is gone when recovery resumes it in flight (the process that sold it died) or
when ``sell()`` failed after the request left (the host told the customer it failed). A
voucher such a sale gets is reversed in dual messaging, even with tenders given up front, and
flagged for reconciliation with its reference (never its code) in single messaging.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import attrs
import pytest

from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import Operation, Provider, SwitchSimulator
from voucher_adapters.stores.memory import InMemoryAdviceQueue, InMemoryJournal
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.in_process import InMemoryTransport
from voucher_core import Driver, DriverSettings, InvalidEvent, Outcome, State, Transaction
from voucher_core.commands import QueueAdvice
from voucher_core.errors import SnapshotError
from voucher_core.messages import (
    BasicReversal,
    PinClear,
    ProvisionRequest,
    ProvisionResponse,
    ReversalReason,
    TenderAdvice,
    ThirdPartyIdentifier,
    Voucher,
)
from voucher_core.policy import DUAL, SINGLE, ProviderProfile
from voucher_core.reconciliation import report
from voucher_core.replies import Acknowledged, Approved, Unknown, UnknownReason
from voucher_core.snapshot import restore, snapshot, snapshot_json
from voucher_core.wire import from_json, to_json

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CODE = "9876543210123456"
PIN = "4321"


def begin(profile: ProviderProfile, **kwargs: object) -> Transaction:
    request = demo_request(id=SeededIds(5)(), time=NOW)
    tx, _ = Transaction.begin(request, profile=profile, **kwargs)  # type: ignore[arg-type]
    return tx


def approved(tx: Transaction) -> Approved:
    wire = to_json(tx.request)
    response = from_json(ProvisionResponse, wire[:-1] + b',"voucher":{"code":"1"}}')
    switch = ThirdPartyIdentifier(institution_id="ELECTRUM", transaction_identifier="S-77")
    response = attrs.evolve(
        response,
        third_party_identifiers=(*response.third_party_identifiers, switch),
        voucher=Voucher(code=CODE, serial_number="SN-0042", pin=PinClear(pin=PIN)),
    )
    return Approved(response, 201)


# -- the core -----------------------------------------------------------------------------------


def test_a_single_voucher_issued_after_the_host_left_is_done_and_flagged_with_its_reference() -> (
    None
):
    tx = begin(SINGLE)
    assert tx.host_gone(now=NOW) is None  # in flight: noted, nothing sent
    assert tx.state is State.PROVISIONING and tx.unattended
    assert tx.provision_replied(approved(tx), now=NOW) is None
    assert tx.state is State.DONE and tx.outcome is Outcome.APPROVED
    flag = tx.reconciliation
    assert flag is not None and flag.startswith("unattended: ")
    assert "serial number SN-0042" in flag and "ELECTRUM S-77" in flag
    assert CODE not in flag and PIN not in flag


def test_a_single_voucher_with_its_host_there_is_done_unflagged() -> None:
    tx = begin(SINGLE)
    tx.provision_replied(approved(tx), now=NOW)
    assert tx.state is State.DONE and tx.reconciliation is None and not tx.unattended


@pytest.mark.parametrize("up_front", [False, True])
def test_a_dual_voucher_issued_after_the_host_left_is_reversed_never_confirmed(
    up_front: bool,
) -> None:
    tx = begin(DUAL, tenders=cash(1000) if up_front else None)
    tx.host_gone(now=NOW)
    tx.provision_replied(approved(tx), now=NOW)
    assert tx.state is State.REVERSING and tx.outcome is Outcome.DECLINED
    assert isinstance(tx.advice, BasicReversal)
    assert tx.advice.reversal_reason is ReversalReason.CANCELLED
    assert not tx.host_timed_out and tx.reconciliation is None
    tx.advice_replied(Acknowledged(202))
    assert tx.state is State.DECLINED


def test_a_retry_after_the_host_left_keeps_the_mark() -> None:
    tx = begin(DUAL, tenders=cash(1000))
    tx.host_gone(now=NOW)
    tx.provision_replied(Unknown(UnknownReason.NO_RESPONSE, "no answer"), now=NOW)
    assert tx.state is State.RETRYING and tx.unattended
    tx.host_gone(now=NOW)  # said again: harmless
    command = tx.provision_replied(approved(tx), now=NOW)
    assert isinstance(command, QueueAdvice) and isinstance(command.advice, BasicReversal)


def test_a_sale_waiting_for_its_host_is_reversed_at_once_when_it_is_gone() -> None:
    tx = begin(DUAL)
    tx.provision_replied(approved(tx), now=NOW)
    command = tx.host_gone(now=NOW)
    assert isinstance(command, QueueAdvice) and isinstance(command.advice, BasicReversal)
    assert command.advice.reversal_reason is ReversalReason.CANCELLED
    assert tx.state is State.REVERSING


@pytest.mark.parametrize("state", [State.CONFIRMING, State.REVERSING, State.DONE, State.DECLINED])
def test_a_decided_sale_cannot_lose_its_host(state: State) -> None:
    tx = begin(DUAL)
    tx.state = state
    with pytest.raises(InvalidEvent, match="host_gone"):
        tx.host_gone(now=NOW)
    assert tx.state is state and not tx.unattended


def test_roll_back_returns_to_what_the_journal_last_took() -> None:
    tx = begin(DUAL)
    tx.roll_back()  # never journaled: nothing to return to, nothing changes
    assert tx.state is State.PROVISIONING and not tx.checkpointed
    tx.checkpoint()
    tx.provision_replied(approved(tx), now=NOW)
    tx.checkpoint()  # PROVISIONED, with the voucher
    response = tx.response
    tx.confirm(cash(1000), now=NOW)
    assert tx.state is State.CONFIRMING and tx.outcome is Outcome.APPROVED
    tx.roll_back()  # the journal did not take CONFIRMING
    assert tx.state is State.PROVISIONED and tx.outcome is None
    assert tx.advice is None and tx.tenders is None and tx.response is response
    # The host may decide again, and it is built afresh.
    tx.confirm(cash(500), now=NOW)
    assert isinstance(tx.advice, TenderAdvice) and tx.advice.tenders == cash(500)


def test_a_restored_snapshot_is_what_the_journal_holds() -> None:
    tx = begin(SINGLE)
    tx.host_gone(now=NOW)
    tx.provision_replied(approved(tx), now=NOW)
    restored = restore(snapshot(tx))
    assert restored.checkpointed
    restored.state = State.PROVISIONING
    restored.roll_back()
    assert restored.state is State.DONE and restored.reconciliation == tx.reconciliation


# -- the snapshot -------------------------------------------------------------------------------


def test_the_mark_is_journaled_and_needs_version_2() -> None:
    tx = begin(DUAL)
    assert snapshot(tx)["version"] == 1 and "unattended" not in snapshot(tx)
    before = snapshot_json(tx)  # memoises the head
    tx.host_gone(now=NOW)
    data = snapshot(tx)
    assert data["version"] == 2 and data["unattended"] is True
    assert json.loads(snapshot_json(tx)) == data and snapshot_json(tx) != before
    assert restore(data).unattended


def test_a_version_1_snapshot_still_restores_and_a_newer_one_is_refused() -> None:
    tx = begin(DUAL)
    data = snapshot(tx)
    data["version"] = 1
    old = restore(data)
    assert not old.unattended and old.state is State.PROVISIONING
    data["version"] = 3
    with pytest.raises(SnapshotError, match="unsupported snapshot version 3"):
        restore(data)


# -- the driver ---------------------------------------------------------------------------------


class NotedOnce(InMemoryJournal):
    """A journal that refuses exactly one write (the one after the reply), then works."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_at: int | None = None
        self.writes = 0

    def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        self.writes += 1
        if self.writes == self.refuse_at:
            raise OSError("database or disk is full")
        super().record(tx, decision_deadline=decision_deadline)


class Shop:
    def __init__(self, profile: ProviderProfile) -> None:
        self.switch = SwitchSimulator([Provider("p", profile, frozenset({"AIRTIME10"}))], seed=5)
        self.exchanges: list[Exchange] = []
        self.transport = InMemoryTransport(
            self.switch, username=DEMO_CLIENT_ID, observer=self.exchanges.append
        )
        self.clock = SimulatedClock()
        self.ids = SeededIds(5)
        self.queue = InMemoryAdviceQueue(lease=30.0)
        self.journal = NotedOnce()
        self.profile = profile
        self.driver = self.restart()

    def restart(self) -> Driver:
        self.driver = Driver(
            self.transport,
            self.queue,
            clock=self.clock,
            journal=self.journal,
            settings=DriverSettings(profile=self.profile, new_id=self.ids),
        )
        return self.driver

    def request(self) -> ProvisionRequest:
        return demo_request(id=self.ids(), time=self.clock.now())

    def stored(self, tx_id: str) -> Transaction:
        entry = self.journal.get(tx_id)
        assert entry is not None
        return entry.transaction

    def operations(self) -> list[Operation]:
        return [e.operation for e in self.exchanges]


def test_a_sell_that_failed_after_the_request_left_journals_that_its_host_is_gone() -> None:
    shop = Shop(SINGLE)
    shop.journal.refuse_at = 2  # PROVISIONING is taken, DONE is not; the note is
    request = shop.request()
    with pytest.raises(OSError, match="full"):
        shop.driver.sell(request)
    stored = shop.stored(request.id)
    assert stored.state is State.PROVISIONING and stored.unattended
    [tx] = shop.restart().recover()
    assert tx.state is State.DONE and tx.reconciliation is not None
    assert tx.reconciliation.startswith("unattended: ")
    assert [f.transaction_id for f in report(shop.journal.entries())] == [tx.id]
    assert shop.switch.voucher_active(tx.id)


def test_a_sell_whose_first_write_failed_sent_nothing_and_is_no_sale() -> None:
    shop = Shop(SINGLE)
    shop.journal.refuse_at = 1
    request = shop.request()
    with pytest.raises(OSError):
        shop.driver.sell(request)
    assert shop.exchanges == [] and shop.journal.get(request.id) is None


def test_a_single_sale_resumed_by_recovery_is_flagged_with_its_voucher_reference() -> None:
    """A crash after the provision left: nobody was told, so the voucher is not silent."""
    shop = Shop(SINGLE)
    request = shop.request()
    tx, _ = Transaction.begin(request, profile=SINGLE)
    shop.journal.record(tx)
    reply = shop.transport.provision(request, timeout=60.0)  # the switch issued it; we died
    assert isinstance(reply, Approved)
    [resumed] = shop.restart().recover()
    assert resumed.state is State.DONE and resumed.unattended
    assert resumed.reconciliation is not None
    assert f"serial number {reply.response.voucher.serial_number}" in resumed.reconciliation
    assert reply.response.voucher.code not in resumed.reconciliation
    assert shop.stored(tx.id).reconciliation == resumed.reconciliation
    assert shop.operations() == [Operation.PROVISION, Operation.RETRY]


def test_a_confirmation_whose_settlement_could_not_be_journaled_still_reports_the_outcome() -> None:
    """The journal took CONFIRMING and the switch acknowledged the confirmation, but DONE could
    not be written: confirm() returns the outcome the journal holds (approved), and the
    settlement is journaled when the advice goes out again after its lease."""
    shop = Shop(DUAL)
    tx = shop.driver.sell(shop.request())
    shop.journal.refuse_at = shop.journal.writes + 2  # CONFIRMING is taken, DONE is not
    assert shop.driver.confirm(tx, cash(1000)) is tx
    assert tx.state is State.CONFIRMING and tx.outcome is Outcome.APPROVED
    assert shop.stored(tx.id).state is State.CONFIRMING
    shop.clock.advance(31.0)  # the lease runs out
    assert shop.driver.drain(timeout=600)
    assert shop.stored(tx.id).state is State.DONE and shop.stored(tx.id).reconciliation is None
    assert shop.operations() == [Operation.PROVISION, Operation.CONFIRM, Operation.CONFIRM]
    shop.switch.pump()
    assert shop.switch.voucher_active(tx.id)


def test_a_failed_confirm_leaves_the_object_as_the_journal_holds_it() -> None:
    shop = Shop(DUAL)
    tx = shop.driver.sell(shop.request())
    shop.journal.refuse_at = shop.journal.writes + 1
    with pytest.raises(OSError):
        shop.driver.confirm(tx, cash(1000))
    assert tx.state is State.PROVISIONED and tx.outcome is None and tx.advice is None
    assert shop.stored(tx.id).state is State.PROVISIONED
    assert shop.operations() == [Operation.PROVISION]
