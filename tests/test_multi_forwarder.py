"""Four forwarder processes drain one PostgreSQL queue of 10,000 advices; one is SIGKILLed.

Each forwarder (tests/pg_forwarder.py) logs every delivery with its monotonic start and end
and the end of the lease it held, then acknowledges. Midway, one forwarder is frozen, the
advices it holds are noted, and it is killed. With a 2 s lease the others take those over.
Then: every advice was delivered, always with its original bytes; no two forwarders ever
delivered one advice at the same time while both held its lease; what the dead forwarder
held was delivered again by another; and the queue is empty.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from pg import PG_DSN, fresh_schema, sql
from sqlite_samples import Samples

from voucher_adapters.stores.postgres import PostgresAdviceQueue
from voucher_core.wire import to_json

ADVICES = 10_000
FORWARDERS = 4
LEASE = 2.0


class Delivery(NamedTuple):
    body: bytes
    pid: int
    start: float
    end: float
    lease_end: float
    attempts: int

    @property
    def under_lease(self) -> bool:
        return self.end <= self.lease_end


@pytest.fixture
def schema() -> Iterator[str]:
    with fresh_schema() as name:
        yield name


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def freeze_holding_advices(proc: subprocess.Popen[bytes], schema: str, owner: str) -> set[str]:
    """Stop the process at a moment it holds leased advices; return their ids."""
    for _ in range(200):
        os.kill(proc.pid, signal.SIGSTOP)
        held = sql(
            "SELECT id FROM {s}.advice WHERE lease_owner = %s AND state = 'queued'",
            owner,
            schema=schema,
        )
        if held:
            return {str(advice_id) for (advice_id,) in held}
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError(f"{owner} never held an advice when looked at")


def drain_killing_one(schema: str, folder: Path) -> tuple[list[Path], set[str], int]:
    """Run the forwarders, freeze and kill the first midway; return the logs, what it held
    when it died, and its pid."""
    script = Path(__file__).with_name("pg_forwarder.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    go = folder / "go"
    logs = [folder / f"forwarder-{n}.jsonl" for n in range(FORWARDERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), PG_DSN, schema, f"w{n}", str(log), str(go), str(LEASE)],
            env=env,
        )
        for n, log in enumerate(logs)
    ]
    try:
        deadline = time.monotonic() + 30
        while not all(Path(f"{log}.ready").exists() for log in logs):
            assert time.monotonic() < deadline, "the forwarders did not start"
            assert all(proc.poll() is None for proc in procs), "a forwarder died at start"
            time.sleep(0.01)
        go.touch()  # all four start draining together
        while sum(lines(log) for log in logs) < ADVICES // 3:
            assert time.monotonic() < deadline + 30, "the forwarders make no progress"
            time.sleep(0.005)
        victim = procs[0]
        held = freeze_holding_advices(victim, schema, "w0")
        victim.kill()
        assert victim.wait(timeout=10) == -signal.SIGKILL
        assert [proc.wait(timeout=55) for proc in procs[1:]] == [0] * (FORWARDERS - 1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return logs, held, victim.pid


def read_deliveries(logs: list[Path]) -> dict[str, list[Delivery]]:
    deliveries: dict[str, list[Delivery]] = defaultdict(list)
    for log in logs:
        for line in log.read_text(encoding="ascii").splitlines():
            advice_id, body, pid, start, end, lease_end, attempts = json.loads(line)
            deliveries[advice_id].append(
                Delivery(bytes.fromhex(body), pid, start, end, lease_end, attempts)
            )
    return deliveries


def test_four_forwarder_processes_one_killed_deliver_everything_never_concurrently(
    schema: str, tmp_path: Path
) -> None:
    samples = Samples(11)
    advices = [samples.confirmation() if n % 2 else samples.reversal() for n in range(ADVICES)]
    original = {advice.id: to_json(advice) for advice in advices}
    with PostgresAdviceQueue(PG_DSN, schema=schema) as queue:
        queue.enqueue_many(advices, due=0.0)
        assert len(queue) == ADVICES

    logs, held, victim = drain_killing_one(schema, tmp_path)
    deliveries = read_deliveries(logs)
    every = [d for spans in deliveries.values() for d in spans]

    assert deliveries.keys() == original.keys()  # every advice delivered at least once
    for advice_id, spans in deliveries.items():  # every delivery, repeats included: same bytes
        assert all(d.body == original[advice_id] for d in spans), advice_id
    assert len({d.pid for d in every}) == FORWARDERS  # all four delivered, the victim too
    assert sum(d.under_lease for d in every) >= 0.99 * len(every)  # the check below has teeth

    for advice_id, spans in deliveries.items():
        for a, b in itertools.combinations(sorted(spans, key=lambda d: d.start), 2):
            if a.pid != b.pid and a.under_lease and b.under_lease:
                assert a.end <= b.start, f"advice {advice_id} sent by two forwarders at once"
        if len(spans) > 1:  # only a dead forwarder or a lease run out explains a repeat
            assert advice_id in held or not all(d.under_lease for d in spans), advice_id

    for advice_id in held:  # what the dead forwarder held, another delivered after it
        again = [d for d in deliveries[advice_id] if d.pid != victim]
        assert again and all(d.attempts >= 2 for d in again), advice_id

    with PostgresAdviceQueue(PG_DSN, schema=schema) as queue:
        assert len(queue) == 0
        assert queue.parked() == []
