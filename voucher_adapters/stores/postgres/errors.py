"""The DSN as it may be shown, and PostgreSQL's failures told in plain words, for the one
:class:`~voucher_adapters.errors.StorageError` (re-exported here) that every store raises."""

from __future__ import annotations

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict

from voucher_adapters.errors import StorageError
from voucher_adapters.stores.redaction import redact_dsn

__all__ = ["StorageError", "describe", "redact"]


def redact(dsn: str) -> str:
    """The DSN with any password taken out, fit for messages and logs."""
    return redact_dsn(dsn)


# SQLSTATE (or its class, the first two characters) -> what it means for the operator.
_REASONS = {
    "53100": "the server's disk is full",
    "53200": "the server is out of memory",
    "53300": "the server has no free connection slots (max_connections reached)",
    "28P01": "authentication failed (check the user name and password)",
    "28": "the server refused the login",
    "3D000": "the database does not exist",
    "42501": "permission denied",
    "25006": "the server only accepts reads (a standby, or default_transaction_read_only)",
    "57P01": "the server ended the connection (an administrator, or a shutdown)",
    "57P02": "the server crashed and ended the connection",
    "57P03": "the server is starting up or shutting down",
    "08": "the connection to the server failed",
    "40001": "the transaction was cancelled to avoid a conflict (serialization failure)",
    "40P01": "the transaction was cancelled to break a deadlock",
    "57014": "the statement was cancelled (statement_timeout, or an operator)",
    "58": "the server had an input/output error",
    "XX": "the server reported an internal error (damaged data?)",
}


def describe(error: BaseException, *, dsn: str = "", timeout: float = 0.0) -> str:
    """What went wrong, in words an operator can act on (never including a password)."""
    if isinstance(error, psycopg_pool.PoolClosed):
        return "the storage was closed"
    if isinstance(error, psycopg_pool.PoolTimeout):
        return (
            f"no connection to the server within {timeout:g} s (is it running and reachable, "
            "and does it have free connection slots?)"
        )
    detail = " ".join(str(error).split()) or type(error).__name__
    state = getattr(error, "sqlstate", None) or ""
    meaning = _REASONS.get(state) or _REASONS.get(state[:2])
    text = f"{meaning}: {detail}" if meaning and meaning not in detail else detail
    return _scrub(text, dsn)


def _scrub(text: str, dsn: str) -> str:
    if not dsn:
        return text
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        return text
    if password:
        text = text.replace(str(password), "***")
    return text
