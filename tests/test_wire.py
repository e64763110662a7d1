"""The JSON codec: exact wire shape, tolerant reading of replies, precise error paths."""

import copy
import json
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import cattrs
import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    ADVICE_ID,
    CASH,
    CONFIRMATION,
    PROVISION_ID,
    REQUEST,
    RESPONSE,
    REVERSAL,
)

from voucher_core.messages import (
    Amounts,
    BasicReversal,
    ErrorDetail,
    ErrorType,
    LedgerAmount,
    PinClear,
    PinEncrypted,
    PinHashed,
    ProvisionRequest,
    ProvisionResponse,
    ReversalReason,
    TenderAdvice,
    TenderType,
    TransactionLabel,
    TranType,
    UnknownPin,
    Voucher,
    VoucherLookupResponse,
)
from voucher_core.wire import (
    FieldError,
    WireFormatError,
    converter,
    from_json,
    from_wire,
    make_converter,
    strict_converter,
    to_json,
    to_wire,
)

REQUEST_WIRE: dict[str, Any] = {
    "id": PROVISION_ID,
    "time": "2026-11-23T18:01:30.123Z",
    "originator": {
        "institution": {"id": "1234", "name": "Corner Shop Holdings"},
        "terminalId": "TILL0001",
        "merchant": {
            "merchantType": "5411",
            "merchantId": "123456789012345",
            "merchantName": {
                "name": "Corner Shop",
                "city": "Cape Town",
                "region": "WC",
                "country": "ZA",
            },
        },
    },
    "client": {"id": "1234", "name": "Corner Shop Holdings"},
    "thirdPartyIdentifiers": [{"institutionId": "1234", "transactionIdentifier": "T-1"}],
    "product": {"productId": "AIRTIME10"},
}


def response_wire() -> dict[str, Any]:
    """A fresh, valid ProvisionResponse document to break in a test."""
    return to_wire(RESPONSE)


def errors_of(cls: type[Any], data: Any, *, strict: bool = False) -> tuple[FieldError, ...]:
    with pytest.raises(WireFormatError) as caught:
        from_wire(cls, data, strict=strict)
    assert caught.value.message_type == cls.__name__
    return caught.value.errors


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "strategy"),
    [
        (ProvisionRequest, strategies.provision_requests()),
        (ProvisionResponse, strategies.provision_responses()),
        (TenderAdvice, strategies.tender_advices()),
        (BasicReversal, strategies.basic_reversals()),
        (ErrorDetail, strategies.error_details()),
        (VoucherLookupResponse, strategies.voucher_lookup_responses()),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
@given(data=st.data())
def test_every_envelope_survives_a_json_round_trip(
    cls: type[Any], strategy: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    message = data.draw(strategy)
    content = to_json(message)
    assert from_json(cls, content) == message
    # What we send is exactly what a strict server accepts.
    assert from_json(cls, content, strict=True) == message
    assert json.loads(content) == to_wire(message)


@given(strategies.any_message())
def test_the_wire_never_carries_null_or_snake_case_keys(message: Any) -> None:
    def walk(node: Any, free_form: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not free_form:
                    assert "_" not in key, key
                    assert value is not None, key
                # Keys chosen by people, not by the schema, are left alone.
                walk(value, free_form or key in {"detailMessage", "additionalAmounts"})
        elif isinstance(node, list):
            for item in node:
                walk(item, free_form)

    wire = to_wire(message)
    pin = wire.get("voucher", {}).get("pin")
    if pin is not None and pin["type"] not in {"CLEAR_PIN", "ENCRYPTED_PIN", "HASHED_PIN"}:
        del wire["voucher"]["pin"]  # an unknown PIN variant's keys are whatever it arrived with
    walk(wire, free_form=False)


def test_a_provision_request_goes_out_in_camel_case_without_unset_fields() -> None:
    assert to_wire(REQUEST) == REQUEST_WIRE


def test_to_json_is_compact_utf8() -> None:
    label = TransactionLabel(name="store", value="Café Ñandú \ud800")
    content = to_json(attrs.evolve(REQUEST, transaction_labels=(label,)))
    assert isinstance(content, bytes)
    assert b": " not in content
    assert b", " not in content
    assert content.startswith(b'{"id":"0f8fad5b')
    content.decode("utf-8")  # valid UTF-8, even with a lone surrogate in a label
    parsed = from_json(ProvisionRequest, content)
    assert parsed.transaction_labels == (label,)


def test_transaction_labels_are_sent_only_when_present() -> None:
    labels = (TransactionLabel(name="basket", value="B-17"),)
    assert "transactionLabels" not in to_wire(REQUEST)
    wire = to_wire(attrs.evolve(REQUEST, transaction_labels=labels))
    assert wire["transactionLabels"] == [{"name": "basket", "value": "B-17"}]
    assert from_wire(ProvisionRequest, wire).transaction_labels == labels


def test_advices_carry_request_id_and_enums_as_their_values() -> None:
    confirmation = to_wire(CONFIRMATION)
    assert confirmation["requestId"] == PROVISION_ID
    assert confirmation["tenders"] == [
        {"amount": {"amount": 1000, "currency": "710"}, "tenderType": "CASH"}
    ]
    reversal = to_wire(REVERSAL)
    assert reversal["reversalReason"] == "TIMEOUT"
    assert type(reversal["reversalReason"]) is str
    assert reversal["id"] == ADVICE_ID


# --- times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time", "wire"),
    [
        (datetime(2026, 11, 23, 18, 1, 30, 123456, tzinfo=UTC), "2026-11-23T18:01:30.123Z"),
        (datetime(2026, 11, 23, 18, 1, 30, tzinfo=UTC), "2026-11-23T18:01:30.000Z"),
        (
            datetime(2026, 11, 23, 20, 1, 30, 5000, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-23T18:01:30.005Z",
        ),
        (
            datetime(2026, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))),
            "2027-01-01T00:30:00.000Z",
        ),
    ],
)
def test_times_are_sent_in_utc_with_milliseconds_and_z(time: datetime, wire: str) -> None:
    assert to_wire(attrs.evolve(REQUEST, time=time))["time"] == wire
    expiry = to_wire(attrs.evolve(RESPONSE, voucher=Voucher(expiry_date=time)))
    assert expiry["voucher"]["expiryDate"] == wire


@pytest.mark.parametrize(
    ("wire", "time"),
    [
        ("2026-11-23T18:01:30.123Z", datetime(2026, 11, 23, 18, 1, 30, 123000, tzinfo=UTC)),
        ("2026-11-23T18:01:30Z", datetime(2026, 11, 23, 18, 1, 30, tzinfo=UTC)),
        ("2026-11-23T20:01:30.1+02:00", datetime(2026, 11, 23, 18, 1, 30, 100000, tzinfo=UTC)),
        ("2026-11-23T18:01:30.123456789Z", datetime(2026, 11, 23, 18, 1, 30, 123456, tzinfo=UTC)),
        ("2026-11-23t18:01:30.123z", datetime(2026, 11, 23, 18, 1, 30, 123000, tzinfo=UTC)),
    ],
)
def test_any_rfc3339_time_is_read(wire: str, time: datetime) -> None:
    parsed = from_wire(ProvisionRequest, {**REQUEST_WIRE, "time": wire}).time
    assert parsed == time
    assert parsed.utcoffset() is not None


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        ("2026-11-23T18:01:30.123", "must carry a UTC offset or Z"),
        ("2026-11-23", "must carry a UTC offset or Z"),
        ("yesterday", "must be an RFC 3339 date-time"),
        (1764000000, "must be an RFC 3339 date-time string, got an integer"),
    ],
)
def test_a_time_without_offset_or_not_a_time_is_rejected(wire: Any, reason: str) -> None:
    (error,) = errors_of(ProvisionRequest, {**REQUEST_WIRE, "time": wire})
    assert error.path == "time"
    assert error.reason.startswith(reason)


# --- reading replies tolerantly -----------------------------------------------------------


def test_unknown_fields_in_a_reply_are_ignored() -> None:
    wire = response_wire()
    wire["newTopLevelField"] = {"anything": [1, 2]}
    wire["originator"]["merchant"]["loyaltyScheme"] = "gold"
    wire["thirdPartyIdentifiers"][0]["extra"] = True
    wire["voucher"]["pin"]["hint"] = "birthday"
    assert from_wire(ProvisionResponse, wire) == RESPONSE


def test_request_only_seed_fields_in_a_reply_are_ignored() -> None:
    wire = {**response_wire(), "customer": {"firstName": "A"}, "paymentMethods": []}
    assert from_wire(ProvisionResponse, wire) == RESPONSE


def test_a_known_enum_value_becomes_the_member_and_an_unknown_one_stays_a_string() -> None:
    wire = {**REQUEST_WIRE, "tranType": "GOODS_AND_SERVICES", "srcAccType": "CRYPTO_WALLET"}
    request = from_wire(ProvisionRequest, wire)
    assert request.tran_type is TranType.GOODS_AND_SERVICES
    assert request.src_acc_type == "CRYPTO_WALLET"
    assert type(request.src_acc_type) is str
    assert to_wire(request)["srcAccType"] == "CRYPTO_WALLET"


def test_an_unknown_error_type_is_kept_as_a_string() -> None:
    error = from_json(ErrorDetail, b'{"errorType":"VOUCHER_MELTED","errorMessage":"gone"}')
    assert error.error_type == "VOUCHER_MELTED"
    assert not isinstance(error.error_type, ErrorType)
    known = from_json(ErrorDetail, b'{"errorType":"DO_NOT_HONOUR","errorMessage":"no"}')
    assert known.error_type is ErrorType.DO_NOT_HONOUR


def test_an_error_detail_without_id_with_a_long_message_and_free_details_is_read() -> None:
    content = json.dumps(
        {
            "errorType": "FORMAT_ERROR",
            "errorMessage": "m" * 300,
            "detailMessage": {"violations": [{"field": "x", "message": None}], "n": 1.5},
            "originalId": PROVISION_ID,
        }
    )
    error = from_json(ErrorDetail, content)
    assert error.id is None
    assert len(error.error_message) == 300
    assert error.detail_message == {"violations": [{"field": "x", "message": None}], "n": 1.5}
    assert error.original_id == PROVISION_ID


def test_an_enum_field_must_still_be_a_string() -> None:
    wire = to_wire(CONFIRMATION)
    wire["tenders"][0]["tenderType"] = 7
    (error,) = errors_of(TenderAdvice, wire)
    assert error == FieldError("tenders[0].tenderType", "must be a string, got an integer")


# --- PINs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "wire"),
    [
        (PinClear(pin="1234"), {"type": "CLEAR_PIN", "pin": "1234"}),
        (
            PinEncrypted(pin_block="0123456789abcdef"),
            {"type": "ENCRYPTED_PIN", "pinBlock": "0123456789abcdef"},
        ),
        (PinHashed(hash="ABCD"), {"type": "HASHED_PIN", "hash": "ABCD"}),
        (
            UnknownPin(type="BIOMETRIC_PIN", fields={"template": "x", "n": 2}),
            {"type": "BIOMETRIC_PIN", "template": "x", "n": 2},
        ),
    ],
)
def test_a_pin_is_told_apart_by_its_type_key(pin: Any, wire: dict[str, Any]) -> None:
    message = attrs.evolve(RESPONSE, voucher=Voucher(code="1", pin=pin))
    assert to_wire(message)["voucher"]["pin"] == wire
    assert from_wire(ProvisionResponse, to_wire(message)).voucher.pin == pin


def test_an_unknown_pin_type_is_kept_whole_even_by_the_strict_converter() -> None:
    wire = response_wire()
    wire["voucher"]["pin"] = {"type": "QUANTUM_PIN", "qubits": [1, 0], "pin": "s3cret"}
    for strict in (False, True):
        pin = from_wire(ProvisionResponse, wire, strict=strict).voucher.pin
        assert pin == UnknownPin(type="QUANTUM_PIN", fields={"qubits": [1, 0], "pin": "s3cret"})
        assert "s3cret" not in repr(pin)


def test_a_pin_without_type_is_reported_at_its_type_key() -> None:
    wire = response_wire()
    wire["voucher"]["pin"] = {"pin": "1234"}
    assert errors_of(ProvisionResponse, wire) == (
        FieldError("voucher.pin.type", "may not be null"),
    )


def test_a_pin_type_that_is_not_a_string_is_reported_at_its_type_key() -> None:
    wire = response_wire()
    wire["voucher"]["pin"] = {"type": ["CLEAR_PIN"], "pin": "1234"}
    assert errors_of(ProvisionResponse, wire) == (
        FieldError("voucher.pin.type", "must be a string, got an array"),
    )


def test_a_known_pin_type_with_a_missing_field_is_reported_inside_the_pin() -> None:
    wire = response_wire()
    wire["voucher"]["pin"] = {"type": "ENCRYPTED_PIN"}
    assert errors_of(ProvisionResponse, wire) == (
        FieldError("voucher.pin.pinBlock", "may not be null"),
    )


# --- errors and their paths -------------------------------------------------------------


def test_a_missing_nested_field_is_reported_by_its_wire_path() -> None:
    wire = copy.deepcopy(REQUEST_WIRE)
    del wire["originator"]["merchant"]["merchantId"]
    (error,) = errors_of(ProvisionRequest, wire)
    assert error == FieldError("originator.merchant.merchantId", "may not be null")
    assert str(error) == "originator.merchant.merchantId may not be null"


def test_a_null_required_field_may_not_be_null() -> None:
    wire = {**REQUEST_WIRE, "client": None, "id": None}
    assert set(errors_of(ProvisionRequest, wire)) == {
        FieldError("id", "may not be null"),
        FieldError("client", "may not be null"),
    }


def test_list_items_are_reported_with_their_index() -> None:
    wire = to_wire(CONFIRMATION)
    wire["tenders"] = [to_wire(CASH), to_wire(CASH), to_wire(CASH)]
    del wire["tenders"][1]["amount"]["currency"]
    wire["tenders"][2]["amount"]["amount"] = "1000"
    assert errors_of(TenderAdvice, wire) == (
        FieldError("tenders[1].amount.currency", "may not be null"),
        FieldError("tenders[2].amount.amount", "must be an integer, got a string"),
    )


def test_every_bad_field_is_reported_at_once_and_the_message_reads_like_a_server_reply() -> None:
    wire = response_wire()
    del wire["voucher"]
    wire["time"] = "soon"
    wire["thirdPartyIdentifiers"] = "T-1"
    with pytest.raises(WireFormatError) as caught:
        from_wire(ProvisionResponse, wire)
    assert [e.path for e in caught.value.errors] == ["time", "thirdPartyIdentifiers", "voucher"]
    assert str(caught.value) == (
        "ProvisionResponse: time must be an RFC 3339 date-time, got 'soon'; "
        "thirdPartyIdentifiers must be an array, got a string; voucher may not be null"
    )


def test_a_constraint_broken_in_a_reply_names_the_full_path() -> None:
    wire = response_wire()
    wire["originator"]["terminalId"] = "TILL001"
    assert errors_of(ProvisionResponse, wire) == (
        FieldError("originator.terminalId", "must be exactly 8 characters, got 7"),
    )
    wire = to_wire(CONFIRMATION)
    wire["tenders"][0]["amount"]["currency"] = "ZAR"
    (error,) = errors_of(TenderAdvice, wire)
    assert error.path == "tenders[0].amount.currency"
    assert error.reason.startswith("must match [0-9]{3}")


def test_a_bad_additional_amount_is_reported_under_its_key() -> None:
    amounts = Amounts(additional_amounts={"cashback": LedgerAmount(amount=1, currency="710")})
    wire = to_wire(attrs.evolve(REVERSAL, amounts=amounts))
    wire["amounts"]["additionalAmounts"]["cashback"]["amount"] = True
    assert errors_of(BasicReversal, wire) == (
        FieldError(
            "amounts.additionalAmounts[cashback].amount", "must be an integer, got a boolean"
        ),
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("productId", 42, "must be a string, got an integer"),
        ("productId", ["A"], "must be a string, got an array"),
        ("name", {"en": "x"}, "must be a string, got an object"),
    ],
)
def test_types_are_not_coerced(field: str, value: Any, reason: str) -> None:
    wire = {**REQUEST_WIRE, "product": {"productId": "A", field: value}}
    assert errors_of(ProvisionRequest, wire) == (FieldError(f"product.{field}", reason),)


def test_a_string_is_not_an_array_of_characters() -> None:
    wire = response_wire()
    wire["voucher"]["redeemInstructions"] = "dial *120#"
    assert errors_of(ProvisionResponse, wire) == (
        FieldError("voucher.redeemInstructions", "must be an array, got a string"),
    )


# --- strict mode ------------------------------------------------------------------------


def test_strict_mode_rejects_unknown_fields_with_their_paths() -> None:
    wire = copy.deepcopy(REQUEST_WIRE)
    wire["colour"] = "blue"
    wire["originator"]["merchant"]["nickname"] = "corner"
    wire["thirdPartyIdentifiers"][0]["note"] = "x"
    assert set(errors_of(ProvisionRequest, wire, strict=True)) == {
        FieldError("colour", "unknown field"),
        FieldError("originator.merchant.nickname", "unknown field"),
        FieldError("thirdPartyIdentifiers[0].note", "unknown field"),
    }
    assert from_wire(ProvisionRequest, wire).originator == REQUEST.originator


def test_strict_mode_accepts_exactly_what_we_send() -> None:
    wire = to_wire(attrs.evolve(RESPONSE, voucher=Voucher(pin=PinClear(pin="1"))))
    assert from_wire(ProvisionResponse, wire, strict=True).voucher.pin == PinClear(pin="1")


def test_both_converters_come_from_one_factory() -> None:
    assert isinstance(converter, cattrs.Converter)
    assert converter.forbid_extra_keys is False
    assert strict_converter.forbid_extra_keys is True
    fresh = make_converter(strict=True)
    assert fresh.structure(to_wire(REVERSAL), BasicReversal) == REVERSAL


# --- not JSON, not an object --------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"<html>Internal Server Error</html>", "{", b"\xff\xfe\x00", b'{"amount": NaN}'],
)
def test_content_that_is_not_json_is_a_wire_format_error_at_the_root(content: Any) -> None:
    with pytest.raises(WireFormatError) as caught:
        from_json(ErrorDetail, content)
    (error,) = caught.value.errors
    assert error.path == ""
    assert error.reason.startswith("could not be decoded as JSON")
    assert str(caught.value).startswith("ErrorDetail: could not be decoded as JSON")


@pytest.mark.parametrize(("content", "found"), [(b"[]", "an array"), (b'"ok"', "a string")])
def test_json_that_is_not_an_object_is_rejected_at_the_root(content: bytes, found: str) -> None:
    with pytest.raises(WireFormatError) as caught:
        from_json(ProvisionResponse, content)
    assert caught.value.errors == (FieldError("", f"must be an object, got {found}"),)
    assert str(caught.value) == f"ProvisionResponse: must be an object, got {found}"


def test_wire_format_error_is_a_value_error_that_pickles() -> None:
    error = WireFormatError("BasicReversal", [FieldError("requestId", "may not be null")])
    assert isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))
    assert again.errors == error.errors
    assert str(again) == "BasicReversal: requestId may not be null"


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "time", "voucher", "pin", "type", "tenders", "amount", "x"]),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@given(json_documents)
def test_any_json_document_either_parses_or_raises_wire_format_error(document: Any) -> None:
    content = json.dumps(document)
    for cls in (ProvisionResponse, ErrorDetail, VoucherLookupResponse):
        try:
            from_json(cls, content)
        except WireFormatError as exc:
            assert exc.errors
            assert all(isinstance(error.reason, str) and error.reason for error in exc.errors)


@given(strategies.provision_responses(), st.data())
def test_dropping_any_required_field_of_a_response_is_reported_at_that_path(
    response: ProvisionResponse, data: st.DataObject
) -> None:
    wire = to_wire(response)
    required = ["id", "time", "originator", "client", "thirdPartyIdentifiers", "voucher"]
    field = data.draw(st.sampled_from(required))
    del wire[field]
    assert errors_of(ProvisionResponse, wire) == (FieldError(field, "may not be null"),)


def test_the_reversal_reason_round_trips_through_json_as_the_member() -> None:
    parsed = from_json(BasicReversal, to_json(attrs.evolve(REVERSAL, reversal_reason="CANCELLED")))
    assert parsed.reversal_reason is ReversalReason.CANCELLED
    assert parsed.third_party_identifiers == REVERSAL.third_party_identifiers
    assert isinstance(parsed.third_party_identifiers, tuple)
    assert from_json(TenderAdvice, to_json(CONFIRMATION)).tenders[0].tender_type is TenderType.CASH


def test_an_envelope_serialised_again_gives_the_same_bytes_without_re_encoding() -> None:
    """The journal, the queue and the transport all serialise a sale's advice: the bytes are
    made once per message object, and another object with equal content gets its own."""
    first = to_json(REVERSAL)
    assert to_json(REVERSAL) is first
    twin = from_json(BasicReversal, first)
    assert twin == REVERSAL and twin is not REVERSAL
    assert to_json(twin) == first
    other = attrs.evolve(REVERSAL, reversal_reason=ReversalReason.CANCELLED)
    assert to_json(other) != first and json.loads(to_json(other))["reversalReason"] == "CANCELLED"
