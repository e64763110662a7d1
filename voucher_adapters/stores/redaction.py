"""Addresses as they may be shown: a PostgreSQL DSN or a URL without its secrets.

Pure string work with the standard library only, so that the command line can redact what it
prints without importing a database driver. :func:`redact_dsn` is also
:func:`voucher_adapters.stores.postgres.redact`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["HIDDEN", "redact_dsn", "redact_url", "scrub", "secrets_of"]

HIDDEN = "***"
_KV_PASSWORD = re.compile(r"(?<![\w.])password\s*=\s*(?:'(?:[^'\\]|\\.)*'|[^\s']\S*)\s*")
_KV_VALUE = re.compile(r"(?<![\w.])password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']\S*)")
# Secrets shorter than this are not searched for in free text: "1" or "a" would hide every
# such character of a message. Passwords that short are no secret anyway.
_SHORTEST = 3


def redact_dsn(dsn: str) -> str:
    """The DSN with any password taken out, fit for messages and logs."""
    if re.match(r"postgres(ql)?://", dsn):
        try:
            parts = urlsplit(dsn)
        except ValueError:  # not a URL after all (an unclosed IPv6 bracket): show nothing of it
            return "postgresql://(an address that cannot be read)"
        netloc = parts.netloc
        if "@" in netloc:
            user, _, hosts = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}@{hosts}"
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "password"]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))
    return _KV_PASSWORD.sub("", dsn).strip() or "(the default server)"


def redact_url(url: str) -> str:
    """The URL with no secret: the password of its user info dropped, every query value and
    the fragment replaced by ``***`` (a base URL needs neither, and a value there is as likely
    a token as anything else)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # cannot be taken apart: show none of it
        return "(a URL that cannot be read)"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(key, HIDDEN) for key, _ in pairs], safe="*") if pairs else HIDDEN
    fragment = HIDDEN if parts.fragment else ""
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def secrets_of(address: str, *, every_query_value: bool = True) -> list[str]:
    """The secret parts of a URL or DSN, as written and decoded: the user info's password,
    and every query value (or, without ``every_query_value``, only a ``password``), and a
    DSN's ``password=`` in key=value form. For :func:`scrub`."""
    found: list[str] = []
    for match in _KV_VALUE.finditer(address):
        found.append(match.group(1).strip("'"))
    try:
        parts = urlsplit(address)
    except ValueError:
        return found
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.partition(":")[2])
    for piece in (parts.query, parts.fragment):
        for raw in re.split(r"[&;]", piece):
            key, equals, value = raw.partition("=")
            if every_query_value:
                found.append(value if equals else raw)
            elif unquote(key).strip().lower() == "password":
                found.append(value)
    decoded = [unquote(value) for value in found]
    return [value for value in {*found, *decoded} if len(value) >= _SHORTEST]


def scrub(
    text: str,
    *,
    urls: Iterable[str | None] = (),
    dsns: Iterable[str | None] = (),
    secrets: Iterable[str | None] = (),
) -> str:
    """``text`` fit to print: each of ``urls`` and ``dsns`` replaced by its redacted form,
    then any remaining secret part of them, and each of ``secrets`` (passwords), by ``***``."""
    hidden: list[str] = []
    for url in urls:
        if url:
            text = text.replace(url, redact_url(url))
            hidden += secrets_of(url)
    for dsn in dsns:
        if dsn:
            text = text.replace(dsn, redact_dsn(dsn))
            hidden += secrets_of(dsn, every_query_value=False)
    hidden += [secret for secret in secrets if secret and len(secret) >= _SHORTEST]
    for secret in sorted(set(hidden), key=len, reverse=True):  # longest first
        text = text.replace(secret, HIDDEN)
    return text
