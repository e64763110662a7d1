"""What the sync and async HTTP transports share: everything but the waiting.

A call goes through three steps, and only the middle one differs between the twins:

1. :class:`TransportBase` turns a message into a :class:`Call` (method, URL, body).
2. The transport performs it and reduces whatever happened to an :data:`Outcome`: an
   :class:`Answer` (a status and a complete body, no larger than ``max_body``) or a
   :class:`Silence` (nothing usable arrived: a timeout, a refused or reset connection, a
   broken or oversized reply).
3. :class:`TransportBase` classifies the outcome with :mod:`voucher_core.replies` (a
   provision's reply against the request it answers), logs the operation, status and
   latency, and tells the observer (an observer that raises is logged, never raised).

Reading a body is bounded twice over: by size (``max_body``, checked against the declared
length before reading and against the bytes as they come) and by time (the caller's
``timeout`` covers connecting, sending, waiting and reading). Bodies are read undecoded and
then decompressed with the same bound, so a small compressed reply cannot balloon.

Details written here name the method, the path and the status, never a header or a body:
headers carry credentials, and bodies carry voucher codes and PINs.
"""

from __future__ import annotations

import errno
import logging
import os
import ssl
import time
import zlib
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import attrs

from voucher_adapters.transports.exchange import Exchange, Operation, tell
from voucher_adapters.transports.http.auth import BasicAuth, OAuth2ClientCredentials
from voucher_adapters.transports.tls import ssl_context
from voucher_core.errors import InvalidArgument
from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice
from voucher_core.ports import LookupQuery, LookupReply
from voucher_core.replies import (
    AdviceKind,
    AdviceReply,
    ProvisionReply,
    RepeatLater,
    Unknown,
    UnknownReason,
    classify_advice,
    classify_provision,
    no_response,
)
from voucher_core.wire import to_json

__all__ = [
    "DEFAULT_BASE_PATH",
    "LOGGER",
    "Answer",
    "Auth",
    "BodyReader",
    "Call",
    "Outcome",
    "Silence",
    "TransportBase",
    "check_max_connections",
    "is_json",
    "log_outcome",
    "normalize_base_url",
    "os_error",
    "ssl_context",
    "timed_out",
    "why",
]

LOGGER = logging.getLogger("voucher_core.http")
DEFAULT_BASE_PATH = "/suv/v1"
JSON = "application/json"

Auth = BasicAuth | OAuth2ClientCredentials


# -- construction ---------------------------------------------------------------------------


def normalize_base_url(base_url: str) -> str:
    """``scheme://host[:port]/path`` without a trailing slash; the default path if none."""
    if not isinstance(base_url, str):
        raise InvalidArgument(f"base_url must be a string, got {type(base_url).__name__}")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument("base_url must start with http:// or https://")
    if "@" in parts.netloc:
        # Not echoing the URL: it holds a password.
        raise InvalidArgument("base_url must not carry credentials; pass them as auth=")
    if not parts.hostname:
        raise InvalidArgument(f"base_url has no host: {base_url!r}")
    try:
        parts.port  # noqa: B018  (urlsplit checks the port only when asked)
    except ValueError:
        raise InvalidArgument(f"base_url has an invalid port: {base_url!r}") from None
    if parts.query or parts.fragment:
        raise InvalidArgument(f"base_url must not have a query or fragment: {base_url!r}")
    path = parts.path.rstrip("/") or DEFAULT_BASE_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def check_max_connections(max_connections: int) -> int:
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise InvalidArgument("max_connections must be an integer")
    if max_connections < 1:
        raise InvalidArgument(f"max_connections must be at least 1, got {max_connections}")
    return max_connections


def _check_max_body(max_body: int) -> int:
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise InvalidArgument(f"max_body must be a positive integer, got {max_body!r}")
    return max_body


# -- one call and what came of it --------------------------------------------------------------


@attrs.frozen
class Call:
    """One HTTP request to make. ``operation`` is ``None`` for a token request."""

    operation: Operation | None
    method: str
    url: str
    body: bytes
    message_id: str
    request_id: str
    params: dict[str, str] | None = None
    content_type: str = JSON

    @property
    def label(self) -> str:
        return f"{self.method} {urlsplit(self.url).path}"


@attrs.frozen
class Answer:
    """A status and the complete (decoded) body."""

    status: int
    content: bytes = attrs.field(repr=False)
    content_type: str = ""


@attrs.frozen
class Silence:
    """Nothing usable arrived; ``detail`` says why, in words safe to log."""

    detail: str


Outcome = Answer | Silence


def timed_out(call: Call, timeout: float) -> Silence:
    return Silence(f"{call.label}: no complete answer within {timeout:g} s")


def os_error(exc: BaseException) -> OSError | None:
    """The operating system's error behind ``exc``, following its causes a few steps."""
    seen: BaseException | None = exc
    for _ in range(8):  # the client's error -> ... -> the socket's error; a short chain
        if seen is None:
            return None
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def why(exc: BaseException) -> str:
    """What the operating system or TLS said, in parentheses, or nothing."""
    cause = os_error(exc)
    if isinstance(cause, ssl.SSLError):
        return f" (TLS: {cause.reason or type(cause).__name__})"
    if cause is not None and cause.errno is not None and cause.errno in errno.errorcode:
        return f" ({os.strerror(cause.errno)})"
    return ""


# -- reading a body, bounded -----------------------------------------------------------------


class BodyReader:
    """Collects a response body chunk by chunk, refusing it once it passes ``limit`` bytes.

    ``headers`` is the response's headers as the client gives them, read case-insensitively
    (urllib3's and aiohttp's both are).
    """

    def __init__(self, call: Call, status: int, headers: Mapping[str, str], limit: int) -> None:
        self._call = call
        self._status = status
        self._headers = headers
        self._limit = limit
        self._buffer = bytearray()

    def _too_long(self, size: str) -> Silence:
        return Silence(
            f"{self._call.label}: HTTP {self._status} with a body of {size}, "
            f"over the {self._limit}-byte limit"
        )

    def declared_within(self) -> bool:
        """Whether the reply declares a length no larger than the limit: then it may be read
        in one go, since the client reads no more than the declared length."""
        declared = self._headers.get("content-length", "")
        return declared.isdigit() and int(declared) <= self._limit

    def refuse_early(self) -> Silence | None:
        """A refusal before reading, when the declared length is already too long."""
        declared = self._headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._limit:
            return self._too_long(f"{int(declared)} bytes (declared)")
        return None

    def feed(self, chunk: bytes) -> Silence | None:
        self._buffer += chunk
        if len(self._buffer) > self._limit:
            return self._too_long(f"more than {self._limit} bytes")
        return None

    def answer(self) -> Outcome:
        encoding = self._headers.get("content-encoding", "").strip().lower()
        content = _decode(encoding, bytes(self._buffer), self._limit)
        if content is None:
            return self._too_long(f"more than {self._limit} bytes once decompressed")
        return Answer(self._status, content, self._headers.get("content-type", ""))


def _decode(encoding: str, raw: bytes, limit: int) -> bytes | None:
    """Undo gzip or deflate without producing more than ``limit`` bytes (``None`` if it would).

    Any other coding is passed through as is: the classifiers then see a body that is not
    JSON, which is what it is to them.
    """
    if encoding in ("gzip", "x-gzip"):
        attempts = [zlib.MAX_WBITS | 16]
    elif encoding == "deflate":
        attempts = [zlib.MAX_WBITS, -zlib.MAX_WBITS]  # zlib-wrapped, or raw as some servers send
    else:
        return raw
    for wbits in attempts:
        inflater = zlib.decompressobj(wbits)
        try:
            content = inflater.decompress(raw, limit + 1)
        except zlib.error:
            continue
        return None if len(content) > limit else content
    return raw


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


# -- the shared half of both transports --------------------------------------------------------


class TransportBase:
    """Building calls, classifying outcomes, logging and observing: no I/O."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None,
        max_body: int,
        observer: Callable[[Exchange], None] | None,
    ) -> None:
        if auth is not None and not isinstance(auth, BasicAuth | OAuth2ClientCredentials):
            raise InvalidArgument("auth must be BasicAuth, OAuth2ClientCredentials or None")
        self.base_url = normalize_base_url(base_url)
        self.auth = auth
        self.max_body = _check_max_body(max_body)
        self._observer = observer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, auth={self.auth!r})"

    # -- calls --------------------------------------------------------------------------

    def _provision_call(self, operation: Operation, request: ProvisionRequest) -> Call:
        path = "/vouchers"
        if operation is Operation.RETRY:
            path = f"/vouchers/{quote(request.id, safe='')}/retry"
        return Call(
            operation, "POST", self.base_url + path, to_json(request), request.id, request.id
        )

    def _advice_call(self, operation: Operation, advice: TenderAdvice | BasicReversal) -> Call:
        path = (
            "/vouchers/confirmations" if operation is Operation.CONFIRM else "/vouchers/reversals"
        )
        return Call(
            operation, "POST", self.base_url + path, to_json(advice), advice.id, advice.request_id
        )

    def _lookup_call(self, query: LookupQuery | str) -> Call:
        query = LookupQuery.of(query)
        provision_id = query.provision_request_id or ""
        return Call(
            Operation.LOOKUP,
            "GET",
            self.base_url + "/vouchers",
            b"",
            provision_id,
            provision_id,
            params=query.params(),
        )

    @staticmethod
    def _token_call(auth: OAuth2ClientCredentials) -> Call:
        return Call(
            None,
            "POST",
            auth.token_url,
            auth.form(),
            "",
            "",
            content_type="application/x-www-form-urlencoded",
        )

    @staticmethod
    def _headers(call: Call, authorization: str | None) -> dict[str, str]:
        headers = {
            "Accept": JSON,
            # Bodies are small; asking for them plain spares the decompression bound above.
            "Accept-Encoding": "identity",
            "User-Agent": "voucher-core",
        }
        if call.method != "GET":
            headers["Content-Type"] = call.content_type
        if authorization is not None:
            headers["Authorization"] = authorization
        return headers

    # -- outcomes -----------------------------------------------------------------------

    def _after(self, outcome: Outcome, token: str | None) -> None:
        """A 401 to a bearer token: the token is dead whatever its expiry said."""
        if (
            token is not None
            and isinstance(outcome, Answer)
            and outcome.status == 401
            and isinstance(self.auth, OAuth2ClientCredentials)
        ):
            self.auth.invalidate(token)

    def _provision_reply(
        self, call: Call, request: ProvisionRequest, outcome: Outcome, started: float
    ) -> ProvisionReply:
        reply: ProvisionReply
        if isinstance(outcome, Silence):
            reply = no_response(outcome.detail)
        elif 200 <= outcome.status < 300 and not is_json(outcome.content_type):
            media = outcome.content_type.split(";", 1)[0].strip()[:60] or "missing"
            reply = Unknown(
                UnknownReason.NOT_FINAL,
                f"HTTP {outcome.status} but the Content-Type is {media!r}, not JSON",
                outcome.status,
            )
        else:
            reply = classify_provision(outcome.status, outcome.content, request)
        self._report(call, outcome, reply, started)
        return reply

    def _advice_reply(
        self, call: Call, kind: AdviceKind, outcome: Outcome, started: float
    ) -> AdviceReply:
        reply: AdviceReply
        if isinstance(outcome, Silence):
            reply = RepeatLater(outcome.detail)
        else:
            reply = classify_advice(kind, outcome.status, outcome.content)
        self._report(call, outcome, reply, started)
        return reply

    def _lookup_reply(self, call: Call, outcome: Outcome, started: float) -> LookupReply:
        if isinstance(outcome, Silence):
            reply = LookupReply(None, b"", outcome.detail)
        else:
            reply = LookupReply(outcome.status, outcome.content)
        self._report(call, outcome, reply, started)
        return reply

    def _report(
        self,
        call: Call,
        outcome: Outcome,
        reply: ProvisionReply | AdviceReply | LookupReply,
        started: float,
    ) -> None:
        status = outcome.status if isinstance(outcome, Answer) else None
        latency = time.monotonic() - started
        log_outcome(call, status, latency)
        if self._observer is not None and call.operation is not None:
            exchange = Exchange(
                call.operation, call.message_id, call.request_id, call.body, status, reply, latency
            )
            tell(self._observer, exchange, logger=LOGGER)


def log_outcome(call: Call, status: int | None, latency: float) -> None:
    """Operation, status and latency (seconds): nothing that could hold a secret."""
    if LOGGER.isEnabledFor(logging.DEBUG):
        LOGGER.debug(
            "%s -> %s in %.1f ms",
            call.operation.value if call.operation is not None else "token request",
            status if status is not None else "no answer",
            latency * 1000,
        )
