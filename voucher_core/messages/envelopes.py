"""The messages themselves: what the originator sends to the switch and what comes back.

==========================  ================================================
``ProvisionRequest``        sent to provision (and, unchanged, to retry)
``ProvisionResponse``       the switch's answer carrying the voucher
``TenderAdvice``            confirms a provision once the customer has paid
``BasicReversal``           cancels a provision that must not stand
``ErrorDetail``             body of any non-2xx reply
``VoucherLookupResponse``   answer to a lookup by provision id
==========================  ================================================

Every message id (and an advice's ``request_id``) is a UUID; construction checks the
8-4-4-4-12 shape. ``time`` must be timezone-aware, so the codec can always write UTC.
"""

from datetime import datetime
from typing import Any

import attrs

from voucher_core.messages import _validators as v
from voucher_core.messages import outgoing
from voucher_core.messages.enums import AccountType, ErrorType, ReversalReason, TranType
from voucher_core.messages.parts import (
    Amounts,
    Customer,
    Institution,
    Originator,
    PaymentMethod,
    PosInfo,
    Product,
    SlipData,
    Tender,
    ThirdPartyIdentifier,
    TransactionLabel,
)
from voucher_core.messages.voucher import Voucher

_optional_enum = v.optional(v.enum_or_str)


@attrs.frozen(kw_only=True)
class ProvisionRequest:
    """Ask the switch for a voucher. A retry sends the very same object again.

    Values Electrum would refuse are refused here (:mod:`voucher_core.messages.outgoing`).
    """

    id: str = attrs.field(validator=v.uuid_string)
    time: datetime = attrs.field(validator=v.aware_datetime)
    originator: Originator
    client: Institution
    settlement_entity: Institution | None = None
    receiver: Institution | None = None
    third_party_identifiers: tuple[ThirdPartyIdentifier, ...]
    slip_data: SlipData | None = None
    basket_ref: str | None = None
    tran_type: TranType | str | None = attrs.field(default=None, validator=_optional_enum)
    src_acc_type: AccountType | str | None = attrs.field(default=None, validator=_optional_enum)
    dest_acc_type: AccountType | str | None = attrs.field(default=None, validator=_optional_enum)
    stan: str | None = None
    rrn: str | None = None
    amounts: Amounts | None = None
    tenders: tuple[Tender, ...] | None = None
    voucher: Voucher | None = None
    product: Product | None = None
    pos_info: PosInfo | None = None
    transaction_labels: tuple[TransactionLabel, ...] | None = None
    customer: Customer | None = None
    recipient: Customer | None = None
    payment_methods: tuple[PaymentMethod, ...] | None = None

    def __attrs_post_init__(self) -> None:
        outgoing.check(self)


@attrs.frozen(kw_only=True)
class ProvisionResponse:
    """The provisioned voucher, with the transaction's details echoed back."""

    id: str = attrs.field(validator=v.uuid_string)
    time: datetime = attrs.field(validator=v.aware_datetime)
    originator: Originator
    client: Institution
    settlement_entity: Institution | None = None
    receiver: Institution | None = None
    third_party_identifiers: tuple[ThirdPartyIdentifier, ...]
    slip_data: SlipData | None = None
    basket_ref: str | None = None
    tran_type: TranType | str | None = attrs.field(default=None, validator=_optional_enum)
    src_acc_type: AccountType | str | None = attrs.field(default=None, validator=_optional_enum)
    dest_acc_type: AccountType | str | None = attrs.field(default=None, validator=_optional_enum)
    stan: str | None = None
    rrn: str | None = None
    amounts: Amounts | None = None
    voucher: Voucher
    product: Product | None = None
    pos_info: PosInfo | None = None
    transaction_labels: tuple[TransactionLabel, ...] | None = None
    recipient: Customer | None = None
    tenders: tuple[Tender, ...] | None = None


@attrs.frozen(kw_only=True)
class TenderAdvice:
    """Confirmation: the customer paid, the provision identified by ``request_id`` stands.

    ``third_party_identifiers`` must be the response's array exactly as received (the
    request's if no response arrived). A repeated advice is the same object again.
    """

    id: str = attrs.field(validator=v.uuid_string)
    request_id: str = attrs.field(validator=v.uuid_string)
    time: datetime = attrs.field(validator=v.aware_datetime)
    third_party_identifiers: tuple[ThirdPartyIdentifier, ...]
    stan: str | None = None
    rrn: str | None = None
    amounts: Amounts | None = None
    tenders: tuple[Tender, ...]

    def __attrs_post_init__(self) -> None:
        outgoing.check(self)


@attrs.frozen(kw_only=True)
class BasicReversal:
    """Reversal: the provision identified by ``request_id`` must be undone.

    Without ``amounts`` the reversal is for the full amount.
    """

    id: str = attrs.field(validator=v.uuid_string)
    request_id: str = attrs.field(validator=v.uuid_string)
    time: datetime = attrs.field(validator=v.aware_datetime)
    third_party_identifiers: tuple[ThirdPartyIdentifier, ...]
    stan: str | None = None
    rrn: str | None = None
    amounts: Amounts | None = None
    reversal_reason: ReversalReason | str = attrs.field(validator=v.enum_or_str)

    def __attrs_post_init__(self) -> None:
        outgoing.check(self)


@attrs.frozen(kw_only=True)
class ErrorDetail:
    """Why an operation failed: the body of a 4xx or 5xx reply.

    Parsing is deliberately lenient: ``id`` may be missing and ``error_message`` may be
    longer than the 80 characters the interface promises, because real servers do both.
    """

    id: str | None = None
    original_id: str | None = None
    error_type: ErrorType | str = attrs.field(validator=v.enum_or_str)
    error_message: str
    provider_error_code: str | None = None
    provider_error_message: str | None = None
    detail_message: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class VoucherLookupResponse:
    """What the switch knows about a voucher, found by the provision request's id."""

    pos_info: PosInfo | None = None
    settlement_entity: Institution | None = None
    receiver: Institution | None = None
    amounts: Amounts | None = None
    voucher: Voucher
    product: Product | None = None


__all__ = [
    "BasicReversal",
    "ErrorDetail",
    "ProvisionRequest",
    "ProvisionResponse",
    "TenderAdvice",
    "VoucherLookupResponse",
]
