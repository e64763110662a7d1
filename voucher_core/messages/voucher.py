"""The voucher itself and the PIN that may protect it.

A voucher code and a PIN are what a customer redeems, so they are as good as cash: their
reprs are masked, and validation errors never quote them.

On the wire a PIN is one of three shapes told apart by a ``type`` key. The Python classes
do not carry that key (the class *is* the type); :mod:`voucher_core.wire` adds and reads it.
A PIN shape this version does not know is kept whole as :class:`UnknownPin`, so a reply from
a newer switch still parses.
"""

from datetime import datetime
from typing import Any, TypeAlias

import attrs

from voucher_core.messages import _validators as v
from voucher_core.messages.enums import PinBlockFormat


@attrs.frozen(kw_only=True)
class EncryptionParameters:
    """How a PIN block was built, for a switch that must translate it."""

    pin_block_format: PinBlockFormat | str | None = attrs.field(
        default=None, validator=v.optional(v.enum_or_str)
    )
    # Twelve digits of the card number: sensitive enough to keep out of logs.
    account_number: str = attrs.field(validator=v.matches("[0-9]{12}", secret=True), repr=v.masked)
    key_index: int | None = attrs.field(default=None, validator=v.optional(v.int32))


@attrs.frozen(kw_only=True)
class HashedPinParameters:
    """Names the hash algorithm used for a :class:`PinHashed`."""

    name: str


@attrs.frozen(kw_only=True)
class PinClear:
    """A PIN in the clear (wire type ``CLEAR_PIN``).

    >>> PinClear(pin="1234")
    PinClear(pin='***')
    """

    pin: str = attrs.field(repr=v.masked)


@attrs.frozen(kw_only=True)
class PinEncrypted:
    """A PIN as a 16-hex-digit encrypted PIN block (wire type ``ENCRYPTED_PIN``)."""

    pin_block: str = attrs.field(validator=v.matches("[0-9A-Fa-f]{16}", secret=True), repr=v.masked)
    encryption_parameters: EncryptionParameters | None = None


@attrs.frozen(kw_only=True)
class PinHashed:
    """A PIN as a hex hash (wire type ``HASHED_PIN``)."""

    hash: str = attrs.field(repr=v.masked)
    hashed_pin_parameters: HashedPinParameters | None = None


def _no_type_key(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    if not isinstance(value, dict):
        raise v.InvalidFieldTypeError(attribute.name, f"must be a dict, got {v.type_name(value)}")
    if "type" in value:
        raise v.InvalidFieldValueError(attribute.name, "must not repeat the type key")


@attrs.frozen(kw_only=True)
class UnknownPin:
    """A PIN variant this version does not know, kept as received.

    *type* is the wire discriminator; *fields* are all the other keys, untouched. The
    fields may well hold a secret, so they stay out of the repr.
    """

    type: str = attrs.field(validator=v.enum_or_str)
    fields: dict[str, Any] = attrs.field(validator=_no_type_key, repr=v.masked)


Pin: TypeAlias = PinClear | PinEncrypted | PinHashed | UnknownPin


@attrs.frozen(kw_only=True)
class Voucher:
    """The voucher: the code the customer redeems, its serial number, expiry and PIN.

    A request normally leaves everything unset; a response carries at least the code.

    >>> Voucher(code="1234567890", serial_number="SN1")
    Voucher(code='***', expiry_date=None, redeem_instructions=None, serial_number='SN1', pin=None)
    """

    code: str | None = attrs.field(
        default=None, validator=v.optional(v.max_length(40)), repr=v.masked
    )
    expiry_date: datetime | None = attrs.field(default=None, validator=v.optional(v.aware_datetime))
    redeem_instructions: tuple[str, ...] | None = None
    serial_number: str | None = attrs.field(default=None, validator=v.optional(v.max_length(40)))
    pin: Pin | None = None


__all__ = [
    "EncryptionParameters",
    "HashedPinParameters",
    "Pin",
    "PinClear",
    "PinEncrypted",
    "PinHashed",
    "UnknownPin",
    "Voucher",
]
