"""Exceptions the core raises. All derive from :class:`VoucherError`.

The tree, as a host catches it::

    VoucherError
    ├── InvalidEvent             an event that does not apply in the transaction's state
    ├── LookupRefused            a lookup before the initial processing concluded
    └── MessageError             a message, or a document read as one, is not valid
        ├── InvalidFieldValueError   (also a ValueError) a field breaks a constraint
        ├── InvalidFieldTypeError    (also a TypeError) a field holds the wrong type
        └── WireFormatError          (also a ValueError) a document is not the message

The adapters' errors (storage, owner claims, tokens) join the same tree in
:mod:`voucher_adapters.errors`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

__all__ = [
    "FieldError",
    "InvalidArgument",
    "InvalidEvent",
    "InvalidFieldTypeError",
    "InvalidFieldValueError",
    "LookupRefused",
    "MessageError",
    "SnapshotError",
    "VoucherError",
    "WireFormatError",
]


class VoucherError(Exception):
    """Base class of every error voucher-core raises on purpose."""


class InvalidEvent(VoucherError):
    """An event was fed to a transaction in a state where it does not apply.

    The transaction is left exactly as it was.
    """

    def __init__(self, transaction_id: str, state: str, event: str, hint: str = "") -> None:
        self.transaction_id = transaction_id
        self.state = state
        self.event = event
        message = f"event {event!r} does not apply to transaction {transaction_id} in state {state}"
        super().__init__(f"{message}: {hint}" if hint else message)


class LookupRefused(VoucherError):
    """A lookup was asked for before the transaction's initial processing concluded."""

    def __init__(self, transaction_id: str, state: str) -> None:
        self.transaction_id = transaction_id
        self.state = state
        super().__init__(
            f"transaction {transaction_id} is still {state}: no lookups until its initial "
            "processing concludes"
        )


class MessageError(VoucherError):
    """A message, or a document read as one, is not valid: the base of the errors below.

    Each concrete error is also the built-in exception it has always been (``ValueError``, or
    ``TypeError`` for a value of the wrong type), so existing ``except`` clauses still apply.
    """


class InvalidFieldValueError(MessageError, ValueError):
    """A field holds a value of the right type that breaks a constraint."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}" if field else reason)
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.reason))


class InvalidFieldTypeError(MessageError, TypeError):
    """A field holds a value of the wrong type."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}" if field else reason)
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.reason))


@attrs.frozen
class FieldError:
    """One bad field: its wire path (``""`` for the whole document) and what is wrong."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} {self.reason}" if self.path else self.reason


class WireFormatError(MessageError, ValueError):
    """A document could not be read as the expected message; ``errors`` says where and why."""

    message_type: str
    errors: tuple[FieldError, ...]

    def __init__(self, message_type: str, errors: Iterable[FieldError]) -> None:
        self.message_type = message_type
        self.errors = tuple(errors)
        super().__init__(f"{message_type}: " + "; ".join(map(str, self.errors)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message_type, self.errors))


class SnapshotError(VoucherError, ValueError):
    """A stored snapshot cannot be read back: it names the transaction and what is wrong."""


class InvalidArgument(VoucherError, ValueError):
    """A call was given a value it cannot use (a negative interval, a URL with no host...).

    Raised at once, before anything is sent or stored; the message names the argument.
    """
