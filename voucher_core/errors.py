"""Exceptions the core raises. All derive from :class:`VoucherError`."""

from __future__ import annotations

__all__ = ["InvalidEvent", "LookupRefused", "VoucherError"]


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
