"""The in-memory transport: real messages to a real simulated switch, classified replies back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from voucher_adapters.simulator import (
    Fault,
    FaultKind,
    LedgerEntry,
    Operation,
    Provider,
    SwitchSimulator,
)
from voucher_adapters.transports.in_process import (
    AsyncInMemoryTransport,
    Exchange,
    InMemoryTransport,
)
from voucher_core.commands import QueueAdvice
from voucher_core.messages import (
    BasicReversal,
    ErrorType,
    Institution,
    LedgerAmount,
    Merchant,
    MerchantName,
    Originator,
    Product,
    ProvisionRequest,
    ReversalReason,
    Tender,
    TenderAdvice,
    TenderType,
    ThirdPartyIdentifier,
    VoucherLookupResponse,
)
from voucher_core.policy import DUAL, NO_RETRIES
from voucher_core.ports import AsyncTransport, LookupReply, Transport
from voucher_core.replies import (
    Acknowledged,
    Approved,
    Conflict,
    Declined,
    Rejected,
    RepeatLater,
    Unknown,
    UnknownReason,
)
from voucher_core.transaction import Transaction
from voucher_core.wire import from_json, to_json

USER = "pos-user"
WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
TIMEOUT = 60.0


def provision_request(**changes: Any) -> ProvisionRequest:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "time": WHEN,
        "originator": Originator(
            institution=Institution(id="1234", name="Corner Shop Group"),
            terminal_id="TERM0001",
            merchant=Merchant(
                merchant_type="5411",
                merchant_id="123456789012345",
                merchant_name=MerchantName(
                    name="Corner Shop", city="Cape Town", region="WC", country="ZA"
                ),
            ),
        ),
        "client": Institution(id=USER, name="POS vendor"),
        "third_party_identifiers": (
            ThirdPartyIdentifier(institution_id=USER, transaction_identifier="till-42"),
        ),
        "product": Product(product_id="AIRTIME10"),
    }
    fields.update(changes)
    return ProvisionRequest(**fields)


def cash() -> tuple[Tender, ...]:
    return (Tender(amount=LedgerAmount(amount=1000, currency="710"), tender_type=TenderType.CASH),)


def confirmation(request: ProvisionRequest) -> TenderAdvice:
    return TenderAdvice(
        id=str(uuid.uuid4()),
        request_id=request.id,
        time=WHEN,
        third_party_identifiers=request.third_party_identifiers,
        tenders=cash(),
    )


def reversal(request: ProvisionRequest) -> BasicReversal:
    return BasicReversal(
        id=str(uuid.uuid4()),
        request_id=request.id,
        time=WHEN,
        third_party_identifiers=request.third_party_identifiers,
        reversal_reason=ReversalReason.TIMEOUT,
    )


class Recorder:
    """An observer that keeps every exchange, in order."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def __call__(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)


@pytest.fixture
def switch() -> SwitchSimulator:
    return SwitchSimulator()


@pytest.fixture
def seen() -> Recorder:
    return Recorder()


@pytest.fixture
def transport(switch: SwitchSimulator, seen: Recorder) -> InMemoryTransport:
    return InMemoryTransport(switch, username=USER, observer=seen)


# -- provision and retry -----------------------------------------------------------------------


def test_a_provision_is_approved_and_the_observer_sees_the_exchange(
    transport: InMemoryTransport, seen: Recorder
) -> None:
    request = provision_request()

    reply = transport.provision(request, timeout=TIMEOUT)

    assert isinstance(reply, Approved)
    assert reply.status == 201
    assert reply.response.id == request.id
    assert reply.response.voucher.code
    assert seen.exchanges == [
        Exchange(Operation.PROVISION, request.id, request.id, to_json(request), 201, reply)
    ]


def test_a_retry_sends_the_same_body_to_the_retry_operation_and_gets_the_same_voucher(
    transport: InMemoryTransport, seen: Recorder
) -> None:
    request = provision_request()
    first = transport.provision(request, timeout=TIMEOUT)

    again = transport.retry(request, timeout=TIMEOUT)

    assert isinstance(first, Approved)
    assert isinstance(again, Approved)
    assert again.status == 200
    assert again.response.voucher == first.response.voucher
    assert [exchange.operation for exchange in seen.exchanges] == [
        Operation.PROVISION,
        Operation.RETRY,
    ]
    assert seen.exchanges[0].body == seen.exchanges[1].body


def test_a_lost_answer_is_no_response_though_the_switch_issued_the_voucher(
    switch: SwitchSimulator, transport: InMemoryTransport, seen: Recorder
) -> None:
    request = provision_request()
    switch.faults.script(Operation.PROVISION, FaultKind.LOST)

    reply = transport.provision(request, timeout=TIMEOUT)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert reply.status is None
    assert seen.exchanges[0].status is None
    assert seen.exchanges[0].reply == reply
    assert switch.ledger() == [LedgerEntry(request.id, "provider", "issued")]


def test_a_dropped_connection_is_no_response_and_nothing_was_issued(
    switch: SwitchSimulator, transport: InMemoryTransport
) -> None:
    request = provision_request()
    switch.faults.script(Operation.PROVISION, FaultKind.DROPPED)

    reply = transport.provision(request, timeout=TIMEOUT)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert switch.ledger() == []
    assert isinstance(transport.retry(request, timeout=TIMEOUT), Approved)


def test_an_answer_slower_than_the_timeout_is_no_response(
    switch: SwitchSimulator, transport: InMemoryTransport, seen: Recorder
) -> None:
    request = provision_request()
    switch.faults.script(Operation.PROVISION, Fault(FaultKind.DELAY, delay=TIMEOUT))

    reply = transport.provision(request, timeout=TIMEOUT)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert "60" in reply.detail
    assert seen.exchanges[0].status is None
    assert len(switch.ledger()) == 1


def test_an_answer_within_the_timeout_counts_even_if_slow(
    switch: SwitchSimulator, transport: InMemoryTransport
) -> None:
    switch.faults.script(Operation.PROVISION, Fault(FaultKind.DELAY, delay=59.0))

    assert isinstance(transport.provision(provision_request(), timeout=TIMEOUT), Approved)


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        (FaultKind.UNAVAILABLE, 503, ErrorType.UPSTREAM_UNAVAILABLE),
        (FaultKind.STATUS_UNKNOWN, 504, ErrorType.VOUCHER_STATUS_UNKNOWN),
        (FaultKind.SERVER_ERROR, 500, None),
    ],
)
def test_upstream_trouble_is_an_unknown_outcome_not_final(
    switch: SwitchSimulator,
    transport: InMemoryTransport,
    kind: FaultKind,
    status: int,
    error_type: ErrorType | None,
) -> None:
    switch.faults.script(Operation.PROVISION, kind)

    reply = transport.provision(provision_request(), timeout=TIMEOUT)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NOT_FINAL
    assert reply.status == status
    assert (reply.error.error_type if reply.error else None) == error_type


def test_a_hard_decline_is_declined_with_its_error_detail(
    switch: SwitchSimulator, transport: InMemoryTransport
) -> None:
    request = provision_request()
    switch.faults.script(Operation.PROVISION, FaultKind.DECLINE)

    reply = transport.provision(request, timeout=TIMEOUT)

    assert isinstance(reply, Declined)
    assert reply.status == 400
    assert reply.error is not None
    assert reply.error.error_type == ErrorType.DO_NOT_HONOUR
    assert reply.error.id == request.id


def test_a_retry_to_a_provider_without_retries_is_declined() -> None:
    transport = InMemoryTransport(SwitchSimulator([Provider("netcare", NO_RETRIES)]), username=USER)

    reply = transport.retry(provision_request(), timeout=TIMEOUT)

    assert isinstance(reply, Declined)
    assert reply.error is not None
    assert reply.error.error_type == ErrorType.TRANSACTION_NOT_SUPPORTED


def test_credentials_that_do_not_match_the_client_are_declined(switch: SwitchSimulator) -> None:
    transport = InMemoryTransport(switch, username="intruder")

    reply = transport.provision(provision_request(), timeout=TIMEOUT)

    assert isinstance(reply, Declined)
    assert reply.error is not None
    assert reply.error.error_type == ErrorType.AUTHENTICATION_ERROR


# -- advices -----------------------------------------------------------------------------------


def test_a_confirmation_is_acknowledged_and_the_observer_sees_both_ids(
    switch: SwitchSimulator, transport: InMemoryTransport, seen: Recorder
) -> None:
    request = provision_request()
    transport.provision(request, timeout=TIMEOUT)
    advice = confirmation(request)

    reply = transport.confirm(advice, timeout=TIMEOUT)

    assert reply == Acknowledged(202)
    assert seen.exchanges[-1] == Exchange(
        Operation.CONFIRM, advice.id, request.id, to_json(advice), 202, reply
    )
    assert switch.pending_forwards() == 1


def test_a_reversal_of_something_never_provisioned_is_acknowledged(
    transport: InMemoryTransport,
) -> None:
    reply = transport.reverse(reversal(provision_request()), timeout=TIMEOUT)

    assert isinstance(reply, Acknowledged)
    assert reply.status == 404


def test_opposite_advices_are_conflicts(transport: InMemoryTransport) -> None:
    confirmed, reversed_ = provision_request(), provision_request()
    for request in (confirmed, reversed_):
        transport.provision(request, timeout=TIMEOUT)
    transport.confirm(confirmation(confirmed), timeout=TIMEOUT)
    transport.reverse(reversal(reversed_), timeout=TIMEOUT)

    late_reversal = transport.reverse(reversal(confirmed), timeout=TIMEOUT)
    late_confirmation = transport.confirm(confirmation(reversed_), timeout=TIMEOUT)

    assert isinstance(late_reversal, Conflict)
    assert late_reversal.error is not None
    assert late_reversal.error.error_type == ErrorType.VOUCHER_ALREADY_CONFIRMED
    assert isinstance(late_confirmation, Conflict)
    assert late_confirmation.error is not None
    assert late_confirmation.error.error_type == ErrorType.VOUCHER_ALREADY_REVERSED


def test_a_confirmation_of_an_unknown_provision_is_a_conflict(
    transport: InMemoryTransport,
) -> None:
    reply = transport.confirm(confirmation(provision_request()), timeout=TIMEOUT)

    assert isinstance(reply, Conflict)
    assert reply.status == 404


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault(FaultKind.LOST), None),
        (Fault(FaultKind.DROPPED), None),
        (Fault(FaultKind.DELAY), None),
        (Fault(FaultKind.SERVER_ERROR), 500),
        (Fault(FaultKind.UNAVAILABLE), 503),
        (Fault(FaultKind.STATUS_UNKNOWN), 504),
    ],
)
def test_an_advice_that_gets_no_final_answer_is_repeated_later(
    switch: SwitchSimulator,
    transport: InMemoryTransport,
    seen: Recorder,
    fault: Fault,
    status: int | None,
) -> None:
    request = provision_request()
    transport.provision(request, timeout=TIMEOUT)
    advice = reversal(request)
    switch.faults.script(Operation.REVERSE, fault)

    reply = transport.reverse(advice, timeout=TIMEOUT)

    assert isinstance(reply, RepeatLater)
    assert reply.status == status
    assert seen.exchanges[-1].status == status
    assert transport.reverse(advice, timeout=TIMEOUT) == Acknowledged(202)


def test_a_scripted_decline_of_an_advice_is_a_rejection(
    switch: SwitchSimulator, transport: InMemoryTransport
) -> None:
    request = provision_request()
    transport.provision(request, timeout=TIMEOUT)
    switch.faults.script(Operation.CONFIRM, FaultKind.DECLINE)

    reply = transport.confirm(confirmation(request), timeout=TIMEOUT)

    assert isinstance(reply, Rejected)
    assert reply.error is not None
    assert reply.error.original_id == request.id


# -- lookup ------------------------------------------------------------------------------------


def test_a_lookup_returns_the_raw_answer(transport: InMemoryTransport, seen: Recorder) -> None:
    request = provision_request()
    approved = transport.provision(request, timeout=TIMEOUT)

    reply = transport.lookup(request.id, timeout=TIMEOUT)

    assert isinstance(approved, Approved)
    assert reply.status == 200
    assert from_json(VoucherLookupResponse, reply.content).voucher == approved.response.voucher
    assert seen.exchanges[-1] == Exchange(Operation.LOOKUP, request.id, request.id, b"", 200, reply)


def test_a_lookup_of_an_unknown_provision_is_404(transport: InMemoryTransport) -> None:
    reply = transport.lookup(str(uuid.uuid4()), timeout=TIMEOUT)

    assert reply.status == 404


def test_a_lost_lookup_has_no_status(
    switch: SwitchSimulator, transport: InMemoryTransport, seen: Recorder
) -> None:
    switch.faults.script(Operation.LOOKUP, FaultKind.LOST)

    reply = transport.lookup(str(uuid.uuid4()), timeout=TIMEOUT)

    assert reply.status is None
    assert reply.content == b""
    assert reply.detail
    assert seen.exchanges[-1].status is None


# -- the async twin ----------------------------------------------------------------------------


def test_the_async_transport_gives_the_same_answers(switch: SwitchSimulator) -> None:
    seen = Recorder()
    transport = AsyncInMemoryTransport(switch, username=USER, observer=seen)
    request = provision_request()
    switch.faults.script(Operation.PROVISION, FaultKind.LOST)

    async def sale() -> list[object]:
        return [
            await transport.provision(request, timeout=TIMEOUT),
            await transport.retry(request, timeout=TIMEOUT),
            await transport.confirm(confirmation(request), timeout=TIMEOUT),
            await transport.reverse(reversal(request), timeout=TIMEOUT),
            await transport.lookup(request.id, timeout=TIMEOUT),
        ]

    lost, retried, confirmed, reversed_, looked_up = asyncio.run(sale())

    assert isinstance(lost, Unknown)
    assert isinstance(retried, Approved)
    assert confirmed == Acknowledged(202)
    assert isinstance(reversed_, Conflict)
    assert isinstance(looked_up, LookupReply)
    assert looked_up.status == 200
    assert [exchange.operation for exchange in seen.exchanges] == [
        Operation.PROVISION,
        Operation.RETRY,
        Operation.CONFIRM,
        Operation.REVERSE,
        Operation.LOOKUP,
    ]


def test_both_transports_fit_their_ports(switch: SwitchSimulator) -> None:
    sync: Transport = InMemoryTransport(switch, username=USER)
    asynchronous: AsyncTransport = AsyncInMemoryTransport(switch, username=USER)

    assert callable(sync.provision)
    assert callable(asynchronous.provision)


# -- a whole sale ------------------------------------------------------------------------------


def test_a_sale_whose_first_answer_is_lost_ends_with_one_confirmed_voucher(
    switch: SwitchSimulator, transport: InMemoryTransport
) -> None:
    """Timeout at the originating system, then a successful retry, then the confirmation."""
    request = provision_request()
    switch.faults.script(Operation.PROVISION, FaultKind.DELAY)
    tx, _ = Transaction.begin(request, profile=DUAL)

    tx.provision_replied(transport.provision(request, timeout=TIMEOUT), now=WHEN)
    tx.provision_replied(transport.retry(request, timeout=TIMEOUT), now=WHEN)
    command = tx.confirm(cash(), now=WHEN)
    assert isinstance(command, QueueAdvice)
    advice = command.advice
    assert isinstance(advice, TenderAdvice)
    tx.advice_replied(transport.confirm(advice, timeout=TIMEOUT))
    switch.pump()

    assert tx.state == "DONE"
    assert switch.ledger() == [LedgerEntry(request.id, "provider", "confirmed")]
    assert switch.voucher_active(request.id)
