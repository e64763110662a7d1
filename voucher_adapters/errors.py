"""The adapters' side of the error tree: every class derives from
:class:`~voucher_core.errors.VoucherError`, whatever the backend or transport that raises it.

::

    VoucherError                 (voucher_core.errors)
    ├── StorageError             a journal or advice queue could not do what it was asked
    │   └── OwnerBusy            another live process drives this owner's sales
    ├── TokenError               no usable OAuth2 token (the HTTP call becomes a no-response)
    ├── SettingsError            settings that contradict themselves (bootstrap.Settings)
    ├── MissingDatabase          a command that only reads found no SQLite file there
    └── SimulatorError           the simulator or its server could not do what it was asked

SQLite and PostgreSQL raise these very classes (``voucher_adapters.stores.sqlite.StorageError``
is ``voucher_adapters.stores.postgres.StorageError``), so one ``except`` clause serves both.
This module imports nothing but the core: catching an error never needs a backend's extra.
"""

from __future__ import annotations

from voucher_core.errors import VoucherError

__all__ = [
    "MissingDatabase",
    "OwnerBusy",
    "SettingsError",
    "SimulatorError",
    "StorageError",
    "TokenError",
]


class StorageError(VoucherError):
    """Durable storage failed: nothing the call was asked to store can be counted on.

    The message names the operation, where the data lives and the cause, for instance
    ``cannot store advice 1f..: /var/lib/till/voucher.db: the disk or database is full`` or
    ``cannot store advice 1f..: postgresql://till@db:5432/shop: the server's disk is full``.
    ``where`` is the database file (SQLite) or the server's DSN without its password
    (PostgreSQL); ``path`` and ``dsn`` are other names for it. ``__cause__`` keeps the
    underlying exception when there is one.
    """

    def __init__(self, where: str, operation: str, reason: str) -> None:
        self.where = where
        self.operation = operation
        self.reason = reason
        super().__init__(f"cannot {operation}: {where}: {reason}")

    @property
    def path(self) -> str:
        """The database file, for an error of the SQLite stores (the same as ``where``)."""
        return self.where

    @property
    def dsn(self) -> str:
        """The DSN without its password, for an error of the PostgreSQL stores (``where``)."""
        return self.where

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.where, self.operation, self.reason))


class OwnerBusy(StorageError):
    """Another live process holds the claim on this owner's sales, in this SQLite database
    or PostgreSQL schema: stop that process, or give this one an owner of its own."""


class TokenError(VoucherError):
    """No usable token: the call that needed it becomes a no-response. ``detail`` is safe to
    show (it names the token endpoint's path and what went wrong, never a body or header)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SettingsError(VoucherError, ValueError):
    """The settings contradict themselves (a SQLite file and a PostgreSQL DSN, say)."""


class MissingDatabase(VoucherError):
    """A command that only reads was pointed at a SQLite file that does not exist."""


class SimulatorError(VoucherError, RuntimeError):
    """The switch simulator or its server could not do what it was asked (start, drain)."""
