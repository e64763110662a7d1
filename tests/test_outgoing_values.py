"""What a till sends holds only values Electrum accepts; what it receives may hold anything.

A message the switch would refuse is refused when it is built, with the field's path from the
message's root (``tenders[0].cardNumber``), as a ``VoucherError``. Replies, and messages read
back from a journal or a queue, are read as they came.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from strategies import CASH, CONFIRMATION, INSTITUTION, RAND_10, REQUEST, RESPONSE, REVERSAL

from voucher_core import VoucherError
from voucher_core.errors import InvalidFieldTypeError, InvalidFieldValueError
from voucher_core.messages import (
    BasicReversal,
    Customer,
    HashedPinParameters,
    Institution,
    PaymentMethod,
    PinClear,
    PinHashed,
    Product,
    ProvisionRequest,
    ProvisionResponse,
    SlipData,
    Tender,
    TenderAdvice,
    ThirdPartyIdentifier,
    UnknownPin,
    Voucher,
)
from voucher_core.messages.outgoing import tolerated
from voucher_core.wire import WireFormatError, from_json, from_wire, to_json, to_wire


def tender(**changes: Any) -> Tender:
    return attrs.evolve(CASH, **changes)


def refused(build: Any) -> InvalidFieldValueError | InvalidFieldTypeError:
    with pytest.raises((InvalidFieldValueError, InvalidFieldTypeError)) as caught:
        build()
    assert isinstance(caught.value, VoucherError)
    return caught.value


@pytest.mark.parametrize("value", ["cash", "CASSH", "BITCOIN", ""])
def test_a_tender_type_outside_the_swagger_is_refused_in_a_confirmation(value: str) -> None:
    error = refused(lambda: attrs.evolve(CONFIRMATION, tenders=(CASH, tender(tender_type=value))))
    assert error.field == "tenders[1].tenderType"
    assert "CASH" in error.reason and "LOYALTY_CARD" in error.reason


def test_a_tran_type_outside_the_swagger_is_refused() -> None:
    error = refused(lambda: attrs.evolve(REQUEST, tran_type="FOO"))
    assert (error.field, type(error)) == ("tranType", InvalidFieldValueError)


def test_a_reversal_reason_outside_the_swagger_is_refused() -> None:
    error = refused(lambda: attrs.evolve(REVERSAL, reversal_reason="OTHER"))
    assert error.field == "reversalReason"


def test_every_enum_of_a_request_is_checked_down_to_the_ledger_indicator() -> None:
    amount = attrs.evolve(RAND_10, ledger_indicator="SIDEWAYS")
    error = refused(lambda: attrs.evolve(REQUEST, tenders=(tender(amount=amount),)))
    assert error.field == "tenders[0].amount.ledgerIndicator"
    method = PaymentMethod(type="IOU", amount=RAND_10)
    error = refused(lambda: attrs.evolve(REQUEST, payment_methods=(method,)))
    assert error.field == "paymentMethods[0].type"


@pytest.mark.parametrize("number", ["abc", "12345", "123456" + "7" * 14, "1234 5678"])
def test_a_card_number_breaking_the_pattern_is_refused_and_never_quoted(number: str) -> None:
    error = refused(lambda: attrs.evolve(CONFIRMATION, tenders=(tender(card_number=number),)))
    assert error.field == "tenders[0].cardNumber"
    assert number not in str(error)


def test_a_masked_card_number_is_sent() -> None:
    advice = attrs.evolve(CONFIRMATION, tenders=(tender(card_number="411111******1111"),))
    assert to_wire(advice)["tenders"][0]["cardNumber"] == "411111******1111"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"barcode": "12345678901234"}, "product.barcode"),
        ({"barcode": "ABC-1"}, "product.barcode"),
        ({"name": ""}, "product.name"),
        ({"name": "n" * 41}, "product.name"),
    ],
)
def test_product_barcode_and_name_keep_the_swagger_pattern_and_lengths(
    changes: dict[str, str], field: str
) -> None:
    product = Product(product_id="AIRTIME10", **changes)
    assert refused(lambda: attrs.evolve(REQUEST, product=product)).field == field


def test_the_whole_pattern_must_match_not_a_part_of_it() -> None:
    slip = SlipData(issuer_reference="ABC123lower")
    assert (
        refused(lambda: attrs.evolve(REQUEST, slip_data=slip)).field == "slipData.issuerReference"
    )
    accepted = attrs.evolve(REQUEST, slip_data=SlipData(issuer_reference="ABC123"))
    assert to_wire(accepted)["slipData"] == {"issuerReference": "ABC123"}


@pytest.mark.parametrize(
    ("pin", "field"),
    [
        (PinClear(pin="1" * 21), "voucher.pin.pin"),
        (PinHashed(hash="abcdef"), "voucher.pin.hash"),
        (
            PinHashed(hash="ABC", hashed_pin_parameters=HashedPinParameters(name="n" * 21)),
            "voucher.pin.hashedPinParameters.name",
        ),
        (UnknownPin(type="RETINA_SCAN", fields={}), "voucher.pin.type"),
    ],
)
def test_a_pin_breaking_the_swagger_is_refused_and_never_quoted(pin: Any, field: str) -> None:
    error = refused(lambda: attrs.evolve(REQUEST, voucher=Voucher(pin=pin)))
    assert error.field == field
    assert "111111111111" not in str(error) and "abcdef" not in str(error)


def test_customer_names_and_address_keep_their_lengths() -> None:
    long_name = Customer(first_name="n" * 41)
    assert refused(lambda: attrs.evolve(REQUEST, customer=long_name)).field == "customer.firstName"
    long_address = Customer(address="a" * 81)
    error = refused(lambda: attrs.evolve(REQUEST, recipient=long_address))
    assert error.field == "recipient.address"


@pytest.mark.parametrize("value", [None, 1234])
def test_a_required_string_must_be_a_string(value: object) -> None:
    client = Institution(id=value, name="Corner Shop")  # type: ignore[arg-type]
    error = refused(lambda: attrs.evolve(REQUEST, client=client))
    assert (error.field, type(error)) == ("client.id", InvalidFieldTypeError)
    identifier = ThirdPartyIdentifier(institution_id="1234", transaction_identifier=value)  # type: ignore[arg-type]
    error = refused(lambda: attrs.evolve(REVERSAL, third_party_identifiers=(identifier,)))
    assert error.field == "thirdPartyIdentifiers[0].transactionIdentifier"


def test_a_part_of_the_wrong_kind_is_refused() -> None:
    error = refused(lambda: attrs.evolve(REQUEST, originator=INSTITUTION))
    assert (error.field, type(error)) == ("originator", InvalidFieldTypeError)


def test_the_fixed_examples_and_the_seed_shapes_are_accepted() -> None:
    for message in (REQUEST, CONFIRMATION, REVERSAL):
        assert type(message)(**attrs.asdict(message, recurse=False)) == message


# --- replies and stored messages stay readable ---------------------------------------------


def test_a_reply_with_values_outside_the_swagger_is_read() -> None:
    wire = to_wire(attrs.evolve(RESPONSE, tenders=(CASH,)))
    wire["tranType"] = "BOGUS"
    wire["tenders"][0]["tenderType"] = "BITCOIN"
    wire["tenders"][0]["cardNumber"] = "abc"
    wire["product"] = {"productId": "AIRTIME10", "barcode": "not-a-barcode", "name": ""}
    response = from_json(ProvisionResponse, json.dumps(wire))
    assert response.tran_type == "BOGUS"
    assert response.tenders == (tender(tender_type="BITCOIN", card_number="abc"),)


def test_a_request_read_back_from_storage_is_read_as_it_was_written() -> None:
    wire = to_wire(REQUEST)
    wire["tranType"] = "FOO"
    read = from_wire(ProvisionRequest, wire)
    assert read.tran_type == "FOO"
    assert from_json(ProvisionRequest, to_json(read)) == read


def test_read_strictly_as_a_server_reads_it_a_bad_value_is_a_format_error_with_its_path() -> None:
    wire = to_wire(CONFIRMATION)
    wire["tenders"][0]["cardNumber"] = "abc"
    with pytest.raises(WireFormatError) as caught:
        from_wire(TenderAdvice, wire, strict=True)
    assert [error.path for error in caught.value.errors] == ["tenders[0].cardNumber"]


def test_tolerated_turns_the_checks_off_only_inside_it() -> None:
    with tolerated():
        reversal = attrs.evolve(REVERSAL, reversal_reason="OTHER")
    assert reversal.reversal_reason == "OTHER"
    with pytest.raises(InvalidFieldValueError):
        BasicReversal(**{**attrs.asdict(reversal, recurse=False)})
