"""The transport port over HTTP: :class:`HttpTransport` (urllib3) and :class:`AsyncHttpTransport`
(aiohttp).

Both speak Electrum's SUV interface (``/suv/v1`` unless the base URL names another path),
authenticate with :class:`BasicAuth` or :class:`OAuth2ClientCredentials`, bound each call by
the caller's timeout and the reply by ``max_body``, and hand back classified replies: a
network failure is a reply like any other, never an exception. This package is the only
place that imports an HTTP client.
"""

from voucher_adapters.transports.http.async_client import AsyncHttpTransport
from voucher_adapters.transports.http.auth import BasicAuth, OAuth2ClientCredentials
from voucher_adapters.transports.http.base import DEFAULT_BASE_PATH
from voucher_adapters.transports.http.client import HttpTransport

__all__ = [
    "DEFAULT_BASE_PATH",
    "AsyncHttpTransport",
    "BasicAuth",
    "HttpTransport",
    "OAuth2ClientCredentials",
]
