"""SQLite's failures told in plain words, for the one
:class:`~voucher_adapters.errors.StorageError` (re-exported here) that every store raises."""

from __future__ import annotations

import os
import sqlite3

from voucher_adapters.errors import StorageError

__all__ = ["StorageError", "describe"]


_REASONS = {
    "SQLITE_FULL": "the disk or database is full",
    "SQLITE_NOTADB": "the file is not a SQLite database (or it is encrypted or damaged)",
    "SQLITE_CORRUPT": "the database file is damaged (restore it from a backup)",
    "SQLITE_READONLY": "the database file is read-only",
    "SQLITE_READONLY_DIRECTORY": (
        "the directory holding the database is read-only (SQLite needs to create its "
        "-wal and -shm files there)"
    ),
    "SQLITE_READONLY_DBMOVED": "the database file was moved or deleted while open",
    "SQLITE_CANTOPEN": "the file cannot be opened (check that it exists and its permissions)",
    "SQLITE_PERM": "permission denied",
    "SQLITE_AUTH": "permission denied",
    "SQLITE_NOMEM": "out of memory",
    "SQLITE_NOLFS": "the file is too large for this system",
    "SQLITE_IOERR_NOMEM": "out of memory",
}


def describe(error: BaseException, *, busy_timeout: float = 0.0) -> str:
    """What went wrong, in words an operator can act on."""
    if isinstance(error, sqlite3.ProgrammingError) and "closed" in str(error):
        return "the storage was closed"
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return (
            f"the database is locked by another connection (gave up after waiting "
            f"{busy_timeout:g} s)"
        )
    if name in _REASONS:
        return _REASONS[name]
    for prefix in ("SQLITE_READONLY", "SQLITE_CORRUPT", "SQLITE_CANTOPEN"):
        if name.startswith(prefix):
            return f"{_REASONS[prefix]} ({name})"
    if name.startswith("SQLITE_IOERR"):
        return f"input/output error from the operating system ({name}: {error})"
    if isinstance(error, OSError):
        return os.strerror(error.errno) if error.errno else str(error)
    return str(error) or type(error).__name__
