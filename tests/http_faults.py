"""Real servers on 127.0.0.1 for the HTTP transport's tests.

* :class:`ScriptedSwitch`: a small Starlette app, served by uvicorn in a background thread,
  that answers each path with the replies a test scripted and records every request.
* :class:`RawServer`: a bare TCP server whose connections misbehave below HTTP (huge bodies,
  a byte at a time, resets, silence), each in its own thread.

Everything binds port 0, every loop is bounded, and both stop when their ``with`` ends.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = [
    "RawServer",
    "Reply",
    "ScriptedSwitch",
    "Seen",
    "closed_port",
    "drip_body",
    "drip_headers",
    "huge_body",
    "read_request",
    "reset_mid_body",
    "silent",
]

# -- the scripted switch ----------------------------------------------------------------------


@attrs.frozen
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client_port: int


class ScriptedSwitch:
    """Answers each path with its scripted replies in order (the last one repeats)."""

    def __init__(self, *, tls: tuple[str, str] | None = None) -> None:
        """``tls``: (certificate file, key file) to serve HTTPS instead of HTTP."""
        self._lock = threading.Lock()
        self._replies: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])
        sock = socket.create_server(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._sock = sock

    def __enter__(self) -> ScriptedSwitch:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.seen.clear()

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._replies[path] = list(replies)

    def paths(self) -> list[str]:
        with self._lock:
            return [seen.path for seen in self.seen]

    def to(self, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if seen.path == path]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        seen = Seen(
            request.method,
            request.url.path,
            dict(request.query_params),
            {key.lower(): value for key, value in request.headers.items()},
            body,
            request.client.port if request.client else 0,
        )
        with self._lock:
            self.seen.append(seen)
            queue = self._replies.get(request.url.path)
            if not queue:
                reply = Reply(599, b"not scripted", "text/plain")
            else:
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return Response(
            reply.body, reply.status, headers=reply.headers, media_type=reply.content_type
        )


# -- the raw server ---------------------------------------------------------------------------


class RawServer:
    """Accepts TCP connections on 127.0.0.1 and runs ``behaviour(conn, server)`` for each."""

    def __init__(self, behaviour: Callable[[socket.socket, RawServer], None]) -> None:
        self._behaviour = behaviour
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.sent = 0
        self.connections = 0
        self._workers: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RawServer:
        self._acceptor.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self._acceptor.join(5)
        self._listener.close()
        for worker in self._workers:
            worker.join(5)

    def count_sent(self, size: int) -> None:
        with self._lock:
            self.sent += size

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._workers.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        # OSError: the client hung up, which is what most of these tests are about.
        with conn, contextlib.suppress(OSError):
            self._behaviour(conn, self)


def read_request(conn: socket.socket) -> bytes:
    """Reads one request (head and Content-Length body); returns the head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def _send(conn: socket.socket, server: RawServer, data: bytes) -> None:
    conn.sendall(data)
    server.count_sent(len(data))


def huge_body(total: int, *, declared: bool) -> Callable[[socket.socket, RawServer], None]:
    """A 201 JSON reply of ``total`` bytes: with a Content-Length, or chunked."""
    piece = b"[" + b"0," * 32767 + b"0"  # 64 KiB of a JSON array that never closes

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        framing = f"Content-Length: {total}" if declared else "Transfer-Encoding: chunked"
        head = f"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
        _send(conn, server, head.encode())
        written = 0
        while written < total and not server.stopping.is_set():
            frame = piece if declared else b"%x\r\n%s\r\n" % (len(piece), piece)
            _send(conn, server, frame)
            written += len(piece)

    return behaviour


def drip_body(interval: float) -> Callable[[socket.socket, RawServer], None]:
    """Headers at once, then the 100-byte body one byte every ``interval`` seconds."""

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        head = (
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        _send(conn, server, head)
        for _ in range(100):
            if server.stopping.wait(interval):
                return
            _send(conn, server, b" ")

    return behaviour


def drip_headers(interval: float) -> Callable[[socket.socket, RawServer], None]:
    """The status line and headers themselves, one byte every ``interval`` seconds."""

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        head = b"HTTP/1.1 201 Created\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
        for byte in head:
            if server.stopping.wait(interval):
                return
            _send(conn, server, bytes([byte]))

    return behaviour


def reset_mid_body(conn: socket.socket, server: RawServer) -> None:
    """Promises 1000 bytes, sends 100, then resets the connection (RST, not FIN)."""
    read_request(conn)
    head = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    _send(conn, server, head + b"{" + b" " * 99)
    time.sleep(0.05)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def silent(conn: socket.socket, server: RawServer) -> None:
    """Reads the request and never answers (until the server stops, at most 10 s)."""
    read_request(conn)
    server.stopping.wait(10)


@contextmanager
def closed_port() -> Iterator[str]:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield f"http://127.0.0.1:{port}"
