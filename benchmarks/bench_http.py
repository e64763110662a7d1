"""HTTP benchmark: the library's HTTP transport against plain httpx, same server, same run.

A simulator server runs in a child process (``voucher serve``) so that server and client do
not share one interpreter lock. Each side sells N vouchers, each a provision followed by a
confirmation:

- **library**: ``HttpTransport`` / ``AsyncHttpTransport`` build the JSON with the library's
  converter, post it, and classify and parse every reply;
- **baseline**: what a careful hand-written client does with plain ``httpx``: serialise the
  same messages with the same converter, post them, and decode the provision reply's JSON.
  It does not validate the reply into typed messages, classify it, bound the whole exchange
  by a deadline or cap the body, which the library does on every call.

Throughput is in requests per second; ratio = baseline_rps / library_rps (1.0 means no
overhead). Rounds alternate which side goes first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx

from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.transports.http import AsyncHttpTransport, BasicAuth, HttpTransport
from voucher_core.messages import ProvisionRequest, TenderAdvice
from voucher_core.replies import Acknowledged, Approved
from voucher_core.wire import to_json

START = datetime(2026, 1, 1, tzinfo=UTC)
AUTH = (DEMO_CLIENT_ID, "bench")
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


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


def sale_messages(n: int, seed: int) -> list[tuple[ProvisionRequest, TenderAdvice]]:
    ids = SeededIds(seed)
    sales = []
    for _ in range(n):
        request = demo_request(id=ids(), time=START)
        advice = TenderAdvice(
            id=ids(),
            request_id=request.id,
            time=START,
            third_party_identifiers=request.third_party_identifiers,
            tenders=cash(1000),
        )
        sales.append((request, advice))
    return sales


def library_sync(url: str, sales: list[tuple[ProvisionRequest, TenderAdvice]]) -> float:
    with HttpTransport(url, auth=BasicAuth(*AUTH)) as transport:
        began = time.perf_counter()
        for request, advice in sales:
            if not isinstance(transport.provision(request, timeout=10.0), Approved):
                raise RuntimeError("library provision failed")
            if not isinstance(transport.confirm(advice, timeout=10.0), Acknowledged):
                raise RuntimeError("library confirmation failed")
        return time.perf_counter() - began


def baseline_sync(url: str, sales: list[tuple[ProvisionRequest, TenderAdvice]]) -> float:
    with httpx.Client(auth=AUTH, headers=HEADERS) as client:
        began = time.perf_counter()
        for request, advice in sales:
            reply = client.post(f"{url}/vouchers", content=to_json(request))
            if reply.status_code != 201 or "voucher" not in reply.json():
                raise RuntimeError("baseline provision failed")
            reply = client.post(f"{url}/vouchers/confirmations", content=to_json(advice))
            if reply.status_code != 202:
                raise RuntimeError("baseline confirmation failed")
        return time.perf_counter() - began


async def library_async(
    url: str, sales: list[tuple[ProvisionRequest, TenderAdvice]], in_flight: int
) -> float:
    gate = asyncio.Semaphore(in_flight)
    async with AsyncHttpTransport(url, auth=BasicAuth(*AUTH), max_connections=in_flight) as t:

        async def one(request: ProvisionRequest, advice: TenderAdvice) -> None:
            async with gate:
                if not isinstance(await t.provision(request, timeout=30.0), Approved):
                    raise RuntimeError("library provision failed")
                if not isinstance(await t.confirm(advice, timeout=30.0), Acknowledged):
                    raise RuntimeError("library confirmation failed")

        began = time.perf_counter()
        await asyncio.gather(*(one(r, a) for r, a in sales))
        return time.perf_counter() - began


async def baseline_async(
    url: str, sales: list[tuple[ProvisionRequest, TenderAdvice]], in_flight: int
) -> float:
    gate = asyncio.Semaphore(in_flight)
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(auth=AUTH, headers=HEADERS, limits=limits) as client:

        async def one(request: ProvisionRequest, advice: TenderAdvice) -> None:
            async with gate:
                reply = await client.post(f"{url}/vouchers", content=to_json(request), timeout=30.0)
                if reply.status_code != 201 or "voucher" not in reply.json():
                    raise RuntimeError("baseline provision failed")
                reply = await client.post(
                    f"{url}/vouchers/confirmations", content=to_json(advice), timeout=30.0
                )
                if reply.status_code != 202:
                    raise RuntimeError("baseline confirmation failed")

        began = time.perf_counter()
        await asyncio.gather(*(one(r, a) for r, a in sales))
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="sales per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=100)
    args = parser.parse_args()
    requests_per_run = 2 * args.count
    seed = iter(range(1, 10_000))

    with server() as url:
        # Warm both paths (connections, imports, the server's code paths).
        library_sync(url, sale_messages(50, next(seed)))
        baseline_sync(url, sale_messages(50, next(seed)))
        figures: dict[str, tuple[list[float], list[float]]] = {"sync": ([], []), "async": ([], [])}
        for round_number in range(args.rounds):
            runs = [
                ("sync", 0, lambda s: library_sync(url, s)),
                ("sync", 1, lambda s: baseline_sync(url, s)),
                ("async", 0, lambda s: asyncio.run(library_async(url, s, args.in_flight))),
                ("async", 1, lambda s: asyncio.run(baseline_async(url, s, args.in_flight))),
            ]
            if round_number % 2:
                runs = [runs[1], runs[0], runs[3], runs[2]]
            for mode, side, run in runs:
                seconds = run(sale_messages(args.count, next(seed)))
                figures[mode][side].append(requests_per_run / seconds)

    print(f"{args.count} sales (provision + confirmation) per run, {args.rounds} rounds, median")
    for mode, (library, baseline) in figures.items():
        library_rps = statistics.median(library)
        baseline_rps = statistics.median(baseline)
        ratio = baseline_rps / library_rps
        label = f"http-{mode}"
        extra = f", {args.in_flight} in flight" if mode == "async" else ""
        print(f"  {label}{extra}: library {library_rps:.0f} req/s, httpx {baseline_rps:.0f} req/s")
        print(
            f"BENCH {label} library_rps={library_rps:.0f} baseline_rps={baseline_rps:.0f} "
            f"ratio={ratio:.2f}"
        )


if __name__ == "__main__":
    main()
