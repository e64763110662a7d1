"""The message classes: construction-time validation, immutability, masked secrets."""

import pickle
from datetime import datetime
from typing import Any

import attrs
import pytest
import strategies
from hypothesis import given
from strategies import (
    ADVICE_ID,
    CASH,
    CONFIRMATION,
    IDENTIFIERS,
    INSTITUTION,
    MERCHANT,
    ORIGINATOR,
    PROVISION_ID,
    RAND_10,
    REQUEST,
    RESPONSE,
    REVERSAL,
)

from voucher_core import messages
from voucher_core.messages import (
    AccountType,
    Amounts,
    EncryptionParameters,
    ErrorDetail,
    ErrorType,
    PinClear,
    PinEncrypted,
    PinHashed,
    PinType,
    Product,
    ReversalReason,
    SlipLine,
    TenderAccountType,
    TenderType,
    TranType,
    UnknownPin,
    Voucher,
)
from voucher_core.messages._validators import (
    InvalidFieldTypeError,
    InvalidFieldValueError,
    wire_name,
)


def test_a_valid_provision_request_keeps_its_values() -> None:
    assert REQUEST.id == PROVISION_ID
    assert REQUEST.originator.terminal_id == "TILL0001"
    assert REQUEST.third_party_identifiers == IDENTIFIERS
    assert REQUEST.transaction_labels is None
    assert REQUEST.voucher is None


def test_messages_are_immutable_values() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        REQUEST.id = ADVICE_ID  # type: ignore[misc]
    same = attrs.evolve(REQUEST)
    assert same == REQUEST
    assert same is not REQUEST
    assert hash(same) == hash(REQUEST)


def test_messages_pickle_for_durable_queues() -> None:
    for message in (REQUEST, RESPONSE, CONFIRMATION, REVERSAL):
        assert pickle.loads(pickle.dumps(message)) == message


# Each row: a valid object, the attribute to break, a bad value, the expected message.
VALIDATION_RULES: list[tuple[Any, str, Any, str]] = [
    (REQUEST, "id", "not-a-uuid", "id must be a UUID"),
    (REQUEST, "id", PROVISION_ID + "0", "id must be a UUID"),
    (RESPONSE, "id", PROVISION_ID.replace("-", ""), "id must be a UUID"),
    (CONFIRMATION, "id", "", "id must be a UUID"),
    (CONFIRMATION, "request_id", "1234", "requestId must be a UUID"),
    (REVERSAL, "id", "x" * 36, "id must be a UUID"),
    (REVERSAL, "request_id", PROVISION_ID + "\n", "requestId must be a UUID"),
    (REQUEST, "time", datetime(2026, 11, 23, 18, 1), "time must be timezone-aware"),
    (CONFIRMATION, "time", datetime(2026, 11, 23), "time must be timezone-aware"),
    (REVERSAL, "time", "2026-11-23T18:01:30Z", "time must be a datetime"),
    (ORIGINATOR, "terminal_id", "TILL001", "terminalId must be exactly 8 characters, got 7"),
    (ORIGINATOR, "terminal_id", "TILL00001", "terminalId must be exactly 8 characters, got 9"),
    (ORIGINATOR, "operator_id", "o" * 31, "operatorId must be at most 30 characters, got 31"),
    (MERCHANT, "merchant_id", "1" * 14, "merchantId must be exactly 15 characters, got 14"),
    (MERCHANT, "merchant_id", "1" * 16, "merchantId must be exactly 15 characters, got 16"),
    (MERCHANT, "merchant_type", "541", "merchantType must match [0-9]{4}"),
    (MERCHANT, "merchant_type", "54A1", "merchantType must match [0-9]{4}"),
    (MERCHANT.merchant_name, "name", "n" * 24, "name must be at most 23 characters, got 24"),
    (MERCHANT.merchant_name, "city", "c" * 14, "city must be at most 13 characters, got 14"),
    (MERCHANT.merchant_name, "region", "WCP", "region must be at most 2 characters, got 3"),
    (MERCHANT.merchant_name, "country", "ZAF", "country must be at most 2 characters, got 3"),
    (INSTITUTION, "name", "i" * 41, "name must be at most 40 characters, got 41"),
    (Product(product_id="A"), "product_id", "", "productId must match [0-9A-Za-z]{1,20}"),
    (Product(product_id="A"), "product_id", "AIR-10", "productId must match"),
    (Product(product_id="A"), "product_id", "A" * 21, "productId must match"),
    (RAND_10, "currency", "ZAR", "currency must match [0-9]{3}"),
    (RAND_10, "currency", "71", "currency must match [0-9]{3}"),
    (RAND_10, "currency", "\u0667\u0661\u0660", "currency must match [0-9]{3}"),  # not ASCII
    (RAND_10, "amount", 2**63, "amount must fit in a signed 64-bit integer"),
    (CASH, "reference", "r" * 41, "reference must be at most 40 characters, got 41"),
    (RESPONSE.voucher, "code", "c" * 41, "code must be at most 40 characters, got 41"),
    (RESPONSE.voucher, "serial_number", "s" * 41, "serialNumber must be at most 40 characters"),
    (RESPONSE.voucher, "expiry_date", datetime(2027, 1, 1), "expiryDate must be timezone-aware"),
    (PinEncrypted(pin_block="0123456789ABCDEF"), "pin_block", "0123", "pinBlock must match"),
    (
        SlipLine(text="x"),
        "font_width_scale_factor",
        float("nan"),
        "fontWidthScaleFactor must be finite",
    ),
]


@pytest.mark.parametrize(
    ("valid", "attribute", "bad", "message"),
    VALIDATION_RULES,
    ids=[f"{type(row[0]).__name__}.{row[1]}={row[2]!r:.20}" for row in VALIDATION_RULES],
)
def test_each_constraint_rejects_a_bad_value_naming_the_wire_field(
    valid: Any, attribute: str, bad: Any, message: str
) -> None:
    with pytest.raises((InvalidFieldValueError, InvalidFieldTypeError)) as caught:
        attrs.evolve(valid, **{attribute: bad})
    error = caught.value
    assert isinstance(error, InvalidFieldValueError | InvalidFieldTypeError)
    assert str(error).startswith(message)
    assert error.field == wire_name(attribute)


@pytest.mark.parametrize(
    ("valid", "attribute", "bad", "message"),
    [
        (RAND_10, "amount", True, "amount must be an integer, got bool"),
        (RAND_10, "amount", 10.0, "amount must be an integer, got float"),
        (RAND_10, "currency", 710, "currency must be a string, got int"),
        (ORIGINATOR, "terminal_id", None, "terminalId must be a string, got null"),
        (REVERSAL, "reversal_reason", 1, "reversalReason must be a string, got int"),
        (SlipLine(text="x"), "cut", "yes", "cut must be a boolean, got str"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_type_error(
    valid: Any, attribute: str, bad: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=f"^{message}$"):
        attrs.evolve(valid, **{attribute: bad})


@pytest.mark.parametrize(
    ("valid", "attribute", "good"),
    [
        (REQUEST, "id", PROVISION_ID.upper()),
        (REQUEST, "id", "00000000-0000-0000-0000-000000000000"),  # the version is not checked
        (ORIGINATOR, "operator_id", "o" * 30),
        (MERCHANT.merchant_name, "name", "n" * 23),
        (MERCHANT.merchant_name, "region", ""),
        (INSTITUTION, "name", "i" * 40),
        (Product(product_id="A"), "product_id", "Ab3" * 6 + "Z9"),
        (RAND_10, "amount", -(2**63)),
        (RAND_10, "amount", 0),
        (CASH, "reference", "r" * 40),
        (RESPONSE.voucher, "code", "c" * 40),
    ],
)
def test_values_at_the_limits_are_accepted(valid: Any, attribute: str, good: Any) -> None:
    assert getattr(attrs.evolve(valid, **{attribute: good}), attribute) == good


def test_a_pin_block_error_does_not_quote_the_pin_block() -> None:
    with pytest.raises(InvalidFieldValueError) as caught:
        PinEncrypted(pin_block="12345678ZZZZZZZZ")
    assert "ZZZZ" not in str(caught.value)


def test_an_error_detail_tolerates_what_real_servers_send() -> None:
    long_message = "upstream said: " + "x" * 200
    error = ErrorDetail(error_type="SOMETHING_NEW", error_message=long_message)
    assert error.id is None
    assert error.error_message == long_message
    assert error.error_type == "SOMETHING_NEW"


@pytest.mark.parametrize(
    "secret",
    [
        PinClear(pin="4321"),
        PinEncrypted(
            pin_block="4321ABCDEF012345",
            encryption_parameters=EncryptionParameters(account_number="432143214321"),
        ),
        PinHashed(hash="43214321ABCDEF"),
        UnknownPin(type="BIOMETRIC_PIN", fields={"template": "4321"}),
    ],
)
def test_a_pin_never_shows_in_a_repr(secret: Any) -> None:
    voucher = Voucher(code="1111222233334444", pin=secret)
    for text in (repr(secret), repr(voucher), repr(attrs.evolve(RESPONSE, voucher=voucher))):
        assert "4321" not in text
        assert "1111222233334444" not in text
        assert "***" in text


def test_a_voucher_repr_still_shows_what_is_not_secret() -> None:
    text = repr(RESPONSE.voucher)
    assert "SN-1" in text
    assert "9876543210123456" not in text
    assert "code='***'" in text
    assert "code=None" in repr(Voucher())


def test_unknown_pin_keeps_the_discriminator_out_of_its_fields() -> None:
    with pytest.raises(ValueError, match="must not repeat the type key"):
        UnknownPin(type="NEW_PIN", fields={"type": "NEW_PIN"})


def test_error_type_lists_all_28_values_of_the_interface() -> None:
    assert len(ErrorType) == 28
    assert {"UPSTREAM_UNAVAILABLE", "VOUCHER_STATUS_UNKNOWN", "DO_NOT_HONOUR"} <= set(ErrorType)


@pytest.mark.parametrize(
    "enum_cls",
    [ErrorType, TranType, AccountType, TenderAccountType, TenderType, ReversalReason, PinType],
)
def test_enum_members_are_their_wire_strings(enum_cls: Any) -> None:
    for member in enum_cls:
        assert member == member.name
        assert str(member) == member.name


def test_reversal_reasons_and_account_types_match_the_interface() -> None:
    assert set(ReversalReason) == {"TIMEOUT", "CANCELLED", "RESPONSE_NOT_FINAL"}
    assert set(AccountType) - set(TenderAccountType) == {"GIFT_CARD"}


def test_amounts_are_all_optional() -> None:
    assert Amounts() == Amounts(request_amount=None, additional_amounts=None)


def test_the_package_exports_every_public_message_name() -> None:
    exported = set(messages.__all__)
    assert {"ProvisionRequest", "ProvisionResponse", "TenderAdvice", "BasicReversal"} <= exported
    assert {"ErrorDetail", "VoucherLookupResponse", "Pin", "UnknownPin", "TransactionLabel"} <= (
        exported
    )
    assert all(hasattr(messages, name) for name in exported)


@given(strategies.any_message())
def test_generated_messages_are_valid_and_equal_to_a_rebuilt_copy(message: Any) -> None:
    assert attrs.evolve(message) == message
