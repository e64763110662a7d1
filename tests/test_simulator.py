"""The switch simulator, spoken to in raw bytes as the in-memory transport and HTTP server do."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from voucher_adapters.simulator import (
    MAX_BODY,
    RESET_BODY,
    UUID_MSG,
    Damage,
    Fault,
    FaultKind,
    FaultPlan,
    LedgerEntry,
    Operation,
    Provider,
    SimReply,
    SwitchEvent,
    SwitchSimulator,
)
from voucher_adapters.simulator.ledger import ProviderLedger
from voucher_core.errors import InvalidArgument
from voucher_core.messages import (
    Amounts,
    BasicReversal,
    ErrorDetail,
    ErrorType,
    Institution,
    LedgerAmount,
    Merchant,
    MerchantName,
    Originator,
    Product,
    ProvisionRequest,
    ProvisionResponse,
    ReversalReason,
    Tender,
    TenderAdvice,
    TenderType,
    ThirdPartyIdentifier,
    Voucher,
    VoucherLookupResponse,
)
from voucher_core.policy import DUAL, NO_ADVICES, NO_RETRIES, SINGLE
from voucher_core.replies import Approved, Declined, Unknown, classify_provision
from voucher_core.wire import from_json, to_json, to_wire

USER = "pos-user"
WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


# -- building messages ----------------------------------------------------------------------


def new_id() -> str:
    return str(uuid.uuid4())


def provision_request(**changes: Any) -> ProvisionRequest:
    """A valid request from ``USER``; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "id": new_id(),
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


def cash(amount: int = 1000) -> tuple[Tender, ...]:
    return (
        Tender(amount=LedgerAmount(amount=amount, currency="710"), tender_type=TenderType.CASH),
    )


def confirmation(request: ProvisionRequest) -> TenderAdvice:
    return TenderAdvice(
        id=new_id(),
        request_id=request.id,
        time=WHEN,
        third_party_identifiers=request.third_party_identifiers,
        tenders=cash(),
    )


def reversal(request: ProvisionRequest) -> BasicReversal:
    return BasicReversal(
        id=new_id(),
        request_id=request.id,
        time=WHEN,
        third_party_identifiers=request.third_party_identifiers,
        reversal_reason=ReversalReason.TIMEOUT,
    )


# -- talking to the switch -------------------------------------------------------------------


def provision(sim: SwitchSimulator, request: ProvisionRequest, user: str | None = USER) -> SimReply:
    return sim.handle(Operation.PROVISION, to_json(request), username=user)


def retry(sim: SwitchSimulator, request: ProvisionRequest, user: str | None = USER) -> SimReply:
    return sim.handle(Operation.RETRY, to_json(request), username=user, provision_id=request.id)


def confirm(sim: SwitchSimulator, advice: TenderAdvice, user: str | None = USER) -> SimReply:
    return sim.handle(Operation.CONFIRM, to_json(advice), username=user)


def reverse(sim: SwitchSimulator, advice: BasicReversal, user: str | None = USER) -> SimReply:
    return sim.handle(Operation.REVERSE, to_json(advice), username=user)


def lookup(sim: SwitchSimulator, provision_id: str, user: str | None = USER) -> SimReply:
    return sim.handle(Operation.LOOKUP, username=user, query={"provisionRequestId": provision_id})


def document(reply: SimReply) -> dict[str, Any]:
    assert reply.content_type == "application/json"
    data = json.loads(reply.body)
    assert isinstance(data, dict)
    return data


def error_of(reply: SimReply) -> ErrorDetail:
    """The reply's ErrorDetail, checked against the interface's promises on the way."""
    data = document(reply)
    assert len(data["errorMessage"]) <= 80
    return from_json(ErrorDetail, reply.body, strict=True)


def voucher_of(reply: SimReply) -> Voucher:
    return from_json(ProvisionResponse, reply.body).voucher


def format_messages(reply: SimReply) -> list[str]:
    error = error_of(reply)
    assert reply.status == 400
    assert error.error_type == ErrorType.FORMAT_ERROR
    assert error.detail_message is not None
    return [entry["msg"] for entry in error.detail_message["formatErrors"]]


def with_field(message: Any, path: list[str | int], value: Any) -> bytes:
    """The message's JSON with the field at ``path`` replaced, or removed when ``value`` is ...."""
    data = to_wire(message)
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(data).encode()


@pytest.fixture
def sim() -> SwitchSimulator:
    return SwitchSimulator()


# -- provision ---------------------------------------------------------------------------------


def test_a_new_provision_is_answered_201_with_the_request_echoed_and_a_voucher(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    reply = provision(sim, request)

    assert reply.status == 201
    data = document(reply)
    sent = to_wire(request)
    for key, value in sent.items():
        if key != "thirdPartyIdentifiers":
            assert data[key] == value
    response = from_json(ProvisionResponse, reply.body)
    assert response.id == request.id
    assert response.voucher.code
    assert response.voucher.expiry_date is not None
    assert response.voucher.expiry_date > request.time
    assert response.settlement_entity is not None
    assert response.receiver is not None
    # The request's identifiers come first and unchanged; the switch and provider add theirs.
    ids = response.third_party_identifiers
    assert ids[0] == request.third_party_identifiers[0]
    assert len(ids) == 3
    assert ids[1].institution_id != ids[2].institution_id


def test_a_request_naming_its_own_voucher_gets_that_voucher(sim: SwitchSimulator) -> None:
    request = provision_request(voucher=Voucher(code="MYCODE123", serial_number="S-1"))

    reply = provision(sim, request)

    assert reply.status == 201
    assert voucher_of(reply).code == "MYCODE123"
    assert voucher_of(reply).serial_number == "S-1"


def test_settlement_entity_and_receiver_sent_by_the_client_are_kept(sim: SwitchSimulator) -> None:
    bank = Institution(id="999", name="Settling Bank")
    request = provision_request(settlement_entity=bank, receiver=bank)

    response = from_json(ProvisionResponse, provision(sim, request).body)

    assert response.settlement_entity == bank
    assert response.receiver == bank


def test_a_product_is_routed_to_the_provider_serving_it_and_others_to_the_default() -> None:
    sim = SwitchSimulator(
        [
            Provider("airtime", SINGLE, frozenset({"AIRTIME10"})),
            Provider("gift", DUAL, frozenset({"GIFT50"})),
        ],
        default_provider="gift",
    )
    airtime = provision_request()
    gift = provision_request(product=Product(product_id="GIFT50"))
    unknown = provision_request(product=Product(product_id="OTHER"))
    no_product = provision_request(product=None)

    for request in (airtime, gift, unknown, no_product):
        assert provision(sim, request).status == 201

    assert sim.ledger() == [
        LedgerEntry(airtime.id, "airtime", "issued"),
        LedgerEntry(gift.id, "gift", "issued"),
        LedgerEntry(unknown.id, "gift", "issued"),
        LedgerEntry(no_product.id, "gift", "issued"),
    ]
    receiver = from_json(ProvisionResponse, provision(sim, provision_request()).body).receiver
    assert receiver == Institution(id="airtime", name="airtime")


def test_the_first_provider_is_the_default_unless_one_is_named() -> None:
    sim = SwitchSimulator([Provider("first", DUAL), Provider("second", SINGLE)])
    request = provision_request(product=None)

    provision(sim, request)

    assert sim.ledger()[0].provider == "first"


@pytest.mark.parametrize(
    ("providers", "default"),
    [
        ([], None),
        ([Provider("a", DUAL), Provider("a", SINGLE)], None),
        ([Provider("a", DUAL)], "b"),
    ],
)
def test_a_switch_with_no_providers_duplicates_or_an_unknown_default_is_refused(
    providers: list[Provider], default: str | None
) -> None:
    with pytest.raises(ValueError):
        SwitchSimulator(providers, default_provider=default)


def test_the_same_id_again_is_a_duplicate_carrying_the_original_voucher(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    original = voucher_of(provision(sim, request))

    again = provision(sim, request)

    assert again.status == 400
    error = error_of(again)
    assert error.error_type == ErrorType.DUPLICATE_RECORD
    assert error.id == request.id
    assert error.original_id is None
    assert error.detail_message is not None
    assert error.detail_message["voucher"]["code"] == original.code
    assert len(sim.ledger()) == 1


def test_a_duplicate_after_the_reversal_still_names_the_original_voucher(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    original = voucher_of(provision(sim, request))
    assert reverse(sim, reversal(request)).status == 202

    error = error_of(provision(sim, request))

    assert error.error_type == ErrorType.DUPLICATE_RECORD
    assert error.detail_message is not None
    assert error.detail_message["voucher"]["code"] == original.code


def test_a_provision_arriving_after_its_reversal_is_refused_as_already_reversed(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    early = reversal(request)

    assert reverse(sim, early).status == 404
    late = provision(sim, request)

    assert late.status == 400
    error = error_of(late)
    assert error.error_type == ErrorType.VOUCHER_ALREADY_REVERSED
    assert error.id == request.id
    assert error.original_id == early.id  # the reversal that came first
    assert sim.ledger() == []
    assert not sim.voucher_active(request.id)


# -- credentials ---------------------------------------------------------------------------------


def test_a_request_without_credentials_is_an_authentication_error(sim: SwitchSimulator) -> None:
    request = provision_request()

    reply = provision(sim, request, user=None)

    assert reply.status == 400
    error = error_of(reply)
    assert error.error_type == ErrorType.AUTHENTICATION_ERROR
    assert error.id == request.id
    assert sim.ledger() == []


def test_an_advice_without_credentials_is_an_authentication_error_about_the_advice(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    provision(sim, request)
    advice = confirmation(request)

    error = error_of(confirm(sim, advice, user=None))

    assert error.error_type == ErrorType.AUTHENTICATION_ERROR
    assert (error.id, error.original_id) == (advice.id, request.id)


@pytest.mark.parametrize("operation", [Operation.PROVISION, Operation.RETRY])
def test_a_username_other_than_the_client_id_is_an_authentication_error(
    sim: SwitchSimulator, operation: Operation
) -> None:
    request = provision_request()

    reply = sim.handle(
        operation, to_json(request), username="someone-else", provision_id=request.id
    )

    assert reply.status == 400
    error = error_of(reply)
    assert error.error_type == ErrorType.AUTHENTICATION_ERROR
    assert error.id == request.id
    assert sim.ledger() == []


def test_records_are_kept_per_username(sim: SwitchSimulator) -> None:
    mine = provision_request()
    theirs = provision_request(id=mine.id, client=Institution(id="other-pos", name="Other"))
    assert provision(sim, mine).status == 201

    # The same id is new to another user, who cannot see or settle the first user's voucher.
    assert provision(sim, theirs, user="other-pos").status == 201
    assert lookup(sim, mine.id, user="stranger").status == 404
    assert confirm(sim, confirmation(mine), user="stranger").status == 404
    assert confirm(sim, confirmation(mine)).status == 202


# -- validation ----------------------------------------------------------------------------------


def test_a_missing_field_is_named_by_its_wire_path(sim: SwitchSimulator) -> None:
    request = provision_request()
    body = with_field(request, ["originator", "merchant", "merchantId"], ...)

    reply = sim.handle(Operation.PROVISION, body, username=USER)

    assert format_messages(reply) == ["originator.merchant.merchantId may not be null"]
    error = error_of(reply)
    assert error.id == request.id
    assert error.original_id is None
    assert sim.ledger() == []


def test_an_advice_with_a_missing_tender_currency_is_refused_with_both_ids(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    provision(sim, request)
    advice = confirmation(request)
    body = with_field(advice, ["tenders", 0, "amount", "currency"], ...)

    reply = sim.handle(Operation.CONFIRM, body, username=USER)

    assert format_messages(reply) == ["tenders[0].amount.currency may not be null"]
    error = error_of(reply)
    assert (error.id, error.original_id) == (advice.id, request.id)
    assert sim.pending_forwards() == 0


def test_an_id_that_is_not_a_uuid_is_a_format_error(sim: SwitchSimulator) -> None:
    body = with_field(provision_request(), ["id"], "not-a-uuid")

    reply = sim.handle(Operation.PROVISION, body, username=USER)

    assert format_messages(reply) == [UUID_MSG]
    assert error_of(reply).id == "not-a-uuid"


def test_the_uuid_check_is_the_shape_only_not_the_version(sim: SwitchSimulator) -> None:
    request = provision_request(id="ABCDEF01-2345-1789-0abc-def012345678")

    assert provision(sim, request).status == 201


@pytest.mark.parametrize("operation", [Operation.CONFIRM, Operation.REVERSE])
def test_an_advice_whose_request_id_is_not_a_uuid_is_a_format_error(
    sim: SwitchSimulator, operation: Operation
) -> None:
    request = provision_request()
    advice = confirmation(request) if operation is Operation.CONFIRM else reversal(request)
    body = with_field(advice, ["requestId"], "12345")

    reply = sim.handle(operation, body, username=USER)

    assert UUID_MSG in format_messages(reply)
    assert (error_of(reply).id, error_of(reply).original_id) == (advice.id, "12345")


def test_an_unknown_field_is_a_format_error(sim: SwitchSimulator) -> None:
    body = with_field(provision_request(), ["loyaltyNumber"], "42")

    reply = sim.handle(Operation.PROVISION, body, username=USER)

    assert format_messages(reply) == ["loyaltyNumber unknown field"]


def test_every_problem_of_a_request_is_listed(sim: SwitchSimulator) -> None:
    data = to_wire(provision_request())
    data["id"] = "bad"
    data["surprise"] = True

    messages = format_messages(
        sim.handle(Operation.PROVISION, json.dumps(data).encode(), username=USER)
    )

    assert sorted(messages) == sorted([UUID_MSG, "surprise unknown field"])


def test_a_field_constraint_is_a_format_error(sim: SwitchSimulator) -> None:
    body = with_field(provision_request(), ["originator", "terminalId"], "SHORT")

    messages = format_messages(sim.handle(Operation.PROVISION, body, username=USER))

    assert len(messages) == 1
    assert messages[0].startswith("originator.terminalId ")


GARBAGE = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\xff", id="not-utf8"),
    pytest.param(b"[]", id="array"),
    pytest.param(b"null", id="null"),
    pytest.param(b"17", id="number"),
    pytest.param(b'"text"', id="string"),
    pytest.param(b"{", id="truncated"),
    pytest.param(b'{"id": NaN}', id="nan"),
    pytest.param(b"x" * 1_000_000, id="1MB-junk"),
    pytest.param(b"[" * 30_000 + b"]" * 30_000, id="deeply-nested"),
    pytest.param(b"{" + b'"a":1,' * 20_000 + b'"b":2}', id="giant-object"),
    pytest.param(b'{"id": 5, "time": [], "client": "x", "originator": null}', id="wrong-types"),
]


@pytest.mark.parametrize("body", GARBAGE)
@pytest.mark.parametrize(
    "operation", [Operation.PROVISION, Operation.RETRY, Operation.CONFIRM, Operation.REVERSE]
)
def test_a_garbage_body_is_a_format_error_never_an_exception(
    sim: SwitchSimulator, operation: Operation, body: bytes
) -> None:
    reply = sim.handle(operation, body, username=USER, provision_id=new_id())

    assert format_messages(reply)
    assert sim.ledger() == []
    assert sim.pending_forwards() == 0


@pytest.mark.parametrize("body", GARBAGE)
def test_a_garbage_reset_is_a_format_error(sim: SwitchSimulator, body: bytes) -> None:
    assert format_messages(sim.handle(Operation.RESET, body, username=USER))


def test_a_body_over_the_size_limit_is_refused_unread(sim: SwitchSimulator) -> None:
    data = to_wire(provision_request())
    data["rrn"] = "1" * MAX_BODY

    reply = sim.handle(Operation.PROVISION, json.dumps(data).encode(), username=USER)

    assert format_messages(reply) == [f"request body is larger than {MAX_BODY} bytes"]


def test_an_operation_the_switch_does_not_know_gets_a_500_not_an_exception(
    sim: SwitchSimulator,
) -> None:
    reply = sim.handle("redeemVoucher", b"{}", username=USER)  # type: ignore[arg-type]

    assert reply.status == 500
    assert isinstance(classify_provision(reply.status, reply.body, provision_request()), Unknown)


# -- retry ---------------------------------------------------------------------------------------


def test_a_retry_after_the_original_landed_returns_the_same_voucher(sim: SwitchSimulator) -> None:
    request = provision_request()
    first = provision(sim, request)

    again = retry(sim, request)

    assert again.status == 200
    assert document(again) == document(first)
    assert sim.ledger() == [LedgerEntry(request.id, "provider", "issued")]


def test_a_retry_when_the_original_never_landed_issues_a_new_voucher(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    sim.faults.script(Operation.PROVISION, FaultKind.DROPPED)
    assert provision(sim, request).lost
    assert sim.ledger() == []

    reply = retry(sim, request)

    assert reply.status == 200
    assert voucher_of(reply).code
    assert sim.ledger() == [LedgerEntry(request.id, "provider", "issued")]


@pytest.mark.parametrize("profile", [NO_RETRIES, NO_ADVICES])
def test_a_retry_to_a_provider_without_retries_is_hard_declined(profile: Any) -> None:
    sim = SwitchSimulator([Provider("netcare", profile)])
    request = provision_request()
    provision(sim, request)

    reply = retry(sim, request)

    assert reply.status == 400
    error = error_of(reply)
    assert error.error_type in {
        ErrorType.TRANSACTION_NOT_SUPPORTED,
        ErrorType.FUNCTION_NOT_SUPPORTED,
    }
    assert error.id == request.id
    assert isinstance(classify_provision(reply.status, reply.body, request), Declined)


def test_a_retry_whose_path_id_differs_from_the_body_id_is_a_format_error(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()

    reply = sim.handle(Operation.RETRY, to_json(request), username=USER, provision_id=new_id())

    assert len(format_messages(reply)) == 1
    assert sim.ledger() == []


@pytest.mark.parametrize("path_id", [None, "nope"])
def test_a_retry_without_a_uuid_in_the_path_is_a_format_error(
    sim: SwitchSimulator, path_id: str | None
) -> None:
    request = provision_request()

    reply = sim.handle(Operation.RETRY, to_json(request), username=USER, provision_id=path_id)

    assert format_messages(reply) == [UUID_MSG]


def test_a_retry_of_an_id_only_ever_reversed_is_refused_as_already_reversed(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    reverse(sim, reversal(request))

    error = error_of(retry(sim, request))

    assert error.error_type == ErrorType.VOUCHER_ALREADY_REVERSED
    assert sim.ledger() == []


def test_a_retry_of_a_reversed_voucher_does_not_hand_it_out_again(sim: SwitchSimulator) -> None:
    request = provision_request()
    provision(sim, request)
    reverse(sim, reversal(request))

    reply = retry(sim, request)

    assert reply.status == 400
    assert error_of(reply).error_type == ErrorType.VOUCHER_ALREADY_REVERSED


# -- confirmation --------------------------------------------------------------------------------


def test_a_confirmation_is_acknowledged_202_with_the_advice_echoed(sim: SwitchSimulator) -> None:
    request = provision_request()
    provision(sim, request)
    advice = confirmation(request)

    reply = confirm(sim, advice)

    assert reply.status == 202
    assert document(reply) == to_wire(advice)


def test_a_repeated_confirmation_is_acknowledged_again_and_forwarded_once(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    provision(sim, request)
    advice = confirmation(request)

    assert [confirm(sim, advice).status for _ in range(3)] == [202, 202, 202]
    assert sim.pending_forwards() == 1


def test_a_confirmation_of_an_unknown_provision_is_not_found_with_both_ids(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    advice = confirmation(request)

    reply = confirm(sim, advice)

    assert reply.status == 404
    error = error_of(reply)
    assert error.error_type == ErrorType.UNABLE_TO_LOCATE_RECORD
    assert (error.id, error.original_id) == (advice.id, request.id)


@pytest.mark.parametrize("landed", [True, False])
def test_a_confirmation_after_the_reversal_is_refused_as_already_reversed(
    sim: SwitchSimulator, landed: bool
) -> None:
    request = provision_request()
    if landed:
        provision(sim, request)
    reverse(sim, reversal(request))
    advice = confirmation(request)

    reply = confirm(sim, advice)

    assert reply.status == 400
    error = error_of(reply)
    assert error.error_type == ErrorType.VOUCHER_ALREADY_REVERSED
    assert (error.id, error.original_id) == (advice.id, request.id)


# -- reversal ------------------------------------------------------------------------------------


def test_a_reversal_is_acknowledged_202_and_repeats_too(sim: SwitchSimulator) -> None:
    request = provision_request()
    provision(sim, request)
    advice = reversal(request)

    replies = [reverse(sim, advice) for _ in range(2)]

    assert [reply.status for reply in replies] == [202, 202]
    assert document(replies[0]) == to_wire(advice)
    assert sim.pending_forwards() == 1


def test_a_reversal_of_an_unknown_provision_is_not_found_with_both_ids(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    advice = reversal(request)

    replies = [reverse(sim, advice) for _ in range(2)]

    assert [reply.status for reply in replies] == [404, 404]
    error = error_of(replies[0])
    assert error.error_type == ErrorType.UNABLE_TO_LOCATE_RECORD
    assert (error.id, error.original_id) == (advice.id, request.id)
    assert sim.pending_forwards() == 0


def test_a_reversal_after_the_confirmation_is_refused_as_already_confirmed(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    provision(sim, request)
    confirm(sim, confirmation(request))
    advice = reversal(request)

    reply = reverse(sim, advice)

    assert reply.status == 400
    error = error_of(reply)
    assert error.error_type == ErrorType.VOUCHER_ALREADY_CONFIRMED
    assert (error.id, error.original_id) == (advice.id, request.id)


# -- store-and-forward, the providers' ledger and what counts as money ---------------------------


def test_dual_messaging_the_voucher_counts_once_the_provider_hears_the_confirmation() -> None:
    events: list[SwitchEvent] = []
    sim = SwitchSimulator(listener=events.append)
    request = provision_request()
    provision(sim, request)
    assert not sim.voucher_active(request.id)

    confirm(sim, confirmation(request))
    # Acknowledged by the switch, not yet heard by the provider.
    assert not sim.voucher_active(request.id)
    assert sim.ledger() == [LedgerEntry(request.id, "provider", "issued")]

    assert sim.pump() == 1

    assert sim.pending_forwards() == 0
    assert sim.ledger() == [LedgerEntry(request.id, "provider", "confirmed")]
    assert sim.voucher_active(request.id)
    assert [(event.leg, event.operation, event.provision_id) for event in events] == [
        ("switch->provider", "confirmVoucher", request.id),
        ("provider->switch", "confirmVoucher", request.id),
    ]


def test_single_messaging_the_voucher_counts_at_once_until_reversed() -> None:
    sim = SwitchSimulator([Provider("airtime", SINGLE)])
    request = provision_request()
    provision(sim, request)
    assert sim.voucher_active(request.id)

    reverse(sim, reversal(request))
    assert sim.voucher_active(request.id)  # the provider has not heard yet
    sim.pump()

    assert sim.ledger() == [LedgerEntry(request.id, "airtime", "reversed")]
    assert not sim.voucher_active(request.id)


def test_a_dual_messaging_reversal_reaches_the_provider(sim: SwitchSimulator) -> None:
    request = provision_request()
    provision(sim, request)

    reverse(sim, reversal(request))
    assert sim.pump() == 1

    assert sim.ledger() == [LedgerEntry(request.id, "provider", "reversed")]
    assert not sim.voucher_active(request.id)


def test_a_provider_without_advices_leaves_them_to_the_switch() -> None:
    sim = SwitchSimulator([Provider("stellr", NO_ADVICES)])
    kept, cancelled = provision_request(), provision_request()
    provision(sim, kept)
    provision(sim, cancelled)

    assert confirm(sim, confirmation(kept)).status == 202
    assert reverse(sim, reversal(cancelled)).status == 202

    assert sim.pending_forwards() == 0
    assert sim.pump() == 0
    assert {entry.state for entry in sim.ledger()} == {"issued"}
    # The switch's own record judges: it consumed the advices.
    assert sim.voucher_active(kept.id)
    assert not sim.voucher_active(cancelled.id)


def test_forwarding_survives_failing_provider_legs_and_completes_once_healed() -> None:
    events: list[SwitchEvent] = []
    sim = SwitchSimulator(listener=events.append)
    requests = [provision_request() for _ in range(3)]
    for request in requests:
        provision(sim, request)
        confirm(sim, confirmation(request))
    sim.faults.randomly(seed=1, rate=0.0, provider_down_rate=1.0)

    assert sim.pump(max_rounds=5) == 0
    assert sim.pending_forwards() == 3
    assert not any(sim.voucher_active(request.id) for request in requests)
    assert len(events) == 3 * 5 * 2  # every forward tried in every round, each failing
    assert all(event.leg == "switch->provider" for event in events)

    sim.faults.heal()
    assert sim.pump() == 3

    assert sim.pending_forwards() == 0
    assert all(sim.voucher_active(request.id) for request in requests)


def test_forwarding_through_a_flaky_provider_delivers_everything_eventually() -> None:
    sim = SwitchSimulator()
    requests = [provision_request() for _ in range(10)]
    for request in requests:
        provision(sim, request)
        confirm(sim, confirmation(request))
    sim.faults.randomly(seed=7, rate=0.0, provider_down_rate=0.6)

    delivered = 0
    rounds = 0
    while sim.pending_forwards():
        delivered += sim.pump(max_rounds=1)
        rounds += 1

    assert delivered == 10
    assert rounds > 1
    assert all(entry.state == "confirmed" for entry in sim.ledger())


def test_a_provider_never_reverses_a_confirmed_voucher_nor_confirms_a_reversed_one() -> None:
    books = ProviderLedger()
    books.issue(USER, "kept", "provider")
    books.issue(USER, "undone", "provider")

    assert books.confirm(USER, "kept") == "confirmed"
    assert books.reverse(USER, "undone") == "reversed"
    assert books.reverse(USER, "kept").startswith("refused")
    assert books.confirm(USER, "undone").startswith("refused")
    assert books.confirm(USER, "kept") == "already confirmed"
    assert books.reverse(USER, "missing") == "provider has no such voucher"
    assert [entry.state for entry in books.entries()] == ["confirmed", "reversed"]


def test_pump_with_an_empty_queue_delivers_nothing(sim: SwitchSimulator) -> None:
    assert sim.pump() == 0


# -- lookup --------------------------------------------------------------------------------------


def test_a_lookup_finds_the_voucher_of_a_provision(sim: SwitchSimulator) -> None:
    request = provision_request()
    voucher = voucher_of(provision(sim, request))

    reply = lookup(sim, request.id)

    assert reply.status == 200
    found = from_json(VoucherLookupResponse, reply.body, strict=True)
    assert found.voucher == voucher
    assert found.product == request.product


def test_a_lookup_of_an_unknown_provision_is_not_found(sim: SwitchSimulator) -> None:
    provision_id = new_id()

    reply = lookup(sim, provision_id)

    assert reply.status == 404
    error = error_of(reply)
    assert error.error_type == ErrorType.UNABLE_TO_LOCATE_RECORD
    assert error.id == provision_id


def test_a_lookup_without_a_provision_id_a_code_or_a_serial_is_a_format_error(
    sim: SwitchSimulator,
) -> None:
    reply = sim.handle(Operation.LOOKUP, username=USER, query={})

    assert format_messages(reply) == [
        "provisionRequestId, voucherCode or voucherSerialNumber may not be null"
    ]


# -- reset ---------------------------------------------------------------------------------------


def test_reset_forgets_the_callers_records_only(sim: SwitchSimulator) -> None:
    mine = provision_request()
    theirs = provision_request(client=Institution(id="other-pos", name="Other"))
    provision(sim, mine)
    confirm(sim, confirmation(mine))
    provision(sim, theirs, user="other-pos")

    reply = sim.handle(Operation.RESET, json.dumps(RESET_BODY).encode(), username=USER)

    assert reply.status == 200
    assert lookup(sim, mine.id).status == 404
    assert sim.pending_forwards() == 0
    assert [entry.provision_id for entry in sim.ledger()] == [theirs.id]
    assert lookup(sim, theirs.id, user="other-pos").status == 200
    assert provision(sim, mine).status == 201  # the id is new again


@pytest.mark.parametrize(
    "body",
    [
        {"userDataWillBeLost": "TRUE"},
        {"userDataWillBeLost": "FALSE", "resetUserData": "TRUE"},
        {**RESET_BODY, "extra": "TRUE"},
    ],
)
def test_reset_without_both_confirmations_is_a_format_error(
    sim: SwitchSimulator, body: dict[str, str]
) -> None:
    request = provision_request()
    provision(sim, request)

    reply = sim.handle(Operation.RESET, json.dumps(body).encode(), username=USER)

    assert format_messages(reply)
    assert lookup(sim, request.id).status == 200


def test_reset_needs_credentials(sim: SwitchSimulator) -> None:
    reply = sim.handle(Operation.RESET, json.dumps(RESET_BODY).encode(), username=None)

    assert error_of(reply).error_type == ErrorType.AUTHENTICATION_ERROR


# -- faults --------------------------------------------------------------------------------------


def test_a_delayed_answer_comes_after_the_fault_delay_and_the_request_was_processed(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    sim.faults.script(Operation.PROVISION, FaultKind.DELAY)
    sim.faults.script(Operation.CONFIRM, Fault(FaultKind.DELAY, delay=5.0))

    slow = provision(sim, request)
    slower = confirm(sim, confirmation(request))

    assert (slow.status, slow.delay, slow.lost) == (201, 120.0, False)
    assert (slower.status, slower.delay) == (202, 5.0)
    assert sim.ledger() == [LedgerEntry(request.id, "provider", "issued")]
    assert sim.pending_forwards() == 1


def test_a_lost_answer_was_processed_first(sim: SwitchSimulator) -> None:
    request = provision_request()
    sim.faults.script(Operation.PROVISION, FaultKind.LOST)

    reply = provision(sim, request)

    assert reply.lost
    assert reply.status == 201  # what would have been sent
    assert retry(sim, request).status == 200
    assert len(sim.ledger()) == 1


def test_a_dropped_request_is_never_processed(sim: SwitchSimulator) -> None:
    request = provision_request()
    sim.faults.script(Operation.CONFIRM, FaultKind.DROPPED)
    provision(sim, request)

    reply = confirm(sim, confirmation(request))

    assert reply.lost
    assert reply.status == 0
    assert reply.body == b""
    assert sim.pending_forwards() == 0


def test_upstream_unavailable_is_a_503_before_processing(sim: SwitchSimulator) -> None:
    request = provision_request()
    sim.faults.script(Operation.PROVISION, FaultKind.UNAVAILABLE)

    reply = provision(sim, request)

    assert reply.status == 503
    error = error_of(reply)
    assert error.error_type == ErrorType.UPSTREAM_UNAVAILABLE
    assert error.id == request.id
    assert sim.ledger() == []
    assert provision(sim, request).status == 201  # nothing was recorded


def test_status_unknown_is_a_504_after_the_provider_issued(sim: SwitchSimulator) -> None:
    request = provision_request()
    sim.faults.script(Operation.PROVISION, FaultKind.STATUS_UNKNOWN)

    reply = provision(sim, request)

    assert reply.status == 504
    assert error_of(reply).error_type == ErrorType.VOUCHER_STATUS_UNKNOWN
    assert isinstance(classify_provision(reply.status, reply.body, request), Unknown)
    assert sim.ledger() == [LedgerEntry(request.id, "provider", "issued")]
    assert retry(sim, request).status == 200


def test_status_unknown_to_an_advice_still_records_it_and_names_both_ids(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    provision(sim, request)
    advice = confirmation(request)
    sim.faults.script(Operation.CONFIRM, FaultKind.STATUS_UNKNOWN)

    reply = confirm(sim, advice)

    assert reply.status == 504
    error = error_of(reply)
    assert (error.id, error.original_id) == (advice.id, request.id)
    assert sim.pending_forwards() == 1
    assert confirm(sim, advice).status == 202


def test_a_server_error_is_a_bare_500_before_processing(sim: SwitchSimulator) -> None:
    request = provision_request()
    sim.faults.script(Operation.PROVISION, FaultKind.SERVER_ERROR, times=2)

    replies = [provision(sim, request) for _ in range(2)]

    assert [reply.status for reply in replies] == [500, 500]
    assert {reply.body for reply in replies} == {b"", b"Internal Server Error"}
    assert all(reply.content_type.startswith("text/plain") for reply in replies)
    assert all(isinstance(classify_provision(500, r.body, request), Unknown) for r in replies)
    assert sim.ledger() == []


@pytest.mark.parametrize("operation", [Operation.PROVISION, Operation.CONFIRM])
def test_a_scripted_decline_is_a_400_do_not_honour_before_processing(
    sim: SwitchSimulator, operation: Operation
) -> None:
    request = provision_request()
    if operation is Operation.CONFIRM:
        provision(sim, request)
    advice = confirmation(request)
    sim.faults.script(operation, FaultKind.DECLINE)

    reply = provision(sim, request) if operation is Operation.PROVISION else confirm(sim, advice)

    assert reply.status == 400
    error = error_of(reply)
    assert error.error_type == ErrorType.DO_NOT_HONOUR
    if operation is Operation.CONFIRM:
        assert (error.id, error.original_id) == (advice.id, request.id)
        assert sim.pending_forwards() == 0
    else:
        assert (error.id, error.original_id) == (request.id, None)
        assert sim.ledger() == []


def test_scripted_faults_are_used_first_in_first_out(sim: SwitchSimulator) -> None:
    sim.faults.script(Operation.PROVISION, FaultKind.UNAVAILABLE, times=2)
    sim.faults.script(Operation.PROVISION, FaultKind.SERVER_ERROR)
    sim.faults.script(Operation.RETRY, FaultKind.STATUS_UNKNOWN)

    statuses = [provision(sim, provision_request()).status for _ in range(4)]

    assert statuses == [503, 503, 500, 201]
    assert sim.faults.scripted == 1  # the retry's fault is still waiting


def test_a_scripted_fault_waits_for_the_provision_or_product_it_names(
    sim: SwitchSimulator,
) -> None:
    target = provision_request()
    gift = provision_request(product=Product(product_id="GIFT50"))
    sim.faults.script(Operation.PROVISION, FaultKind.UNAVAILABLE, provision_id=target.id)
    sim.faults.script(Operation.PROVISION, FaultKind.DECLINE, product_id="GIFT50")
    sim.faults.script(Operation.REVERSE, FaultKind.SERVER_ERROR, provision_id=target.id)

    assert provision(sim, provision_request()).status == 201
    assert provision(sim, target).status == 503
    assert provision(sim, target).status == 201
    assert provision(sim, gift).status == 400
    assert reverse(sim, reversal(target)).status == 500  # matched by the advice's requestId
    assert sim.faults.scripted == 0


def test_a_scripted_fault_can_hit_a_lookup(sim: SwitchSimulator) -> None:
    request = provision_request()
    provision(sim, request)
    sim.faults.script(Operation.LOOKUP, FaultKind.LOST, provision_id=request.id)

    assert lookup(sim, request.id).lost
    assert lookup(sim, request.id).status == 200


def test_heal_removes_scripted_and_random_faults(sim: SwitchSimulator) -> None:
    sim.faults.script(Operation.PROVISION, FaultKind.UNAVAILABLE, times=5)
    sim.faults.randomly(seed=3, rate=1.0, provider_down_rate=1.0)

    sim.faults.heal()

    request = provision_request()
    assert provision(sim, request).status == 201
    assert confirm(sim, confirmation(request)).status == 202
    assert sim.pump() == 1
    assert sim.faults.scripted == 0


@pytest.mark.parametrize("damage", list(Damage))
def test_an_unproven_approval_was_issued_but_proves_nothing(
    sim: SwitchSimulator, damage: Damage
) -> None:
    request = provision_request(
        amounts=Amounts(request_amount=LedgerAmount(amount=1000, currency="710"))
    )
    sim.faults.script(Operation.PROVISION, Fault(FaultKind.UNPROVEN, damage=damage))

    reply = provision(sim, request)

    assert reply.status == 201 and reply.damaged
    assert isinstance(classify_provision(reply.status, reply.body, request), Unknown)
    assert sim.ledger() == [LedgerEntry(request.id, "provider", "issued")]
    answer = retry(sim, request)  # the retry answers what was issued, whole
    assert answer.status == 200
    assert isinstance(classify_provision(answer.status, answer.body, request), Approved)


def test_an_unproven_fault_spoils_a_retry_and_leaves_refusals_and_advices_alone(
    sim: SwitchSimulator,
) -> None:
    request = provision_request()
    provision(sim, request)
    sim.faults.script(Operation.RETRY, FaultKind.UNPROVEN, times=2)
    sim.faults.script(Operation.CONFIRM, FaultKind.UNPROVEN)

    spoiled = retry(sim, request)
    assert spoiled.status == 200
    assert isinstance(classify_provision(spoiled.status, spoiled.body, request), Unknown)
    assert confirm(sim, confirmation(request)).status == 202  # an advice passes unchanged
    sim.pump()
    again = retry(sim, request)  # the second scripted time: spoiled again
    assert again.status == 200
    assert isinstance(classify_provision(again.status, again.body, request), Unknown)
    assert sim.faults.scripted == 0
    whole = retry(sim, request)
    assert isinstance(classify_provision(whole.status, whole.body, request), Approved)
    assert sim.ledger() == [LedgerEntry(request.id, "provider", "confirmed")]


def test_a_duplicate_record_fault_names_the_voucher_it_issued(sim: SwitchSimulator) -> None:
    request = provision_request()
    sim.faults.script(Operation.PROVISION, FaultKind.DUPLICATE_RECORD)

    reply = provision(sim, request)

    assert reply.status == 400
    error = error_of(reply)
    assert error.error_type == ErrorType.DUPLICATE_RECORD
    assert isinstance(classify_provision(reply.status, reply.body, request), Unknown)
    assert sim.ledger() == [LedgerEntry(request.id, "provider", "issued")]
    issued = retry(sim, request)
    assert issued.status == 200
    assert json.loads(reply.body)["detailMessage"]["voucher"] == json.loads(issued.body)["voucher"]
    assert sim.issued_code(request.id) == json.loads(issued.body)["voucher"]["code"]
    assert sim.issued_code(new_id()) is None


def test_a_duplicate_record_fault_leaves_a_decline_alone(sim: SwitchSimulator) -> None:
    request = provision_request()
    sim.faults.script(Operation.PROVISION, FaultKind.DECLINE)
    sim.faults.script(Operation.RETRY, FaultKind.DUPLICATE_RECORD)

    assert provision(sim, request).status == 400
    assert sim.ledger() == []
    assert provision(sim, request).status == 201  # the decline recorded nothing


def test_a_fault_named_by_its_value_is_injected_and_a_misspelt_one_refused(
    sim: SwitchSimulator,
) -> None:
    sim.faults.script(Operation.PROVISION, "decline")
    assert provision(sim, provision_request()).status == 400
    with pytest.raises(InvalidArgument, match="unknown fault 'declined'"):
        sim.faults.script(Operation.PROVISION, "declined")
    with pytest.raises(InvalidArgument, match="unknown fault 'BOGUS'"):
        FaultPlan().randomly(seed=1, rate=0.5, kinds=["BOGUS"])  # type: ignore[list-item]
    assert sim.faults.scripted == 0


def test_random_faults_draw_every_damage_and_spoil_only_provisions() -> None:
    plan = FaultPlan()
    plan.randomly(seed=3, rate=1.0, kinds=[FaultKind.UNPROVEN, FaultKind.DUPLICATE_RECORD])
    drawn = [
        plan.next_fault(Operation.PROVISION, product_id=None, provision_id=None) for _ in range(400)
    ]
    assert {fault.kind for fault in drawn if fault is not None} == {
        FaultKind.UNPROVEN,
        FaultKind.DUPLICATE_RECORD,
    }
    assert {fault.damage for fault in drawn if fault and fault.kind is FaultKind.UNPROVEN} == set(
        Damage
    )
    for operation in (Operation.CONFIRM, Operation.REVERSE):
        assert plan.next_fault(operation, product_id=None, provision_id=None) is None


def test_random_faults_never_decline_an_advice(sim: SwitchSimulator) -> None:
    request = provision_request()
    provision(sim, request)
    sim.faults.randomly(seed=0, rate=1.0, kinds=[FaultKind.DECLINE])

    assert confirm(sim, confirmation(request)).status == 202
    assert provision(sim, provision_request()).status == 400


def test_random_faults_touch_only_the_operations_chosen(sim: SwitchSimulator) -> None:
    request = provision_request()
    sim.faults.randomly(
        seed=0, rate=1.0, kinds=[FaultKind.UNAVAILABLE], operations=[Operation.CONFIRM]
    )

    assert provision(sim, request).status == 201
    assert confirm(sim, confirmation(request)).status == 503


def run_with_random_faults(seed: int, fault_seed: int) -> list[tuple[int, bool, bytes]]:
    sim = SwitchSimulator(seed=seed)
    sim.faults.randomly(seed=fault_seed, rate=0.5)
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(40)]
    seen = []
    for provision_id in ids:
        reply = provision(sim, provision_request(id=provision_id))
        code = voucher_of(reply).code if reply.status == 201 else None
        seen.append((reply.status, reply.lost, str(code).encode()))
    return seen


def test_random_faults_replay_exactly_from_their_seed() -> None:
    first = run_with_random_faults(seed=11, fault_seed=5)

    assert run_with_random_faults(seed=11, fault_seed=5) == first
    assert run_with_random_faults(seed=11, fault_seed=6) != first
    statuses = {status for status, _, _ in first}
    assert 201 in statuses
    assert statuses - {201}  # some faults did strike at a rate of one half


def test_vouchers_come_from_the_seed_not_the_global_random() -> None:
    def codes(seed: int) -> list[str | None]:
        sim = SwitchSimulator(seed=seed)
        return [voucher_of(provision(sim, provision_request())).code for _ in range(5)]

    assert codes(1) == codes(1)
    assert codes(1) != codes(2)
    assert len(set(codes(1))) == 5


def test_fault_plans_refuse_nonsense() -> None:
    plan = FaultPlan()
    with pytest.raises(ValueError):
        plan.script(Operation.PROVISION, FaultKind.LOST, times=0)
    with pytest.raises(ValueError):
        plan.randomly(seed=0, rate=1.5)
    with pytest.raises(ValueError):
        plan.randomly(seed=0, rate=0.1, provider_down_rate=-0.1)
    with pytest.raises(ValueError):
        Fault(FaultKind.DELAY, delay=-1.0)


def test_a_fault_plan_can_be_shared_in_at_construction() -> None:
    plan = FaultPlan()
    plan.script(Operation.PROVISION, FaultKind.UNAVAILABLE)
    sim = SwitchSimulator(faults=plan)

    assert sim.faults is plan
    assert provision(sim, provision_request()).status == 503


def test_sim_reply_defaults_describe_a_plain_json_answer() -> None:
    reply = SimReply(200, b"{}")

    assert attrs.asdict(reply) == {
        "status": 200,
        "body": b"{}",
        "content_type": "application/json",
        "delay": 0.0,
        "lost": False,
        "damaged": False,
        "location": None,
    }
