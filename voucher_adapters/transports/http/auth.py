"""Credentials for the SUV interface: HTTP Basic, or OAuth2 bearer tokens.

Nothing here performs I/O. :class:`OAuth2ClientCredentials` knows what to ask the token
endpoint, how to read its answer, and how long a token may be reused; the transports do the
asking, inside the deadline of the call that needs the token.

Secrets (the password, the client secret, a token) are kept out of every repr and every
message this package writes: a repr of a transport, a log line or a reply's detail may end up
in a support ticket.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
import weakref
from collections.abc import Callable
from urllib.parse import quote_plus, urlencode, urlsplit

import attrs

from voucher_adapters.errors import TokenError
from voucher_core.errors import InvalidArgument
from voucher_core.wire import decode_json

__all__ = ["BasicAuth", "OAuth2ClientCredentials", "TokenError"]

# How the client proves itself to the token endpoint (RFC 6749 section 2.3.1).
AUTH_METHODS = ("client_secret_basic", "client_secret_post")

# RFC 6750 b64token characters, which also keeps a hostile token out of header syntax.
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _no_colon(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if ":" in value:
        raise InvalidArgument("a Basic auth username cannot contain ':'")


@attrs.frozen
class BasicAuth:
    """HTTP Basic credentials. Electrum requires ``username`` to equal the request's
    ``client.id``; the server answers a mismatch with 400 ``AUTHENTICATION_ERROR``.

    >>> BasicAuth("pos-user", "s3cret")
    BasicAuth(username='pos-user')
    """

    username: str = attrs.field(validator=[attrs.validators.instance_of(str), _no_colon])
    password: str = attrs.field(repr=False, validator=attrs.validators.instance_of(str))

    def header(self) -> str:
        """The ``Authorization`` header value."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


class OAuth2ClientCredentials:
    """The OAuth2 client-credentials grant, with the token cached until shortly before expiry.

    The client authenticates to the token endpoint as RFC 6749 (section 2.3.1) prefers:
    ``client_secret_basic`` (the default) sends ``client_id`` and the secret as HTTP Basic
    credentials; ``client_secret_post`` puts them in the form body instead, for a server
    that accepts only that.

    A token is reused until ``refresh_margin`` seconds before its ``expires_in`` runs out,
    measured on ``clock`` (monotonic seconds) from the moment the token was asked for. A token
    answer without ``expires_in`` is used for one call only. One instance may be shared by
    several transports, sync and async: threads wait for a single refresh, and so do the tasks
    of one event loop.
    """

    __slots__ = (
        "__weakref__",
        "_async_locks",
        "_client_secret",
        "_expires_at",
        "_state_lock",
        "_sync_lock",
        "_token",
        "auth_method",
        "client_id",
        "clock",
        "refresh_margin",
        "scope",
        "token_url",
    )

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        auth_method: str = "client_secret_basic",
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if auth_method not in AUTH_METHODS:
            raise InvalidArgument(f"auth_method must be one of {', '.join(AUTH_METHODS)}")
        parts = urlsplit(token_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument("token_url must be an absolute http:// or https:// URL")
        if parts.username is not None or parts.password is not None:
            raise InvalidArgument("token_url must not carry credentials; pass client_id and secret")
        if refresh_margin < 0:
            raise InvalidArgument("refresh_margin must not be negative")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.auth_method = auth_method
        self.refresh_margin = refresh_margin
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._state_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._async_locks = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials(token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, scope={self.scope!r}, "
            f"auth_method={self.auth_method!r})"
        )

    @property
    def token_path(self) -> str:
        """The token endpoint's path, as details and logs name it."""
        return urlsplit(self.token_url).path or "/"

    # -- the cache ------------------------------------------------------------------------

    def current(self) -> str | None:
        """The cached token if it is still good for at least ``refresh_margin`` seconds."""
        with self._state_lock:
            if self._token is not None and self.clock() < self._expires_at - self.refresh_margin:
                return self._token
            return None

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is ``token``, when given): after a 401."""
        with self._state_lock:
            if token is None or token == self._token:
                self._token = None
                self._expires_at = 0.0

    @property
    def sync_lock(self) -> threading.Lock:
        """Held by the thread fetching a token, so others wait for it instead of fetching."""
        return self._sync_lock

    def async_lock(self) -> asyncio.Lock:
        """The same for the tasks of the running event loop (an asyncio lock serves one loop)."""
        loop = asyncio.get_running_loop()
        with self._state_lock:
            lock = self._async_locks.get(loop)
            if lock is None:
                lock = self._async_locks[loop] = asyncio.Lock()
            return lock

    # -- the token request ----------------------------------------------------------------

    def form(self) -> bytes:
        """The ``application/x-www-form-urlencoded`` body of the token request (with the
        client's credentials only under ``client_secret_post``)."""
        fields = {"grant_type": "client_credentials"}
        if self.auth_method == "client_secret_post":
            fields["client_id"] = self.client_id
            fields["client_secret"] = self._client_secret
        if self.scope is not None:
            fields["scope"] = self.scope
        return urlencode(fields).encode("ascii")

    def token_authorization(self) -> str | None:
        """The ``Authorization`` header of the token request: HTTP Basic with the client id
        and secret, each form-encoded first as RFC 6749 asks (None under
        ``client_secret_post``)."""
        if self.auth_method != "client_secret_basic":
            return None
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret)}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def accept(self, status: int, content: bytes, asked_at: float) -> str:
        """Read the token endpoint's answer, cache the token, return it.

        ``asked_at`` is ``clock()`` when the request left: expiry counts from then, which errs
        on the early side. Raises :class:`TokenError` for anything but a usable token.
        """
        where = f"token request to {self.token_path}"
        if not 200 <= status < 300:
            raise TokenError(f"{where} answered HTTP {status}")
        try:
            data = decode_json(content)  # bounded: a reply nested too deep is not JSON here
        except ValueError:
            raise TokenError(f"{where}: HTTP {status} but the body is not JSON") from None
        if not isinstance(data, dict):
            raise TokenError(f"{where}: HTTP {status} but the body is not a JSON object")
        token = data.get("access_token")
        if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
            raise TokenError(f"{where}: the answer has no usable access_token")
        token_type = data.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise TokenError(f"{where}: the token type is not Bearer")
        expires_in = _seconds(data.get("expires_in"))
        with self._state_lock:
            if expires_in is None:
                self._token, self._expires_at = None, 0.0
            else:
                self._token, self._expires_at = token, asked_at + expires_in
        return token


def _seconds(value: object) -> float | None:
    """``expires_in`` as seconds: a JSON number, or a numeric string as some servers send."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return None
