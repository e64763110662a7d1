"""Reusable attrs validators for the message classes.

Every validator names the offending field by its *wire* name (``terminalId``, not
``terminal_id``), because that is the name an operator sees in logs and in a server's
400 reply. The name is derived from the attrs attribute, so a validator never has to be
told which field it guards.

The errors raised here carry the field and the reason separately
(:class:`~voucher_core.errors.InvalidFieldValueError`,
:class:`~voucher_core.errors.InvalidFieldTypeError`, both a
:class:`~voucher_core.errors.MessageError`), so the JSON codec can splice the field into a
full path such as ``originator.terminalId`` when a parsed message fails construction.
"""

import math
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any, TypeAlias

import attrs

from voucher_core.errors import InvalidFieldTypeError, InvalidFieldValueError

Validator: TypeAlias = Callable[[Any, "attrs.Attribute[Any]", Any], None]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@cache
def wire_name(attribute_name: str) -> str:
    """The camelCase JSON key for a snake_case attribute name.

    >>> wire_name("third_party_identifiers")
    'thirdPartyIdentifiers'
    >>> wire_name("id")
    'id'
    """
    head, *rest = attribute_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def type_name(value: object) -> str:
    """A short, JSON-flavoured name for the type of *value*, for error messages."""
    if value is None:
        return "null"
    return type(value).__name__


def _require_str(attribute: "attrs.Attribute[Any]", value: object) -> str:
    if not isinstance(value, str):
        raise InvalidFieldTypeError(
            wire_name(attribute.name), f"must be a string, got {type_name(value)}"
        )
    return value


def exact_length(length: int) -> Validator:
    """The string has exactly *length* characters."""

    def validate(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        actual = len(_require_str(attribute, value))
        if actual != length:
            raise InvalidFieldValueError(
                wire_name(attribute.name), f"must be exactly {length} characters, got {actual}"
            )

    return validate


def max_length(length: int) -> Validator:
    """The string has at most *length* characters."""

    def validate(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        actual = len(_require_str(attribute, value))
        if actual > length:
            raise InvalidFieldValueError(
                wire_name(attribute.name), f"must be at most {length} characters, got {actual}"
            )

    return validate


def matches(pattern: str, *, secret: bool = False) -> Validator:
    """The whole string matches the regular expression *pattern*.

    A *secret* value is never quoted in the error message.
    """
    compiled = re.compile(pattern)

    def validate(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        if compiled.fullmatch(_require_str(attribute, value)) is None:
            shown = "" if secret else f", got {value!r}"
            raise InvalidFieldValueError(wire_name(attribute.name), f"must match {pattern}{shown}")

    return validate


def uuid_string(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    """The string is a UUID in 8-4-4-4-12 hex form (any case, any version)."""
    if _UUID.fullmatch(_require_str(attribute, value)) is None:
        raise InvalidFieldValueError(
            wire_name(attribute.name), f"must be a UUID (8-4-4-4-12 hex digits), got {value!r}"
        )


def aware_datetime(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    """The value is a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise InvalidFieldTypeError(
            wire_name(attribute.name), f"must be a datetime, got {type_name(value)}"
        )
    if value.utcoffset() is None:
        raise InvalidFieldValueError(wire_name(attribute.name), "must be timezone-aware")


def _integer_in(low: int, high: int, kind: str) -> Validator:
    def validate(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        # bool is an int subclass, but True is not an amount.
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidFieldTypeError(
                wire_name(attribute.name), f"must be an integer, got {type_name(value)}"
            )
        if not low <= value <= high:
            raise InvalidFieldValueError(
                wire_name(attribute.name), f"must fit in a signed {kind}, got {value}"
            )

    return validate


int64 = _integer_in(_INT64_MIN, _INT64_MAX, "64-bit integer")
int32 = _integer_in(_INT32_MIN, _INT32_MAX, "32-bit integer")


def finite_number(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    """The value is a finite int or float (JSON has no NaN or infinity)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidFieldTypeError(
            wire_name(attribute.name), f"must be a number, got {type_name(value)}"
        )
    if not math.isfinite(value):
        raise InvalidFieldValueError(wire_name(attribute.name), f"must be finite, got {value}")


def boolean(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    """The value is a bool."""
    if not isinstance(value, bool):
        raise InvalidFieldTypeError(
            wire_name(attribute.name), f"must be a boolean, got {type_name(value)}"
        )


def enum_or_str(_instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    """The value is a member of the field's enum or a plain string (a value we do not know)."""
    _require_str(attribute, value)


def optional(validator: Validator) -> Validator:
    """Apply *validator* unless the value is ``None``."""

    def validate(instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return validate


def masked(value: object) -> str:
    """Repr for a secret: shows whether it is set, never what it is."""
    return "None" if value is None else "'***'"


__all__ = [
    "InvalidFieldTypeError",
    "InvalidFieldValueError",
    "Validator",
    "aware_datetime",
    "boolean",
    "enum_or_str",
    "exact_length",
    "finite_number",
    "int32",
    "int64",
    "masked",
    "matches",
    "max_length",
    "optional",
    "type_name",
    "uuid_string",
    "wire_name",
]
