"""Typed, validated, immutable models of the Electrum SUV messages an originator exchanges.

These are plain attrs values: they know nothing about JSON. :mod:`voucher_core.wire` turns
them into the interface's camelCase JSON and back.

A message that breaks a rule of the interface is refused when it is built, with a
:class:`MessageError`: an :class:`InvalidFieldValueError` (also a ``ValueError``) or an
:class:`InvalidFieldTypeError` (also a ``TypeError``) naming the field by its wire name.
"""

from voucher_core.errors import InvalidFieldTypeError, InvalidFieldValueError, MessageError
from voucher_core.messages.enums import (
    AccountType,
    ErrorType,
    LedgerIndicator,
    PanEntryMode,
    PaymentMethodType,
    PinBlockFormat,
    PinEntryCapability,
    PinType,
    PosConditionCode,
    ReversalReason,
    TenderAccountType,
    TenderType,
    TranType,
)
from voucher_core.messages.envelopes import (
    BasicReversal,
    ErrorDetail,
    ProvisionRequest,
    ProvisionResponse,
    TenderAdvice,
    VoucherLookupResponse,
)
from voucher_core.messages.parts import (
    Amounts,
    Barcode,
    Customer,
    Institution,
    LedgerAmount,
    Merchant,
    MerchantName,
    Originator,
    PaymentMethod,
    PosEntryMode,
    PosInfo,
    Product,
    SlipData,
    SlipLine,
    Tender,
    ThirdPartyIdentifier,
    TransactionLabel,
)
from voucher_core.messages.voucher import (
    EncryptionParameters,
    HashedPinParameters,
    Pin,
    PinClear,
    PinEncrypted,
    PinHashed,
    UnknownPin,
    Voucher,
)

__all__ = [
    "AccountType",
    "Amounts",
    "Barcode",
    "BasicReversal",
    "Customer",
    "EncryptionParameters",
    "ErrorDetail",
    "ErrorType",
    "HashedPinParameters",
    "Institution",
    "InvalidFieldTypeError",
    "InvalidFieldValueError",
    "LedgerAmount",
    "LedgerIndicator",
    "Merchant",
    "MerchantName",
    "MessageError",
    "Originator",
    "PanEntryMode",
    "PaymentMethod",
    "PaymentMethodType",
    "Pin",
    "PinBlockFormat",
    "PinClear",
    "PinEncrypted",
    "PinEntryCapability",
    "PinHashed",
    "PinType",
    "PosConditionCode",
    "PosEntryMode",
    "PosInfo",
    "Product",
    "ProvisionRequest",
    "ProvisionResponse",
    "ReversalReason",
    "SlipData",
    "SlipLine",
    "Tender",
    "TenderAccountType",
    "TenderAdvice",
    "TenderType",
    "ThirdPartyIdentifier",
    "TranType",
    "TransactionLabel",
    "UnknownPin",
    "Voucher",
    "VoucherLookupResponse",
]
