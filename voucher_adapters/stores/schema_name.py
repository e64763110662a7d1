"""The rule for a PostgreSQL schema name, without psycopg: the stores quote the name into
their SQL, and the ``voucher`` command checks ``--schema`` by the same rule while it parses."""

from __future__ import annotations

import re

from voucher_core.errors import InvalidArgument

__all__ = ["check_schema_name"]

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema_name(schema: str) -> str:
    """The schema name, double-quoted for SQL; only plain lower-case names are accepted."""
    if not _NAME.fullmatch(schema):
        raise InvalidArgument(
            f"schema must be a plain lower-case SQL name (letters, digits, _), not {schema!r}"
        )
    return f'"{schema}"'
