"""The retry seed's fields beyond swagger 1.14.0: built, sent, read back and read tolerantly.

The seed's request carries ``transactionLabels``, ``customer``, ``recipient`` and
``paymentMethods``; its response ``transactionLabels``, ``recipient`` and ``tenders``.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from strategies import CASH, RAND_10, REQUEST, RESPONSE, provision_requests, provision_responses
from swagger import check

from voucher_core.messages import (
    Customer,
    PaymentMethod,
    PaymentMethodType,
    ProvisionRequest,
    ProvisionResponse,
    TransactionLabel,
)
from voucher_core.wire import WireFormatError, from_json, from_wire, to_json, to_wire

BUYER = Customer(first_name="Thandi", last_name="Nkosi", address="12 Long Street, Cape Town")
GIFTEE = Customer(first_name="Sipho")
LOYALTY = PaymentMethod(type=PaymentMethodType.LOYALTY_CARD, name="Smart Shopper", amount=RAND_10)
LABELS = (TransactionLabel(name="basket", value="B-17"),)

SEED_REQUEST = attrs.evolve(
    REQUEST,
    transaction_labels=LABELS,
    customer=BUYER,
    recipient=GIFTEE,
    payment_methods=(LOYALTY,),
)
SEED_RESPONSE = attrs.evolve(RESPONSE, transaction_labels=LABELS, recipient=GIFTEE, tenders=(CASH,))


def test_a_retry_request_with_customer_recipient_and_payment_methods_is_sent_in_camel_case() -> (
    None
):
    wire = to_wire(SEED_REQUEST)
    assert wire["customer"] == {
        "firstName": "Thandi",
        "lastName": "Nkosi",
        "address": "12 Long Street, Cape Town",
    }
    assert wire["recipient"] == {"firstName": "Sipho"}
    assert wire["paymentMethods"] == [
        {
            "type": "LOYALTY_CARD",
            "name": "Smart Shopper",
            "amount": {"amount": 1000, "currency": "710"},
        }
    ]
    assert wire["transactionLabels"] == [{"name": "basket", "value": "B-17"}]


def test_the_seed_request_and_response_conform_to_the_swagger_with_the_seeds_fields() -> None:
    check("ProvisionRequest", to_wire(SEED_REQUEST))
    check("ProvisionResponse", to_wire(SEED_RESPONSE))


def test_a_request_without_the_seed_fields_sends_none_of_them() -> None:
    wire = to_wire(REQUEST)
    assert not {"customer", "recipient", "paymentMethods", "transactionLabels"} & set(wire)


def test_the_seed_request_round_trips() -> None:
    assert from_json(ProvisionRequest, to_json(SEED_REQUEST), strict=True) == SEED_REQUEST


def test_a_retry_response_with_labels_recipient_and_tenders_is_read() -> None:
    wire = to_wire(SEED_RESPONSE)
    assert wire["tenders"] == [
        {"amount": {"amount": 1000, "currency": "710"}, "tenderType": "CASH"}
    ]
    parsed = from_wire(ProvisionResponse, wire)
    assert parsed == SEED_RESPONSE
    assert parsed.recipient == GIFTEE
    assert parsed.tenders == (CASH,)
    assert parsed.transaction_labels == LABELS


def test_the_seed_fields_in_a_reply_are_read_tolerantly() -> None:
    wire: dict[str, Any] = to_wire(SEED_RESPONSE)
    wire["recipient"]["msisdn"] = "27820000000"  # a newer model's field: ignored
    wire["tenders"][0]["tenderType"] = "CRYPTO"  # an enum value this version does not know
    wire["transactionLabels"].append({"name": "channel", "value": "app", "extra": 1})
    wire["customer"] = {"firstName": "not part of a response"}
    parsed = from_json(ProvisionResponse, json.dumps(wire))
    assert parsed.recipient == GIFTEE
    assert parsed.tenders is not None and parsed.tenders[0].tender_type == "CRYPTO"
    assert parsed.transaction_labels == (*LABELS, TransactionLabel(name="channel", value="app"))


def test_a_payment_method_of_an_unknown_type_in_a_reply_stays_a_string() -> None:
    wire = to_wire(SEED_REQUEST)
    wire["paymentMethods"][0]["type"] = "VOUCHER_WALLET"
    parsed = from_wire(ProvisionRequest, wire)
    assert parsed.payment_methods is not None
    assert parsed.payment_methods[0].type == "VOUCHER_WALLET"


@pytest.mark.parametrize(
    ("field", "value"),
    [("customer", []), ("recipient", "Sipho"), ("paymentMethods", {}), ("tenders", {})],
)
def test_a_seed_field_of_the_wrong_shape_is_reported_by_path(field: str, value: object) -> None:
    request_field = field in ("customer", "paymentMethods")
    cls: type[Any] = ProvisionRequest if request_field else ProvisionResponse
    wire = {**to_wire(SEED_REQUEST if request_field else SEED_RESPONSE), field: value}
    with pytest.raises(WireFormatError) as caught:
        from_wire(cls, wire)
    assert [error.path for error in caught.value.errors] == [field]


@given(provision_requests())
def test_any_request_with_the_seed_fields_round_trips(request: ProvisionRequest) -> None:
    assert from_json(ProvisionRequest, to_json(request)) == request


@given(provision_responses())
def test_any_response_with_the_seed_fields_round_trips(response: ProvisionResponse) -> None:
    assert from_json(ProvisionResponse, to_json(response)) == response
