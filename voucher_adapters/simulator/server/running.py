"""Running the application under uvicorn: in the foreground, or in a background thread.

Both use :class:`LinkedH11Protocol`, uvicorn's own HTTP/1.1 protocol with one addition: each
request's scope carries a :class:`~voucher_adapters.simulator.server.connection.ConnectionLink`, so
that a lost
answer drops the TCP connection for real and a shutdown does not wait out a delayed answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

import attrs
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from voucher_adapters.errors import SimulatorError
from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.simulator.server.app import create_app
from voucher_adapters.simulator.server.connection import EXTENSION, ConnectionLink

__all__ = ["LinkedH11Protocol", "RunningServer", "ServerTLS", "listening_socket", "serve"]

logger = logging.getLogger("voucher_core.server")

_START_LIMIT = 10.0  # seconds for the server to start accepting
_STOP_LIMIT = 5.0  # seconds for it to stop, before it is told to stop harder
_GRACE = 2  # seconds uvicorn lets requests finish at shutdown before cancelling them


class LinkedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, handing the application a link to each connection."""

    _link: ConnectionLink | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        link = ConnectionLink(transport)
        self._link = link
        inner = cast(ASGIApp, self.app)

        async def linked(scope: Scope, receive: Receive, send: Send) -> None:
            scope["extensions"] = {**(scope.get("extensions") or {}), EXTENSION: {"link": link}}
            await inner(scope, receive, send)

        self.app = cast(Any, linked)

    def shutdown(self) -> None:
        if self._link is not None:
            self._link.closing.set()
        super().shutdown()


def _config(app: ASGIApp, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=LinkedH11Protocol,
        lifespan="on",
        timeout_graceful_shutdown=_GRACE,
        **options,
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (``port=0``: a free port, read back
    with ``getsockname()``). A busy port or an unknown host raises :class:`SimulatorError`
    saying which, before anything claims to be serving."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as error:  # socket.gaierror: no such host
        raise SimulatorError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # uvicorn's backlog: connections wait here until it serves them
    except OSError as error:
        sock.close()
        reason = error.strerror or type(error).__name__
        raise SimulatorError(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    seed: int = 0,
    switch: SwitchSimulator | None = None,
    log_level: str = "warning",
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve the simulator (a new one from ``seed``, or ``switch``) until interrupted.

    The port is bound first (``port=0`` picks a free one); ``on_listening`` is then called with
    the SUV base URL, port included, so nothing says "listening" before it is. A port that
    cannot be bound raises :class:`SimulatorError`. Ctrl-C (or SIGTERM) stops it cleanly:
    requests in flight are answered or dropped, and the function returns.
    """
    sock = listening_socket(host, port)
    # uvicorn shuts down gracefully on Ctrl-C, then raises the signal again for its caller;
    # a Ctrl-C before uvicorn has taken the signal (just after "listening") arrives as a
    # KeyboardInterrupt. Either way it means nothing more than "stop".
    with contextlib.closing(sock), contextlib.suppress(KeyboardInterrupt):
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        app = create_app(switch if switch is not None else SwitchSimulator(seed=seed))
        server = uvicorn.Server(_config(app, log_level=log_level))
        if on_listening is not None:
            on_listening(f"http://{shown}:{bound}/suv/v1")
        server.run(sockets=[sock])


@attrs.frozen(kw_only=True)
class ServerTLS:
    """HTTPS for :class:`RunningServer`: the server's certificate and key (PEM files), and,
    for mutual TLS, the CA file whose certificates clients must present."""

    certfile: str
    keyfile: str | None = None
    client_ca: str | None = None

    def options(self) -> dict[str, Any]:
        """uvicorn's settings for it."""
        options: dict[str, Any] = {"ssl_certfile": self.certfile, "ssl_keyfile": self.keyfile}
        if self.client_ca is not None:
            options.update(ssl_ca_certs=self.client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
        return options


class RunningServer:
    """An application served by uvicorn in a background thread, on loopback by default.

    ``with RunningServer(create_app(switch)) as server:`` starts it (waiting, within a bound,
    until it accepts connections) and stops it on exit. ``port=0`` picks a free port;
    :attr:`url` is the SUV base URL, such as ``http://127.0.0.1:54321/suv/v1``. With ``tls``
    it serves HTTPS (and asks clients for a certificate when ``tls.client_ca`` is given).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ServerTLS | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.tls = tls
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> RunningServer:
        if self._thread is not None:
            raise SimulatorError("this server is already running")
        # Bound here, not by uvicorn, so that port 0 yields one known port.
        sock = listening_socket(self.host, self.port)
        self._socket = sock
        self.port = sock.getsockname()[1]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls is not None else "http"
        self.url = f"{scheme}://{shown}:{self.port}/suv/v1"
        tls = self.tls.options() if self.tls is not None else {}
        # log_config=None: leave the embedding process's logging as it is.
        server = uvicorn.Server(_config(self.app, log_level="warning", log_config=None, **tls))
        self._server = server
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"suv-server-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_LIMIT
        while not server.started:
            if not self._thread.is_alive():
                self._close_socket()
                self._thread = None
                raise SimulatorError(f"the server at {self.url} failed to start") from self._failure
            if time.monotonic() > deadline:
                self._stop()
                raise SimulatorError(f"the server at {self.url} did not start in {_START_LIMIT} s")
            time.sleep(0.005)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop()

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as failure:  # reported by __enter__
            self._failure = failure

    def _stop(self) -> None:
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(_STOP_LIMIT)
            if thread.is_alive():
                server.force_exit = True
                thread.join(_STOP_LIMIT)
            if thread.is_alive():
                logger.warning("the server at %s did not stop; leaving its thread", self.url)
        self._server = self._thread = None
        self._close_socket()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
