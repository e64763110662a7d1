"""HTTP benchmark: the library's HTTP transports beside the fastest plain clients, same server.

A simulator server runs in a child process (``voucher serve``) so that server and client do
not share one interpreter lock. Every side sends the same provisions, each a fresh sale, to
that one server in the same run:

- **library**: ``AsyncHttpTransport`` (1, 10 and 100 in flight) and ``HttpTransport`` (one at
  a time) serialise with the library's converter, bound each whole exchange by its deadline,
  cap the reply body, and parse and classify every reply into typed messages;
- **aiohttp** and **httpx** (async), **urllib3** and **httpx** (sync): what a careful
  hand-written client does with each: post the same bytes with Basic credentials, read the
  reply and decode its JSON. None of them bounds the whole exchange, caps the body or parses
  the reply into typed messages.

Throughput is in requests per second, the median of the rounds; rounds rotate which side goes
first. ``ratio`` is the fastest plain client's figure over the library's (aiohttp's for
async, urllib3's for sync): 1.0 means the library keeps up, 1.25 is the target's edge (the
library at 0.8 of it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import urllib3

from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, demo_request
from voucher_adapters.transports.http import AsyncHttpTransport, BasicAuth, HttpTransport
from voucher_core.messages import ProvisionRequest
from voucher_core.replies import Approved
from voucher_core.wire import to_json

START = datetime(2026, 1, 1, tzinfo=UTC)
AUTH = (DEMO_CLIENT_ID, "bench")
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
BASIC = urllib3.make_headers(basic_auth=":".join(AUTH))
TIMEOUT = 30.0
IN_FLIGHT = (1, 10, 100)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server() -> Iterator[str]:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "voucher_adapters.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the simulator server did not start within 20 s")
        yield f"http://127.0.0.1:{port}/suv/v1"
    finally:
        child.terminate()
        child.wait(timeout=10)


_Run = Callable[[list[ProvisionRequest]], float]


def provisions(n: int, seed: int) -> list[ProvisionRequest]:
    ids = SeededIds(seed)
    return [demo_request(id=ids(), time=START) for _ in range(n)]


def _approved(status: int, document: object) -> None:
    if status != 201 or not isinstance(document, dict) or "voucher" not in document:
        raise RuntimeError(f"a plain client's provision failed: HTTP {status}")


# -- async ------------------------------------------------------------------------------------


async def _gathered(sales: list[ProvisionRequest], in_flight: int, one: Any) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def gated(request: ProvisionRequest) -> None:
        async with gate:
            await one(request)

    began = time.perf_counter()
    await asyncio.gather(*(gated(request) for request in sales))
    return time.perf_counter() - began


async def library_async(url: str, sales: list[ProvisionRequest], in_flight: int) -> float:
    async with AsyncHttpTransport(
        url, auth=BasicAuth(*AUTH), max_connections=in_flight
    ) as transport:

        async def one(request: ProvisionRequest) -> None:
            if not isinstance(await transport.provision(request, timeout=TIMEOUT), Approved):
                raise RuntimeError("library provision failed")

        return await _gathered(sales, in_flight, one)


async def aiohttp_async(url: str, sales: list[ProvisionRequest], in_flight: int) -> float:
    connector = aiohttp.TCPConnector(limit=in_flight)
    headers = {**HEADERS, **BASIC}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(request: ProvisionRequest) -> None:
            async with session.post(f"{url}/vouchers", data=to_json(request)) as reply:
                _approved(reply.status, json.loads(await reply.read()))

        return await _gathered(sales, in_flight, one)


async def httpx_async(url: str, sales: list[ProvisionRequest], in_flight: int) -> float:
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(
        auth=AUTH, headers=HEADERS, limits=limits, timeout=TIMEOUT
    ) as client:

        async def one(request: ProvisionRequest) -> None:
            reply = await client.post(f"{url}/vouchers", content=to_json(request))
            _approved(reply.status_code, reply.json())

        return await _gathered(sales, in_flight, one)


# -- sync -------------------------------------------------------------------------------------


def library_sync(url: str, sales: list[ProvisionRequest]) -> float:
    with HttpTransport(url, auth=BasicAuth(*AUTH)) as transport:
        began = time.perf_counter()
        for request in sales:
            if not isinstance(transport.provision(request, timeout=TIMEOUT), Approved):
                raise RuntimeError("library provision failed")
        return time.perf_counter() - began


def urllib3_sync(url: str, sales: list[ProvisionRequest]) -> float:
    headers = {**HEADERS, **BASIC}
    with urllib3.PoolManager(maxsize=1) as pool:
        began = time.perf_counter()
        for request in sales:
            reply = pool.request(
                "POST", f"{url}/vouchers", body=to_json(request), headers=headers, timeout=TIMEOUT
            )
            _approved(reply.status, json.loads(reply.data))
        return time.perf_counter() - began


def httpx_sync(url: str, sales: list[ProvisionRequest]) -> float:
    with httpx.Client(auth=AUTH, headers=HEADERS, timeout=TIMEOUT) as client:
        began = time.perf_counter()
        for request in sales:
            reply = client.post(f"{url}/vouchers", content=to_json(request))
            _approved(reply.status_code, reply.json())
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="provisions per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--in-flight", type=int, nargs="+", default=list(IN_FLIGHT), help="async concurrencies"
    )
    args = parser.parse_args()
    seed = iter(range(1, 1_000_000))

    def async_runs(in_flight: int) -> dict[str, _Run]:
        return {
            name: (lambda sales, f=f: asyncio.run(f(url, sales, in_flight)))
            for name, f in (
                ("library", library_async),
                ("aiohttp", aiohttp_async),
                ("httpx", httpx_async),
            )
        }

    figures: dict[str, dict[str, list[float]]] = {}
    with server() as url:
        groups: dict[str, dict[str, _Run]] = {f"async-{n}": async_runs(n) for n in args.in_flight}
        groups["sync"] = {
            "library": lambda sales: library_sync(url, sales),
            "urllib3": lambda sales: urllib3_sync(url, sales),
            "httpx": lambda sales: httpx_sync(url, sales),
        }
        for runs in groups.values():  # warm every path: connections, imports, the server
            for run in runs.values():
                run(provisions(50, next(seed)))
        for round_number in range(args.rounds):
            for group, runs in groups.items():
                names = list(runs)
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    seconds = runs[name](provisions(args.count, next(seed)))
                    figures.setdefault(group, {}).setdefault(name, []).append(args.count / seconds)

    rps = {
        group: {name: statistics.median(values) for name, values in sides.items()}
        for group, sides in figures.items()
    }
    print(f"{args.count} provisions per run, {args.rounds} rounds, median requests per second")
    print(f"  {'':<22}{'library':>10}{'aiohttp':>10}{'urllib3':>10}{'httpx':>10}")
    for group, sides in rps.items():
        label = "sync, one at a time" if group == "sync" else f"async, {group[6:]} in flight"
        cells = "".join(
            f"{sides[name]:>10.0f}" if name in sides else f"{'':>10}"
            for name in ("library", "aiohttp", "urllib3", "httpx")
        )
        print(f"  {label:<22}{cells}")
    for n in args.in_flight:
        sides = rps[f"async-{n}"]
        print(
            f"BENCH http-async inflight={n} library_rps={sides['library']:.0f} "
            f"aiohttp_rps={sides['aiohttp']:.0f} httpx_rps={sides['httpx']:.0f} "
            f"ratio={sides['aiohttp'] / sides['library']:.2f}"
        )
    sides = rps["sync"]
    print(
        f"BENCH http-sync library_rps={sides['library']:.0f} "
        f"urllib3_rps={sides['urllib3']:.0f} httpx_rps={sides['httpx']:.0f} "
        f"ratio={sides['urllib3'] / sides['library']:.2f}"
    )


if __name__ == "__main__":
    main()
