"""The building blocks that the envelopes are made of: money, parties, products, slips.

Attribute names are snake_case; :mod:`voucher_core.wire` maps each one to the camelCase key
of the SUV interface. Required fields have no default, optional ones default to ``None`` and
are left out of the JSON when unset.
"""

import attrs

from voucher_core.messages import _validators as v
from voucher_core.messages.enums import (
    LedgerIndicator,
    PanEntryMode,
    PaymentMethodType,
    PinEntryCapability,
    PosConditionCode,
    TenderAccountType,
    TenderType,
)


@attrs.frozen(kw_only=True)
class LedgerAmount:
    """An amount of money in minor units (cents) and its ISO 4217 numeric currency code.

    >>> LedgerAmount(amount=79995, currency="710")
    LedgerAmount(amount=79995, currency='710', ledger_indicator=None)
    """

    amount: int = attrs.field(validator=v.int64)
    currency: str = attrs.field(validator=v.matches("[0-9]{3}"))
    ledger_indicator: LedgerIndicator | str | None = attrs.field(
        default=None, validator=v.optional(v.enum_or_str)
    )


@attrs.frozen(kw_only=True)
class Amounts:
    """The amounts of a transaction; an amount that is absent counts as zero."""

    request_amount: LedgerAmount | None = None
    approved_amount: LedgerAmount | None = None
    fee_amount: LedgerAmount | None = None
    balance_amount: LedgerAmount | None = None
    additional_amounts: dict[str, LedgerAmount] | None = None


@attrs.frozen(kw_only=True)
class Institution:
    """An institution taking part in a transaction: client, settlement entity, receiver."""

    id: str
    name: str = attrs.field(validator=v.max_length(40))


@attrs.frozen(kw_only=True)
class MerchantName:
    """A merchant's trading name and location, in ISO 8583 field-43 sized pieces."""

    name: str = attrs.field(validator=v.max_length(23))
    city: str = attrs.field(validator=v.max_length(13))
    region: str = attrs.field(validator=v.max_length(2))
    country: str = attrs.field(validator=v.max_length(2))


@attrs.frozen(kw_only=True)
class Merchant:
    """The card acceptor: its 15-character id, category code and name."""

    merchant_type: str = attrs.field(validator=v.matches("[0-9]{4}"))
    merchant_id: str = attrs.field(validator=v.exact_length(15))
    merchant_name: MerchantName


@attrs.frozen(kw_only=True)
class Originator:
    """Who started the transaction: institution, terminal (8 characters), merchant."""

    institution: Institution
    terminal_id: str = attrs.field(validator=v.exact_length(8))
    merchant: Merchant
    operator_id: str | None = attrs.field(default=None, validator=v.optional(v.max_length(30)))


@attrs.frozen(kw_only=True)
class ThirdPartyIdentifier:
    """One party's own reference for the transaction, which every other party must echo."""

    institution_id: str
    transaction_identifier: str


@attrs.frozen(kw_only=True)
class Tender:
    """A payment the customer has already made at the point of sale."""

    account_type: TenderAccountType | str | None = attrs.field(
        default=None, validator=v.optional(v.enum_or_str)
    )
    amount: LedgerAmount
    card_number: str | None = None
    reference: str | None = attrs.field(default=None, validator=v.optional(v.max_length(40)))
    tender_type: TenderType | str = attrs.field(validator=v.enum_or_str)


@attrs.frozen(kw_only=True)
class Product:
    """The vendor's product the voucher is for."""

    product_id: str = attrs.field(validator=v.matches("[0-9A-Za-z]{1,20}"))
    barcode: str | None = None
    name: str | None = None


@attrs.frozen(kw_only=True)
class Barcode:
    """A barcode to print on a slip line."""

    data: str
    encoding: str


@attrs.frozen(kw_only=True)
class SlipLine:
    """One line of the customer slip, with optional formatting."""

    text: str
    barcode: Barcode | None = None
    font_width_scale_factor: float | None = attrs.field(
        default=None, validator=v.optional(v.finite_number)
    )
    font_height_scale_factor: float | None = attrs.field(
        default=None, validator=v.optional(v.finite_number)
    )
    line: bool | None = attrs.field(default=None, validator=v.optional(v.boolean))
    cut: bool | None = attrs.field(default=None, validator=v.optional(v.boolean))


@attrs.frozen(kw_only=True)
class SlipData:
    """What may be printed on the customer slip."""

    message_lines: tuple[SlipLine, ...] | None = None
    slip_width: int | None = attrs.field(default=None, validator=v.optional(v.int32))
    issuer_reference: str | None = None


@attrs.frozen(kw_only=True)
class PosEntryMode:
    """How the terminal captured the card number and whether it can take a PIN."""

    pan_entry_mode: PanEntryMode | str = attrs.field(validator=v.enum_or_str)
    pin_entry_capability: PinEntryCapability | str = attrs.field(validator=v.enum_or_str)


@attrs.frozen(kw_only=True)
class PosInfo:
    """State of the point of sale during the transaction."""

    entry_mode: PosEntryMode | None = None
    pos_condition_code: PosConditionCode | str | None = attrs.field(
        default=None, validator=v.optional(v.enum_or_str)
    )


@attrs.frozen(kw_only=True)
class TransactionLabel:
    """A name/value tag for finding or grouping transactions; never used for decisions."""

    name: str
    value: str


@attrs.frozen(kw_only=True)
class Customer:
    """A person who asks for the transaction (``customer``) or receives its value
    (``recipient``). Every field is optional; names hold at most 40 characters, the address 80.
    """

    first_name: str | None = None
    last_name: str | None = None
    address: str | None = None


@attrs.frozen(kw_only=True)
class PaymentMethod:
    """Payment still to be collected from a third party as part of the request, unlike a
    :class:`Tender`, which was collected at the point of sale."""

    type: PaymentMethodType | str = attrs.field(validator=v.enum_or_str)
    name: str | None = None
    amount: LedgerAmount


__all__ = [
    "Amounts",
    "Barcode",
    "Customer",
    "Institution",
    "LedgerAmount",
    "Merchant",
    "MerchantName",
    "Originator",
    "PaymentMethod",
    "PosEntryMode",
    "PosInfo",
    "Product",
    "SlipData",
    "SlipLine",
    "Tender",
    "ThirdPartyIdentifier",
    "TransactionLabel",
]
