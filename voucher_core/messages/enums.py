"""Enumerated values of the SUV interface, version 1.14.0.

Each enum's members spell their wire value exactly. Fields typed with these enums are
annotated ``Enum | str``: a reply from a newer switch may carry a value this version has
never heard of, and that must not make an otherwise good reply unreadable. The codec turns
a known value into the member and leaves an unknown one as a plain string.
"""

import enum


class TranType(enum.StrEnum):
    """The kind of financial transaction (ISO 8583 processing code, spelled out)."""

    GOODS_AND_SERVICES = "GOODS_AND_SERVICES"
    CASH_WITHDRAWAL = "CASH_WITHDRAWAL"
    DEBIT_ADJUSTMENT = "DEBIT_ADJUSTMENT"
    GOODS_AND_SERVICES_WITH_CASH_BACK = "GOODS_AND_SERVICES_WITH_CASH_BACK"
    NON_CASH = "NON_CASH"
    RETURNS = "RETURNS"
    DEPOSIT = "DEPOSIT"
    CREDIT_ADJUSTMENT = "CREDIT_ADJUSTMENT"
    GENERAL_CREDIT = "GENERAL_CREDIT"
    AVAILABLE_FUNDS_INQUIRY = "AVAILABLE_FUNDS_INQUIRY"
    BALANCE_INQUIRY = "BALANCE_INQUIRY"
    GENERAL_INQUIRY = "GENERAL_INQUIRY"
    CARD_VERIFICATION_INQUIRY = "CARD_VERIFICATION_INQUIRY"
    CARDHOLDER_ACCOUNTS_TRANSFER = "CARDHOLDER_ACCOUNTS_TRANSFER"
    GENERAL_TRANSFER = "GENERAL_TRANSFER"
    PAYMENT_FROM_ACCOUNT = "PAYMENT_FROM_ACCOUNT"
    GENERAL_PAYMENT = "GENERAL_PAYMENT"
    PAYMENT_TO_ACCOUNT = "PAYMENT_TO_ACCOUNT"
    PAYMENT_FROM_ACCOUNT_TO_ACCOUNT = "PAYMENT_FROM_ACCOUNT_TO_ACCOUNT"
    PLACE_HOLD_ON_CARD = "PLACE_HOLD_ON_CARD"
    GENERAL_ADMIN = "GENERAL_ADMIN"
    CHANGE_PIN = "CHANGE_PIN"
    CARD_HOLDER_INQUIRY = "CARD_HOLDER_INQUIRY"
    POINTS_INQUIRY = "POINTS_INQUIRY"


class AccountType(enum.StrEnum):
    """Source or destination account of a provision (``srcAccType``, ``destAccType``)."""

    DEFAULT = "DEFAULT"
    SAVINGS = "SAVINGS"
    CHEQUE = "CHEQUE"
    CREDIT = "CREDIT"
    UNIVERSAL = "UNIVERSAL"
    ELECTRONIC_PURSE = "ELECTRONIC_PURSE"
    GIFT_CARD = "GIFT_CARD"
    STORED_VALUE = "STORED_VALUE"


class TenderAccountType(enum.StrEnum):
    """Account a tender was drawn on; unlike :class:`AccountType` it has no gift card."""

    DEFAULT = "DEFAULT"
    SAVINGS = "SAVINGS"
    CHEQUE = "CHEQUE"
    CREDIT = "CREDIT"
    UNIVERSAL = "UNIVERSAL"
    ELECTRONIC_PURSE = "ELECTRONIC_PURSE"
    STORED_VALUE = "STORED_VALUE"


class TenderType(enum.StrEnum):
    """How the customer paid at the point of sale."""

    CASH = "CASH"
    CHEQUE = "CHEQUE"
    CREDIT_CARD = "CREDIT_CARD"
    DEBIT_CARD = "DEBIT_CARD"
    WALLET = "WALLET"
    ROUNDING = "ROUNDING"
    GIFT_CARD = "GIFT_CARD"
    LOYALTY_CARD = "LOYALTY_CARD"
    OTHER = "OTHER"


class PaymentMethodType(enum.StrEnum):
    """The general kind of a :class:`PaymentMethod`: payment still to be collected."""

    AN_32_TOKEN = "AN_32_TOKEN"
    LOYALTY_CARD = "LOYALTY_CARD"
    CARD = "CARD"
    ACCOUNT = "ACCOUNT"
    REWARD = "REWARD"


class LedgerIndicator(enum.StrEnum):
    """Direction of a :class:`LedgerAmount` when it could go either way."""

    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class ReversalReason(enum.StrEnum):
    """Why a provision is being reversed."""

    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    RESPONSE_NOT_FINAL = "RESPONSE_NOT_FINAL"


class ErrorType(enum.StrEnum):
    """Category of a failure reported in an :class:`ErrorDetail`."""

    DUPLICATE_RECORD = "DUPLICATE_RECORD"
    FORMAT_ERROR = "FORMAT_ERROR"
    FUNCTION_NOT_SUPPORTED = "FUNCTION_NOT_SUPPORTED"
    GENERAL_ERROR = "GENERAL_ERROR"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    ROUTING_ERROR = "ROUTING_ERROR"
    TRANSACTION_NOT_SUPPORTED = "TRANSACTION_NOT_SUPPORTED"
    UNABLE_TO_LOCATE_RECORD = "UNABLE_TO_LOCATE_RECORD"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    VOUCHER_ALREADY_REDEEMED = "VOUCHER_ALREADY_REDEEMED"
    VOUCHER_ALREADY_PROVISIONED = "VOUCHER_ALREADY_PROVISIONED"
    VOUCHER_ALREADY_CONFIRMED = "VOUCHER_ALREADY_CONFIRMED"
    VOUCHER_ALREADY_REVERSED = "VOUCHER_ALREADY_REVERSED"
    VOUCHER_ALREADY_REFUNDED = "VOUCHER_ALREADY_REFUNDED"
    VOUCHER_NOT_REFUNDED = "VOUCHER_NOT_REFUNDED"
    VOUCHER_NOT_REDEEMABLE = "VOUCHER_NOT_REDEEMABLE"
    VOUCHER_NOT_REDEEMED = "VOUCHER_NOT_REDEEMED"
    VOUCHER_STATUS_UNKNOWN = "VOUCHER_STATUS_UNKNOWN"
    REDEMPTION_ALREADY_CONFIRMED = "REDEMPTION_ALREADY_CONFIRMED"
    REDEMPTION_NOT_CONFIRMED = "REDEMPTION_NOT_CONFIRMED"
    REDEMPTION_ALREADY_REVERSED = "REDEMPTION_ALREADY_REVERSED"
    REFUND_ALREADY_CONFIRMED = "REFUND_ALREADY_CONFIRMED"
    REFUND_ALREADY_REVERSED = "REFUND_ALREADY_REVERSED"
    INVALID_MERCHANT = "INVALID_MERCHANT"
    INVALID_VOUCHER = "INVALID_VOUCHER"
    AUTHENTICATION_ERROR = "AUTHENTICATION_ERROR"
    INSUFFICIENT_AMOUNT = "INSUFFICIENT_AMOUNT"
    DO_NOT_HONOUR = "DO_NOT_HONOUR"


class PinType(enum.StrEnum):
    """The ``type`` discriminator that tells the PIN variants apart on the wire."""

    CLEAR_PIN = "CLEAR_PIN"
    ENCRYPTED_PIN = "ENCRYPTED_PIN"
    HASHED_PIN = "HASHED_PIN"


class PinBlockFormat(enum.StrEnum):
    """ISO 9564 PIN block format used before encryption."""

    ISO_9564_FORMAT_0 = "ISO_9564_FORMAT_0"
    ISO_9564_FORMAT_1 = "ISO_9564_FORMAT_1"
    ISO_9564_FORMAT_3 = "ISO_9564_FORMAT_3"


class PanEntryMode(enum.StrEnum):
    """How the terminal captured the card number."""

    UNKNOWN = "UNKNOWN"
    MANUAL = "MANUAL"
    MAGSTRIPE_NO_CVV = "MAGSTRIPE_NO_CVV"
    BARCODE = "BARCODE"
    OCR = "OCR"
    ICC_CVV = "ICC_CVV"
    CONTACTLESS_ICC = "CONTACTLESS_ICC"
    MAGSTRIPE_CVV = "MAGSTRIPE_CVV"
    CONTACTLESS_MAGSTRIPE = "CONTACTLESS_MAGSTRIPE"
    ICC_NO_CVV = "ICC_NO_CVV"
    ORIG_MODE = "ORIG_MODE"
    FALLBACK = "FALLBACK"


class PinEntryCapability(enum.StrEnum):
    """Whether the terminal can take a PIN."""

    UNKNOWN = "UNKNOWN"
    CAN_ACCEPT = "CAN_ACCEPT"
    CANNOT_ACCEPT = "CANNOT_ACCEPT"


class PosConditionCode(enum.StrEnum):
    """Circumstances of the sale at the point of sale."""

    NORMAL_PRESENTMENT = "NORMAL_PRESENTMENT"
    CUSTOMER_NOT_PRESENT = "CUSTOMER_NOT_PRESENT"
    CUSTOMER_PRESENT_AND_CARD_NOT_PRESENT = "CUSTOMER_PRESENT_AND_CARD_NOT_PRESENT"
    CUSTOMER_IDENTITY_VERIFIED = "CUSTOMER_IDENTITY_VERIFIED"
    PUBLIC_UTILITY_TERMINAL = "PUBLIC_UTILITY_TERMINAL"
    CUSTOMER_TERMINAL = "CUSTOMER_TERMINAL"
    MANUAL_REVERSAL = "MANUAL_REVERSAL"
    UNATTENDED_TERMINAL_AND_CARD_CAN_BE_RETAINED = "UNATTENDED_TERMINAL_AND_CARD_CAN_BE_RETAINED"
    UNATTENDED_TERMINAL_AND_CARD_CANNOT_BE_RETAINED = (
        "UNATTENDED_TERMINAL_AND_CARD_CANNOT_BE_RETAINED"
    )


__all__ = [
    "AccountType",
    "ErrorType",
    "LedgerIndicator",
    "PanEntryMode",
    "PinBlockFormat",
    "PinEntryCapability",
    "PinType",
    "PosConditionCode",
    "ReversalReason",
    "TenderAccountType",
    "TenderType",
    "TranType",
]
