"""Core benchmark: the library's overhead over a hand-written sale, in time and memory.

Both sides sell the same pre-built dual-messaging requests to the same in-memory switch with
the same converter: provision, parse the response, build and send the confirmation, parse the
acknowledgement. The library goes through the transaction core, the sync driver, the
in-memory transport and the in-memory advice queue; the baseline keeps the state in a local
string and uses if/else. Rounds alternate between the two so machine noise hits both alike.

Memory: each side holds N sales in flight (provisioned, waiting for the host), each keeping
the same request and response, and tracemalloc measures what stays allocated per sale.

Import: fresh interpreters time ``import voucher_core`` and, as its baseline, ``import attrs,
cattrs, transitions`` (the three libraries the core stands on), alternating, with compiled
bytecode cached as an installed package has it.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

from voucher_adapters.bootstrap import Settings, build
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import Operation, SwitchSimulator
from voucher_core import DriverSettings, ProviderProfile, State
from voucher_core.messages import ProvisionRequest, TenderAdvice
from voucher_core.policy import Messaging
from voucher_core.replies import (
    AdviceKind,
    Approved,
    classify_advice,
    classify_provision,
)
from voucher_core.wire import to_json

DUAL = ProviderProfile(messaging=Messaging.DUAL)
START = datetime(2026, 1, 1, tzinfo=UTC)


def make_requests(n: int, seed: int) -> list[ProvisionRequest]:
    ids = SeededIds(seed)
    return [demo_request(id=ids(), time=START) for _ in range(n)]


def library_settings(switch: SwitchSimulator) -> Settings:
    """The library as a host would build it: the simulator in this process, memory stores."""
    return Settings(
        simulator=switch,
        username=DEMO_CLIENT_ID,
        clock=SimulatedClock(START),
        driver=DriverSettings(profile=DUAL, new_id=SeededIds(1)),
    )


def library_run(requests: list[ProvisionRequest]) -> None:
    driver = build(library_settings(SwitchSimulator())).driver
    tenders = cash(1000)
    for request in requests:
        tx = driver.sell(request)
        driver.confirm(tx, tenders)
        if tx.state is not State.DONE:
            raise RuntimeError(f"library sale ended {tx.state}")


def baseline_run(requests: list[ProvisionRequest]) -> None:
    switch = SwitchSimulator()
    clock = SimulatedClock(START)
    new_id = SeededIds(1)
    tenders = cash(1000)
    for request in requests:
        state = "PROVISIONING"
        reply = switch.handle(Operation.PROVISION, to_json(request), username=DEMO_CLIENT_ID)
        result = classify_provision(reply.status, reply.body, request)
        if isinstance(result, Approved):
            state = "PROVISIONED"
            advice = TenderAdvice(
                id=new_id(),
                request_id=request.id,
                time=clock.now(),
                third_party_identifiers=result.response.third_party_identifiers,
                tenders=tenders,
            )
            state = "CONFIRMING"
            ack = switch.handle(Operation.CONFIRM, to_json(advice), username=DEMO_CLIENT_ID)
            settled = classify_advice(AdviceKind.CONFIRMATION, ack.status, ack.body)
            if settled.__class__.__name__ == "Acknowledged":
                state = "DONE"
        if state != "DONE":
            raise RuntimeError(f"baseline sale ended {state}")


def timed(run: Callable[[list[ProvisionRequest]], None], requests: list[ProvisionRequest]) -> float:
    gc.collect()
    start = time.perf_counter()
    run(requests)
    return time.perf_counter() - start


def retained_library(requests: list[ProvisionRequest]) -> tuple[int, object]:
    switch = SwitchSimulator()
    driver = build(library_settings(switch)).driver
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for request in requests:
        driver.sell(request)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, (switch, driver)


def retained_baseline(requests: list[ProvisionRequest]) -> tuple[int, object]:
    switch = SwitchSimulator()
    held: dict[str, tuple[str, ProvisionRequest, object]] = {}
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for request in requests:
        reply = switch.handle(Operation.PROVISION, to_json(request), username=DEMO_CLIENT_ID)
        result = classify_provision(reply.status, reply.body, request)
        if isinstance(result, Approved):
            held[request.id] = ("PROVISIONED", request, result.response)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, (switch, held)


_IMPORT_TIMER = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"


def import_seconds(rounds: int) -> tuple[float, float]:
    """Median seconds to import voucher_core and to import attrs, cattrs and transitions alone."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as cache:
        env["PYTHONPYCACHEPREFIX"] = cache  # bytecode written once, then read, as installed

        def once(modules: str) -> float:
            code = _IMPORT_TIMER.format(modules)
            done = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            return float(done.stdout)

        once("voucher_core")  # compiles and caches every module both sides import
        library, baseline = [], []
        for _ in range(rounds):
            library.append(once("voucher_core"))
            baseline.append(once("attrs, cattrs, transitions"))
    return statistics.median(library), statistics.median(baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=2_000)
    parser.add_argument("--import-rounds", type=int, default=21)
    args = parser.parse_args()

    library_times: list[float] = []
    baseline_times: list[float] = []
    for round_number in range(args.rounds):
        requests = make_requests(args.count, seed=round_number)
        # Alternate which side goes first, so warm-up and drift favour neither.
        order = [(library_run, library_times), (baseline_run, baseline_times)]
        for run, sink in order if round_number % 2 == 0 else reversed(order):
            sink.append(timed(run, requests))
    library_us = statistics.median(library_times) / args.count * 1e6
    baseline_us = statistics.median(baseline_times) / args.count * 1e6
    ratio = library_us / baseline_us

    in_flight = make_requests(args.in_flight, seed=99)
    library_total, keep_library = retained_library(in_flight)
    del keep_library
    baseline_total, keep_baseline = retained_baseline(in_flight)
    del keep_baseline
    library_bytes = library_total / args.in_flight
    baseline_bytes = baseline_total / args.in_flight

    import_s, import_baseline_s = import_seconds(args.import_rounds)
    import_ratio = import_s / import_baseline_s

    print(f"dual-messaging sales: {args.count} per round, {args.rounds} rounds (median)")
    print(f"  library   {library_us:8.1f} us/sale")
    print(f"  baseline  {baseline_us:8.1f} us/sale")
    print(f"  ratio     {ratio:8.2f}  (target <= 1.2)")
    print(f"retained per in-flight sale ({args.in_flight} held, switch records included)")
    print(f"  library   {library_bytes:8.0f} bytes")
    print(f"  baseline  {baseline_bytes:8.0f} bytes")
    print(f"  extra     {library_bytes - baseline_bytes:8.0f} bytes  (target <= 1024)")
    print(f"import, fresh interpreter ({args.import_rounds} each, median)")
    print(f"  import voucher_core                 {import_s * 1e3:8.1f} ms")
    print(f"  import attrs, cattrs, transitions   {import_baseline_s * 1e3:8.1f} ms")
    print(f"  ratio                               {import_ratio:8.2f}  (target <= 1.35)")
    print(
        f"BENCH core library_us={library_us:.1f} baseline_us={baseline_us:.1f} "
        f"ratio={ratio:.2f} library_bytes={library_bytes:.0f} baseline_bytes={baseline_bytes:.0f} "
        f"import_ms={import_s * 1e3:.1f} import_baseline_ms={import_baseline_s * 1e3:.1f} "
        f"import_ratio={import_ratio:.2f}"
    )


if __name__ == "__main__":
    main()
