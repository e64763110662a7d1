"""What Electrum refuses in a message the originator sends, refused before it is sent.

A ``ProvisionRequest``, ``TenderAdvice`` or ``BasicReversal`` is checked whole when it is
built, so a typo surfaces in the till's own code and not as a 400 from the switch after the
customer was approved. The rules are the swagger's, for every part of the message:

* an enum field holds one of the swagger's values (``tenderType`` ``"cash"`` is refused);
* a string field holds a string, a required one too (``Institution.id`` may not be ``None``);
* ``pattern``\\ s match the whole string, ``minLength``/``maxLength`` are kept
  (:data:`RULES`, for the fields whose part does not already check them when built);
* a PIN is one of the three shapes the swagger names.

A violation raises :class:`~voucher_core.errors.InvalidFieldValueError` (or
:class:`~voucher_core.errors.InvalidFieldTypeError`) whose ``field`` is the path from the
message's root in wire names, ``tenders[0].cardNumber``. A card number, PIN or hash is never
quoted in the message.

Replies are another matter: a client must read what a newer switch sends. The parts a message
is made of therefore accept any string for an enum, and :func:`voucher_core.wire.from_wire`
reads every message inside :func:`tolerated`, where these checks are off (a request read back
from a journal stays readable too). Reading ``strict=True``, as a server reads requests,
keeps them on.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final

import attrs

from voucher_core.errors import InvalidFieldTypeError, InvalidFieldValueError
from voucher_core.messages import parts, voucher
from voucher_core.messages._validators import type_name, wire_name
from voucher_core.messages.enums import PinType

__all__ = ["RULES", "Rule", "check", "tolerated"]

_TOLERANT: Final[ContextVar[bool]] = ContextVar("voucher_core_tolerant", default=False)


@contextmanager
def tolerated() -> Iterator[None]:
    """Build messages without the outgoing checks: for reading what was received."""
    token = _TOLERANT.set(True)
    try:
        yield
    finally:
        _TOLERANT.reset(token)


@attrs.frozen
class Rule:
    """A swagger constraint on one string field: a whole-string pattern, a length range."""

    pattern: str | None = None
    min_length: int = 0
    max_length: int | None = None
    secret: bool = False

    def problem(self, value: str) -> str | None:
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            shown = "" if self.secret else f", got {value!r}"
            return f"must match {self.pattern}{shown}"
        if len(value) < self.min_length:
            return f"must be at least {self.min_length} characters, got {len(value)}"
        if self.max_length is not None and len(value) > self.max_length:
            return f"must be at most {self.max_length} characters, got {len(value)}"
        return None


# The swagger's patterns and lengths that a part does not check when it is built (those it
# does, such as Originator.terminalId, hold for replies as well and are not repeated here).
RULES: Final[dict[tuple[type[Any], str], Rule]] = {
    (parts.Tender, "card_number"): Rule(pattern="[0-9]{6}[0-9*]{0,13}", secret=True),
    (parts.Product, "barcode"): Rule(pattern="[0-9A-Za-z]{1,13}"),
    (parts.Product, "name"): Rule(min_length=1, max_length=40),
    (parts.SlipData, "issuer_reference"): Rule(pattern="[A-Z0-9]{1,40}"),
    (parts.Customer, "first_name"): Rule(max_length=40),
    (parts.Customer, "last_name"): Rule(max_length=40),
    (parts.Customer, "address"): Rule(max_length=80),
    (voucher.HashedPinParameters, "name"): Rule(max_length=20),
    (voucher.PinClear, "pin"): Rule(pattern=".{0,20}", secret=True),
    (voucher.PinHashed, "hash"): Rule(pattern="[0-9,A-F]{1,512}", secret=True),
}

_Check = Callable[[Any, str], None]


def _fail_type(path: str, expected: str, value: object) -> None:
    raise InvalidFieldTypeError(path, f"must be {expected}, got {type_name(value)}")


def _string(rule: Rule | None) -> _Check:
    def check_string(value: Any, path: str) -> None:
        if not isinstance(value, str):
            _fail_type(path, "a string", value)
        problem = None if rule is None else rule.problem(value)
        if problem is not None:
            raise InvalidFieldValueError(path, problem)

    return check_string


def _member(enum_cls: type[enum.Enum]) -> _Check:
    values = frozenset(member.value for member in enum_cls)
    listed = ", ".join(sorted(values))

    def check_member(value: Any, path: str) -> None:
        if not isinstance(value, str):
            _fail_type(path, "a string", value)
        if value not in values:
            shown = value[:40]
            raise InvalidFieldValueError(path, f"must be one of {listed}, got {shown!r}")

    return check_member


def _part(cls: type[Any]) -> _Check:
    def check_part(value: Any, path: str) -> None:
        if not isinstance(value, cls):
            _fail_type(path, f"a {cls.__name__}", value)
        _walk(value, path)

    return check_part


def _pin(value: Any, path: str) -> None:
    if isinstance(value, voucher.UnknownPin):
        known = ", ".join(sorted(pin_type.value for pin_type in PinType))
        raise InvalidFieldValueError(f"{path}.type", f"must be one of {known}, got {value.type!r}")
    if not isinstance(value, voucher.PinClear | voucher.PinEncrypted | voucher.PinHashed):
        _fail_type(path, "a PIN", value)
    _walk(value, path)


def _array(item: _Check) -> _Check:
    def check_array(value: Any, path: str) -> None:
        if not isinstance(value, tuple | list):
            _fail_type(path, "an array", value)
        for index, element in enumerate(value):
            item(element, f"{path}[{index}]")

    return check_array


def _mapping(item: _Check) -> _Check:
    def check_mapping(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            _fail_type(path, "an object", value)
        for key, element in value.items():
            item(element, f"{path}.{key}")

    return check_mapping


def _no_check(_value: Any, _path: str) -> None:
    """Numbers, booleans and times: their own validators ran when the part was built."""


def _check_for(hint: Any, rule: Rule | None) -> _Check:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        enums = [arg for arg in members if isinstance(arg, type) and issubclass(arg, enum.Enum)]
        if enums:
            return _member(enums[0])
        if voucher.PinClear in members:
            return _pin
        (hint,) = members
    origin = typing.get_origin(hint)
    if origin is tuple:
        return _array(_check_for(typing.get_args(hint)[0], None))
    if origin is dict:
        return _mapping(_check_for(typing.get_args(hint)[1], None))
    if hint is str:
        return _string(rule)
    if attrs.has(hint):
        return _part(hint)
    return _no_check


_PLANS: dict[type[Any], tuple[tuple[str, str, bool, _Check], ...]] = {}


def _plan(cls: type[Any]) -> tuple[tuple[str, str, bool, _Check], ...]:
    """For each field of *cls*: its name, wire name, whether it is optional, its check."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        fields = attrs.fields(cls)
        plan = tuple(
            (
                field.name,
                wire_name(field.name),
                type(None) in typing.get_args(hints[field.name]),
                _check_for(hints[field.name], RULES.get((cls, field.name))),
            )
            for field in fields
        )
        _PLANS[cls] = plan
    return plan


def _walk(message: Any, path: str) -> None:
    for name, wire, optional, check_field in _plan(type(message)):
        value = getattr(message, name)
        if value is None and optional:
            continue
        check_field(value, f"{path}.{wire}" if path else wire)


def check(message: Any) -> None:
    """Raise if *message* holds a value Electrum would refuse (see the module docstring).

    Does nothing inside :func:`tolerated`.
    """
    if not _TOLERANT.get():
        _walk(message, "")
