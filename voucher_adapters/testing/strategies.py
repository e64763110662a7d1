"""Hypothesis strategies that build valid SUV messages, for property tests of your own.

Every strategy produces objects that pass construction-time validation, and whose JSON round
trip through :mod:`voucher_core.wire` is exact: times have millisecond precision, floats are
finite. What a till sends (requests, advices, reversals) holds only values the swagger allows;
in what it receives, unknown PIN variants use a ``type`` this version does not know and enum
fields sometimes hold a string the enum does not know (as a newer server may send). The parts'
strategies take ``sent=True`` for the former. Needs
hypothesis (``pip install 'voucher-core[testing]'``)::

    from hypothesis import given
    from voucher_adapters.testing.strategies import provision_requests
    from voucher_core.wire import from_json, to_json

    @given(provision_requests())
    def test_round_trip(request):
        assert from_json(type(request), to_json(request)) == request

Fixed, readable examples (``REQUEST``, ``RESPONSE``, ``CONFIRMATION``, ``REVERSAL``...) sit
at the end, for tests that need one particular message.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

from hypothesis import strategies as st

from voucher_core.messages import (
    AccountType,
    Amounts,
    Barcode,
    BasicReversal,
    Customer,
    EncryptionParameters,
    ErrorDetail,
    ErrorType,
    HashedPinParameters,
    Institution,
    LedgerAmount,
    LedgerIndicator,
    Merchant,
    MerchantName,
    Originator,
    PanEntryMode,
    PaymentMethod,
    PaymentMethodType,
    Pin,
    PinBlockFormat,
    PinClear,
    PinEncrypted,
    PinEntryCapability,
    PinHashed,
    PinType,
    PosConditionCode,
    PosEntryMode,
    PosInfo,
    Product,
    ProvisionRequest,
    ProvisionResponse,
    ReversalReason,
    SlipData,
    SlipLine,
    Tender,
    TenderAccountType,
    TenderAdvice,
    TenderType,
    ThirdPartyIdentifier,
    TransactionLabel,
    TranType,
    UnknownPin,
    Voucher,
    VoucherLookupResponse,
)

__all__ = [
    "ADVICE_ID",
    "CASH",
    "CONFIRMATION",
    "IDENTIFIERS",
    "INSTITUTION",
    "MERCHANT",
    "NOW",
    "ORIGINATOR",
    "PROVISION_ID",
    "RAND_10",
    "REQUEST",
    "RESPONSE",
    "REVERSAL",
    "amounts",
    "any_message",
    "at_most",
    "aware_times",
    "basic_reversals",
    "customers",
    "enum_or_text",
    "error_details",
    "institutions",
    "json_values",
    "ledger_amounts",
    "maybe",
    "message_ids",
    "originators",
    "payment_methods",
    "pins",
    "pos_infos",
    "products",
    "provision_requests",
    "provision_responses",
    "short_text",
    "slip_data",
    "tender_advices",
    "tenders",
    "text_of",
    "third_party_identifiers",
    "transaction_labels",
    "tuples_of",
    "voucher_lookup_responses",
    "vouchers",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

MIN_TIME = datetime(2000, 1, 1)
MAX_TIME = datetime(2100, 1, 1)

short_text = st.text(max_size=12)


def text_of(length: int) -> st.SearchStrategy[str]:
    """Strings of exactly *length* characters."""
    return st.text(min_size=length, max_size=length)


def at_most(length: int) -> st.SearchStrategy[str]:
    return st.text(max_size=length)


def maybe(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


def tuples_of(
    strategy: st.SearchStrategy[T], max_size: int = 3
) -> st.SearchStrategy[tuple[T, ...]]:
    return st.lists(strategy, max_size=max_size).map(tuple)


def enum_or_text(enum_cls: type[E]) -> st.SearchStrategy[E | str]:
    """A known member, or some string the enum does not know (as a newer server may send)."""
    return st.sampled_from(enum_cls) | short_text


def _enum(enum_cls: type[E], sent: bool) -> st.SearchStrategy[E | str]:
    """What an enum field may hold: only members in what a till sends, anything in a reply."""
    return st.sampled_from(enum_cls) if sent else enum_or_text(enum_cls)


def message_ids() -> st.SearchStrategy[str]:
    """UUID strings, in either case, of any version."""
    return st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper())


def aware_times() -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes with millisecond precision, in UTC or another fixed offset."""
    offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5))])
    return st.datetimes(min_value=MIN_TIME, max_value=MAX_TIME, timezones=offsets).map(
        lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
    )


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | short_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner, max_size=3),
    max_leaves=8,
)


def ledger_amounts(*, sent: bool = False) -> st.SearchStrategy[LedgerAmount]:
    return st.builds(
        LedgerAmount,
        amount=st.integers(min_value=-(2**63), max_value=2**63 - 1),
        currency=st.from_regex(r"[0-9]{3}", fullmatch=True),
        ledger_indicator=maybe(_enum(LedgerIndicator, sent)),
    )


def amounts(*, sent: bool = False) -> st.SearchStrategy[Amounts]:
    money = ledger_amounts(sent=sent)
    return st.builds(
        Amounts,
        request_amount=maybe(money),
        approved_amount=maybe(money),
        fee_amount=maybe(money),
        balance_amount=maybe(money),
        additional_amounts=maybe(st.dictionaries(short_text, money, max_size=2)),
    )


def institutions() -> st.SearchStrategy[Institution]:
    return st.builds(Institution, id=short_text, name=at_most(40))


def originators() -> st.SearchStrategy[Originator]:
    merchant_names = st.builds(
        MerchantName, name=at_most(23), city=at_most(13), region=at_most(2), country=at_most(2)
    )
    merchants = st.builds(
        Merchant,
        merchant_type=st.from_regex(r"[0-9]{4}", fullmatch=True),
        merchant_id=text_of(15),
        merchant_name=merchant_names,
    )
    return st.builds(
        Originator,
        institution=institutions(),
        terminal_id=text_of(8),
        merchant=merchants,
        operator_id=maybe(at_most(30)),
    )


def third_party_identifiers() -> st.SearchStrategy[tuple[ThirdPartyIdentifier, ...]]:
    identifier = st.builds(
        ThirdPartyIdentifier, institution_id=short_text, transaction_identifier=short_text
    )
    return tuples_of(identifier)


def tenders(*, sent: bool = False) -> st.SearchStrategy[Tender]:
    return st.builds(
        Tender,
        account_type=maybe(_enum(TenderAccountType, sent)),
        amount=ledger_amounts(sent=sent),
        card_number=maybe(st.from_regex(r"[0-9]{6}[0-9*]{0,13}", fullmatch=True)),
        reference=maybe(at_most(40)),
        tender_type=_enum(TenderType, sent),
    )


def products(*, sent: bool = False) -> st.SearchStrategy[Product]:
    barcode = st.from_regex(r"[0-9A-Za-z]{1,13}", fullmatch=True) if sent else short_text
    return st.builds(
        Product,
        product_id=st.from_regex(r"[0-9A-Za-z]{1,20}", fullmatch=True),
        barcode=maybe(barcode),
        name=maybe(st.text(min_size=1, max_size=40) if sent else at_most(40)),
    )


def slip_data(*, sent: bool = False) -> st.SearchStrategy[SlipData]:
    scale = maybe(st.floats(allow_nan=False, allow_infinity=False))
    lines = st.builds(
        SlipLine,
        text=short_text,
        barcode=maybe(st.builds(Barcode, data=short_text, encoding=short_text)),
        font_width_scale_factor=scale,
        font_height_scale_factor=scale,
        line=maybe(st.booleans()),
        cut=maybe(st.booleans()),
    )
    return st.builds(
        SlipData,
        message_lines=maybe(tuples_of(lines)),
        slip_width=maybe(st.integers(min_value=0, max_value=2**31 - 1)),
        issuer_reference=maybe(
            st.from_regex(r"[A-Z0-9]{1,40}", fullmatch=True) if sent else short_text
        ),
    )


def pos_infos(*, sent: bool = False) -> st.SearchStrategy[PosInfo]:
    entry_modes = st.builds(
        PosEntryMode,
        pan_entry_mode=_enum(PanEntryMode, sent),
        pin_entry_capability=_enum(PinEntryCapability, sent),
    )
    return st.builds(
        PosInfo,
        entry_mode=maybe(entry_modes),
        pos_condition_code=maybe(_enum(PosConditionCode, sent)),
    )


def pins(*, sent: bool = False) -> st.SearchStrategy[Pin]:
    """Every PIN shape; in what a till sends, never one the swagger does not name."""
    known_types = {member.value for member in PinType}
    encryption = st.builds(
        EncryptionParameters,
        pin_block_format=maybe(_enum(PinBlockFormat, sent)),
        account_number=st.from_regex(r"[0-9]{12}", fullmatch=True),
        key_index=maybe(st.integers(min_value=0, max_value=2**31 - 1)),
    )
    unknown = st.builds(
        UnknownPin,
        type=short_text.filter(lambda t: t not in known_types),
        fields=st.dictionaries(short_text.filter(lambda k: k != "type"), json_values, max_size=3),
    )
    known = st.one_of(
        # The swagger's ".{0,20}": any character but a line break.
        st.builds(PinClear, pin=st.text(st.characters(exclude_characters="\n"), max_size=20)),
        st.builds(
            PinEncrypted,
            pin_block=st.from_regex(r"[0-9A-Fa-f]{16}", fullmatch=True),
            encryption_parameters=maybe(encryption),
        ),
        st.builds(
            PinHashed,
            hash=st.from_regex(r"[0-9A-F]{1,64}", fullmatch=True),
            hashed_pin_parameters=maybe(st.builds(HashedPinParameters, name=at_most(20))),
        ),
    )
    return known if sent else known | unknown


def vouchers(*, sent: bool = False) -> st.SearchStrategy[Voucher]:
    return st.builds(
        Voucher,
        code=maybe(at_most(40)),
        expiry_date=maybe(aware_times()),
        redeem_instructions=maybe(tuples_of(short_text)),
        serial_number=maybe(at_most(40)),
        pin=maybe(pins(sent=sent)),
    )


def _transaction_fields(*, sent: bool) -> dict[str, st.SearchStrategy[Any]]:
    """Fields that a provision request and its response have in common."""
    return {
        "id": message_ids(),
        "time": aware_times(),
        "originator": originators(),
        "client": institutions(),
        "settlement_entity": maybe(institutions()),
        "receiver": maybe(institutions()),
        "third_party_identifiers": third_party_identifiers(),
        "slip_data": maybe(slip_data(sent=sent)),
        "basket_ref": maybe(short_text),
        "tran_type": maybe(_enum(TranType, sent)),
        "src_acc_type": maybe(_enum(AccountType, sent)),
        "dest_acc_type": maybe(_enum(AccountType, sent)),
        "stan": maybe(short_text),
        "rrn": maybe(short_text),
        "amounts": maybe(amounts(sent=sent)),
        "product": maybe(products(sent=sent)),
        "pos_info": maybe(pos_infos(sent=sent)),
    }


def transaction_labels() -> st.SearchStrategy[tuple[TransactionLabel, ...]]:
    return tuples_of(st.builds(TransactionLabel, name=short_text, value=short_text))


def customers() -> st.SearchStrategy[Customer]:
    return st.builds(
        Customer,
        first_name=maybe(at_most(40)),
        last_name=maybe(at_most(40)),
        address=maybe(at_most(80)),
    )


def payment_methods(*, sent: bool = False) -> st.SearchStrategy[PaymentMethod]:
    return st.builds(
        PaymentMethod,
        type=_enum(PaymentMethodType, sent),
        name=maybe(short_text),
        amount=ledger_amounts(sent=sent),
    )


def provision_requests() -> st.SearchStrategy[ProvisionRequest]:
    return st.builds(
        ProvisionRequest,
        **_transaction_fields(sent=True),
        tenders=maybe(tuples_of(tenders(sent=True))),
        voucher=maybe(vouchers(sent=True)),
        transaction_labels=maybe(transaction_labels()),
        customer=maybe(customers()),
        recipient=maybe(customers()),
        payment_methods=maybe(tuples_of(payment_methods(sent=True))),
    )


def provision_responses() -> st.SearchStrategy[ProvisionResponse]:
    return st.builds(
        ProvisionResponse,
        **_transaction_fields(sent=False),
        voucher=vouchers(),
        transaction_labels=maybe(transaction_labels()),
        recipient=maybe(customers()),
        tenders=maybe(tuples_of(tenders())),
    )


def tender_advices() -> st.SearchStrategy[TenderAdvice]:
    return st.builds(
        TenderAdvice,
        id=message_ids(),
        request_id=message_ids(),
        time=aware_times(),
        third_party_identifiers=third_party_identifiers(),
        stan=maybe(short_text),
        rrn=maybe(short_text),
        amounts=maybe(amounts(sent=True)),
        tenders=tuples_of(tenders(sent=True)),
    )


def basic_reversals() -> st.SearchStrategy[BasicReversal]:
    return st.builds(
        BasicReversal,
        id=message_ids(),
        request_id=message_ids(),
        time=aware_times(),
        third_party_identifiers=third_party_identifiers(),
        stan=maybe(short_text),
        rrn=maybe(short_text),
        amounts=maybe(amounts(sent=True)),
        reversal_reason=st.sampled_from(ReversalReason),
    )


def error_details() -> st.SearchStrategy[ErrorDetail]:
    return st.builds(
        ErrorDetail,
        id=maybe(message_ids()),
        original_id=maybe(message_ids()),
        error_type=enum_or_text(ErrorType),
        error_message=st.text(max_size=120),
        provider_error_code=maybe(short_text),
        provider_error_message=maybe(short_text),
        detail_message=maybe(st.dictionaries(short_text, json_values, max_size=3)),
    )


def voucher_lookup_responses() -> st.SearchStrategy[VoucherLookupResponse]:
    return st.builds(
        VoucherLookupResponse,
        pos_info=maybe(pos_infos()),
        settlement_entity=maybe(institutions()),
        receiver=maybe(institutions()),
        amounts=maybe(amounts()),
        voucher=vouchers(),
        product=maybe(products()),
    )


def any_message() -> st.SearchStrategy[Any]:
    """Any one of the envelopes."""
    return st.one_of(
        provision_requests(),
        provision_responses(),
        tender_advices(),
        basic_reversals(),
        error_details(),
        voucher_lookup_responses(),
    )


# --- fixed examples, for tests that need one particular, readable message ---------------

PROVISION_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
ADVICE_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
NOW = datetime(2026, 11, 23, 18, 1, 30, 123000, tzinfo=UTC)

INSTITUTION = Institution(id="1234", name="Corner Shop Holdings")
MERCHANT = Merchant(
    merchant_type="5411",
    merchant_id="123456789012345",
    merchant_name=MerchantName(name="Corner Shop", city="Cape Town", region="WC", country="ZA"),
)
ORIGINATOR = Originator(institution=INSTITUTION, terminal_id="TILL0001", merchant=MERCHANT)
IDENTIFIERS = (ThirdPartyIdentifier(institution_id="1234", transaction_identifier="T-1"),)
RAND_10 = LedgerAmount(amount=1000, currency="710")
CASH = Tender(amount=RAND_10, tender_type=TenderType.CASH)

REQUEST = ProvisionRequest(
    id=PROVISION_ID,
    time=NOW,
    originator=ORIGINATOR,
    client=INSTITUTION,
    third_party_identifiers=IDENTIFIERS,
    product=Product(product_id="AIRTIME10"),
)
RESPONSE = ProvisionResponse(
    id=PROVISION_ID,
    time=NOW,
    originator=ORIGINATOR,
    client=INSTITUTION,
    third_party_identifiers=IDENTIFIERS,
    voucher=Voucher(code="9876543210123456", serial_number="SN-1", pin=PinClear(pin="4321")),
)
CONFIRMATION = TenderAdvice(
    id=ADVICE_ID,
    request_id=PROVISION_ID,
    time=NOW,
    third_party_identifiers=IDENTIFIERS,
    tenders=(CASH,),
)
REVERSAL = BasicReversal(
    id=ADVICE_ID,
    request_id=PROVISION_ID,
    time=NOW,
    third_party_identifiers=IDENTIFIERS,
    reversal_reason=ReversalReason.TIMEOUT,
)
