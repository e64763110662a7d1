"""The AdviceQueue contract, run against every adapter; then what only the SQLite queue adds.

The contract section takes a ``queue`` fixture that is either the in-memory queue or a SQLite
queue on a fresh file, both with a lease of ``LEASE`` seconds. What needs two queue objects
on one file, processes, a restart, or a clock that misbehaves is SQLite only, at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pg import PG_DSN, fresh_schema
from sqlite_samples import Samples

from voucher_adapters.stores.memory import (
    AsyncInMemoryAdviceQueue,
    InMemoryAdviceQueue,
    ParkedAdvice,
)
from voucher_adapters.stores.postgres import AsyncPostgresAdviceQueue, PostgresAdviceQueue
from voucher_adapters.stores.sqlite import AsyncSqliteAdviceQueue, SqliteAdviceQueue
from voucher_adapters.stores.sqlite import database as sqlite_database
from voucher_core.ports import AdviceQueue, AsyncAdviceQueue, QueuedAdvice
from voucher_core.replies import AdviceKind
from voucher_core.wire import to_json

LEASE = 10_000.0

Queue = InMemoryAdviceQueue | SqliteAdviceQueue | PostgresAdviceQueue


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Queue]:
    if request.param == "memory":
        yield InMemoryAdviceQueue(lease=LEASE)
        return
    if request.param == "postgres":
        with (
            fresh_schema() as schema,
            PostgresAdviceQueue(PG_DSN, schema=schema, lease=LEASE) as postgres_queue,
        ):
            yield postgres_queue
        return
    sqlite_queue = SqliteAdviceQueue(tmp_path / "voucher.db", lease=LEASE)
    yield sqlite_queue
    sqlite_queue.close()


@pytest.fixture
def samples() -> Samples:
    return Samples()


def ids(taken: object) -> list[str]:
    assert isinstance(taken, list | tuple)
    return [queued.id for queued in taken]


# -- the contract -------------------------------------------------------------------------------


def test_both_implement_the_ports(queue: Queue, tmp_path: Path) -> None:
    port: AdviceQueue = queue
    assert all(callable(getattr(port, name)) for name in ("enqueue", "take_due", "park"))


def test_an_enqueued_advice_is_pending_and_due_at_its_time(queue: Queue, samples: Samples) -> None:
    advice = samples.confirmation()
    queue.enqueue(advice, due=5.0)
    assert len(queue) == 1
    assert queue.pending() == [QueuedAdvice(advice, 0)]
    assert queue.next_due() == 5.0
    assert queue.take_due(4.999) == []
    [taken] = queue.take_due(5.0)
    assert taken.advice == advice
    assert taken.kind is AdviceKind.CONFIRMATION
    assert taken.request_id == advice.request_id
    assert taken.attempts == 1


def test_enqueue_is_idempotent_on_the_advice_id(queue: Queue, samples: Samples) -> None:
    advice = samples.reversal()
    queue.enqueue(advice, due=1.0)
    queue.enqueue(advice, due=100.0)
    assert len(queue) == 1
    assert queue.next_due() == 1.0  # the first enqueue's due time stands


def test_enqueue_again_does_not_reset_a_taken_advice(queue: Queue, samples: Samples) -> None:
    advice = samples.confirmation()
    queue.enqueue(advice, due=0.0)
    [taken] = queue.take_due(0.0)
    queue.enqueue(advice, due=0.0)
    assert queue.take_due(10.0) == []
    assert queue.pending() == [taken]
    assert taken.attempts == 1


def test_enqueue_of_a_parked_advice_leaves_it_parked(queue: Queue, samples: Samples) -> None:
    advice = samples.reversal()
    queue.enqueue(advice, due=0.0)
    queue.take_due(0.0)
    queue.park(advice.id, reason="HTTP 400 FORMAT_ERROR")
    queue.enqueue(advice, due=0.0)
    assert len(queue) == 0
    assert queue.take_due(10.0) == []
    assert [(p.queued.id, p.reason) for p in queue.parked()] == [
        (advice.id, "HTTP 400 FORMAT_ERROR")
    ]


def test_enqueue_with_take_stores_the_advice_already_leased_to_the_caller(
    queue: Queue, samples: Samples
) -> None:
    advice = samples.confirmation()
    taken = queue.enqueue(advice, due=3.0, take=True)
    assert taken == QueuedAdvice(advice, 1)
    assert queue.pending() == [taken]  # stored, and counted as one attempt
    assert queue.take_due(3.0 + LEASE / 2) == []  # nobody else gets it while leased
    queue.acknowledge(advice.id)
    assert len(queue) == 0 and queue.parked() == []


def test_enqueue_with_take_of_an_advice_already_held_returns_nothing(
    queue: Queue, samples: Samples
) -> None:
    advice, parked = samples.reversal(), samples.confirmation()
    queue.enqueue(advice, due=0.0)
    [held] = queue.take_due(0.0)
    assert queue.enqueue(advice, due=1.0, take=True) is None
    assert queue.pending() == [held]  # neither stored twice nor taken twice
    queue.enqueue(parked, due=0.0)
    queue.take_due(0.0, advice_id=parked.id)
    queue.park(parked.id, reason="HTTP 400")
    assert queue.enqueue(parked, due=2.0, take=True) is None
    assert [p.queued.id for p in queue.parked()] == [parked.id]


def test_enqueue_with_take_of_a_free_queued_advice_takes_it(queue: Queue, samples: Samples) -> None:
    advice = samples.reversal()
    assert queue.enqueue(advice, due=5.0) is None
    assert queue.enqueue(advice, due=7.0, take=True) == QueuedAdvice(advice, 1)
    assert queue.take_due(8.0) == []


def test_take_due_hands_out_only_due_advices_earliest_first(queue: Queue, samples: Samples) -> None:
    late, early, middle, future = (samples.confirmation() for _ in range(4))
    queue.enqueue(late, due=3.0)
    queue.enqueue(early, due=1.0)
    queue.enqueue(middle, due=2.0)
    queue.enqueue(future, due=50.0)
    assert ids(queue.take_due(3.0)) == [early.id, middle.id, late.id]
    assert queue.next_due() == 50.0
    assert [q.id for q in queue.pending()] == [late.id, early.id, middle.id, future.id]


def test_take_due_respects_the_limit(queue: Queue, samples: Samples) -> None:
    advices = [samples.confirmation() for _ in range(5)]
    for n, advice in enumerate(advices):
        queue.enqueue(advice, due=float(n))
    assert queue.take_due(10.0, limit=0) == []
    assert queue.take_due(10.0, limit=-1) == []
    assert ids(queue.take_due(10.0, limit=2)) == [advices[0].id, advices[1].id]
    assert ids(queue.take_due(10.0, limit=2)) == [advices[2].id, advices[3].id]
    assert ids(queue.take_due(10.0, limit=2)) == [advices[4].id]
    assert queue.take_due(10.0, limit=2) == []


def test_take_due_by_advice_id_takes_only_that_advice_and_only_when_due(
    queue: Queue, samples: Samples
) -> None:
    first, second = samples.confirmation(), samples.reversal()
    queue.enqueue(first, due=0.0)
    queue.enqueue(second, due=5.0)
    assert queue.take_due(1.0, advice_id=second.id) == []
    assert ids(queue.take_due(5.0, advice_id=second.id)) == [second.id]
    assert queue.take_due(5.0, advice_id="not-queued") == []
    assert ids(queue.take_due(5.0)) == [first.id]  # the other advice was left alone


def test_a_taken_advice_is_not_handed_out_again_until_put_back(
    queue: Queue, samples: Samples
) -> None:
    advice = samples.confirmation()
    queue.enqueue(advice, due=0.0)
    assert len(queue.take_due(0.0)) == 1
    assert queue.take_due(1000.0) == []
    assert queue.take_due(1000.0, advice_id=advice.id) == []
    assert queue.next_due() == LEASE  # when the lease runs out
    assert len(queue) == 1  # still held, just not handed out

    queue.repeat_later(advice.id, due=7.0)
    assert queue.next_due() == 7.0
    assert queue.take_due(6.0) == []
    assert ids(queue.take_due(7.0)) == [advice.id]


def test_attempts_count_each_take_and_repeats_send_identical_bytes(
    queue: Queue, samples: Samples
) -> None:
    confirmation, reversal = samples.confirmation(), samples.reversal()
    original = {confirmation.id: to_json(confirmation), reversal.id: to_json(reversal)}
    queue.enqueue(confirmation, due=0.0)
    queue.enqueue(reversal, due=0.0)
    seen: dict[str, list[int]] = defaultdict(list)
    for n in range(4):
        for taken in queue.take_due(float(n)):
            seen[taken.id].append(taken.attempts)
            assert to_json(taken.advice) == original[taken.id]
            queue.repeat_later(taken.id, due=float(n + 1))
    assert seen == {confirmation.id: [1, 2, 3, 4], reversal.id: [1, 2, 3, 4]}
    assert [q.attempts for q in queue.pending()] == [4, 4]
    assert [to_json(q.advice) for q in queue.pending()] == list(original.values())


def test_acknowledge_removes_the_advice_for_good(queue: Queue, samples: Samples) -> None:
    kept, done = samples.confirmation(), samples.confirmation()
    queue.enqueue(kept, due=0.0)
    queue.enqueue(done, due=0.0)
    queue.take_due(0.0)
    queue.acknowledge(done.id)
    assert len(queue) == 1
    assert [q.id for q in queue.pending()] == [kept.id]
    queue.repeat_later(done.id, due=0.0)  # too late: nothing to put back
    queue.acknowledge(done.id)  # a second acknowledgement is harmless
    queue.acknowledge("never-queued")
    assert len(queue) == 1
    assert queue.take_due(5.0, advice_id=done.id) == []
    assert queue.parked() == []


def test_park_moves_the_advice_aside_with_its_reason_and_requeue_brings_it_back(
    queue: Queue, samples: Samples
) -> None:
    bad, other = samples.reversal(), samples.confirmation()
    queue.enqueue(bad, due=0.0)
    queue.enqueue(other, due=0.0)
    queue.take_due(0.0)
    queue.park(bad.id, reason="HTTP 400 FORMAT_ERROR: bad field")
    queue.repeat_later(other.id, due=2.0)

    assert [q.id for q in queue.pending()] == [other.id]
    assert queue.parked() == [
        ParkedAdvice(QueuedAdvice(bad, 1), "HTTP 400 FORMAT_ERROR: bad field")
    ]
    assert queue.take_due(1000.0, advice_id=bad.id) == []
    assert len(queue) == 1
    queue.park(bad.id, reason="parked twice")  # already parked: the first reason stands
    assert [p.reason for p in queue.parked()] == ["HTTP 400 FORMAT_ERROR: bad field"]

    assert queue.requeue(bad.id, due=3.0)
    assert queue.parked() == []
    assert len(queue) == 2
    assert not queue.requeue(bad.id, due=3.0)
    assert not queue.requeue("never-parked", due=0.0)
    assert not queue.requeue(other.id, due=0.0)  # queued, not parked
    assert queue.take_due(2.9, advice_id=bad.id) == []
    [taken] = queue.take_due(3.0, advice_id=bad.id)
    assert taken.advice == bad
    assert taken.attempts == 2


def test_park_of_an_unknown_advice_changes_nothing(queue: Queue) -> None:
    queue.park("never-queued", reason="whatever")
    assert queue.parked() == []
    assert len(queue) == 0


def test_next_due_is_the_earliest_untaken_due_time(queue: Queue, samples: Samples) -> None:
    assert queue.next_due() is None
    a, b = samples.confirmation(), samples.reversal()
    queue.enqueue(a, due=9.0)
    queue.enqueue(b, due=4.0)
    assert queue.next_due() == 4.0
    queue.take_due(4.0)
    assert queue.next_due() == 9.0
    queue.acknowledge(b.id)
    assert queue.next_due() == 9.0
    queue.take_due(9.0)
    assert queue.next_due() == 9.0 + LEASE
    queue.acknowledge(a.id)
    assert queue.next_due() is None


def test_a_lease_that_runs_out_hands_the_advice_out_again(queue: Queue, samples: Samples) -> None:
    advice, other = samples.confirmation(), samples.reversal()
    queue.enqueue(advice, due=0.0)
    queue.enqueue(other, due=0.0)
    assert len(queue.take_due(0.0)) == 2
    queue.acknowledge(other.id)
    assert queue.take_due(LEASE - 0.001) == []
    [again] = queue.take_due(LEASE)  # its taker died, say
    assert again.id == advice.id and again.attempts == 2
    assert queue.take_due(2 * LEASE - 0.001) == []
    assert queue.next_due() == 2 * LEASE


def test_a_taker_whose_clock_reading_is_a_little_older_does_not_steal_a_lease(
    queue: Queue, samples: Samples
) -> None:
    # Another process read its clock, then waited for the write lock while this one took.
    advice = samples.reversal()
    queue.enqueue(advice, due=0.0)
    assert len(queue.take_due(100.0)) == 1
    assert queue.take_due(99.5) == []
    assert queue.take_due(100.0 + LEASE - 0.5) == []


def test_nothing_is_dropped_by_count_or_age(queue: Queue, samples: Samples) -> None:
    advices = [samples.reversal() for _ in range(30)]
    for advice in advices:
        queue.enqueue(advice, due=0.0)
    for round_ in range(20):
        taken = queue.take_due(float(round_ * 1000), limit=100)
        assert len(taken) == 30
        for queued in taken:
            queue.repeat_later(queued.id, due=float((round_ + 1) * 1000))
    assert len(queue) == 30
    assert {q.attempts for q in queue.pending()} == {20}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def aqueue(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[AsyncInMemoryAdviceQueue | AsyncSqliteAdviceQueue | AsyncPostgresAdviceQueue]:
    if request.param == "memory":
        yield AsyncInMemoryAdviceQueue(InMemoryAdviceQueue(lease=LEASE))
        return
    if request.param == "postgres":
        with fresh_schema() as schema:
            postgres_twin = AsyncPostgresAdviceQueue(PG_DSN, schema=schema, lease=LEASE)
            yield postgres_twin
            asyncio.run(postgres_twin.aclose())
        return
    twin = AsyncSqliteAdviceQueue(tmp_path / "voucher.db", lease=LEASE)
    yield twin
    asyncio.run(twin.aclose())


def test_the_async_twins_honour_the_same_contract(
    aqueue: AsyncInMemoryAdviceQueue | AsyncSqliteAdviceQueue, samples: Samples
) -> None:
    port: AsyncAdviceQueue = aqueue
    advice = samples.confirmation()

    async def flow() -> None:
        other = samples.reversal()
        assert await port.enqueue(other, due=0.0, take=True) == QueuedAdvice(other, 1)
        await port.acknowledge(other.id)
        await port.enqueue(advice, due=1.0)
        await port.enqueue(advice, due=1.0)
        assert await port.take_due(0.5) == []
        [taken] = await port.take_due(1.0, advice_id=advice.id)
        assert taken.attempts == 1 and to_json(taken.advice) == to_json(advice)
        assert await port.take_due(2.0) == []
        await port.repeat_later(advice.id, due=2.0)
        [taken] = await port.take_due(2.0, limit=1)
        assert taken.attempts == 2
        await port.park(advice.id, reason="rejected")
        assert [p.reason for p in aqueue.sync.parked()] == ["rejected"]
        assert aqueue.sync.requeue(advice.id, due=3.0)
        assert ids(await port.take_due(3.0)) == [advice.id]
        await port.acknowledge(advice.id)

    asyncio.run(flow())
    assert len(aqueue.sync) == 0
    assert aqueue.sync.parked() == []


# -- SQLite only: durability, leases shared across objects and processes, clocks ----------------


def test_reopening_the_file_keeps_queued_leased_and_parked_advices(
    tmp_path: Path, samples: Samples
) -> None:
    path = tmp_path / "voucher.db"
    queued, leased, parked = samples.confirmation(), samples.reversal(), samples.reversal()
    with SqliteAdviceQueue(path, lease=30.0) as first:
        first.enqueue(queued, due=50.0)
        first.enqueue(leased, due=0.0)
        first.enqueue(parked, due=0.0)
        first.take_due(1.0, advice_id=leased.id)
        first.take_due(1.0, advice_id=parked.id)
        first.park(parked.id, reason="HTTP 400")
    with SqliteAdviceQueue(path, lease=30.0) as again:
        assert [(q.id, q.attempts) for q in again.pending()] == [(queued.id, 0), (leased.id, 1)]
        assert to_json(again.pending()[0].advice) == to_json(queued)
        assert again.parked() == [ParkedAdvice(QueuedAdvice(parked, 1), "HTTP 400")]
        assert again.stats() == {"queued": 1, "leased": 1, "parked": 1, "oldest_due": 0.0}
        assert again.take_due(30.9) == []  # the lease taken before the restart still holds
        assert ids(again.take_due(31.0)) == [leased.id]
        assert ids(again.take_due(50.0)) == [queued.id]


def test_the_stored_row_is_the_exact_wire_json(tmp_path: Path, samples: Samples) -> None:
    path = tmp_path / "voucher.db"
    advice = samples.reversal()
    with SqliteAdviceQueue(path) as queue:
        queue.enqueue(advice, due=2.5)
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT kind, request_id, body, due, state FROM advice").fetchone()
    assert row == ("reversal", advice.request_id, to_json(advice), 2.5, "queued")


def test_a_lease_that_runs_out_frees_the_advice_for_another_queue(
    tmp_path: Path, samples: Samples
) -> None:
    path = tmp_path / "voucher.db"
    advice = samples.confirmation()
    with (
        SqliteAdviceQueue(path, lease=10.0, holder="a") as a,
        SqliteAdviceQueue(path, lease=10.0, holder="b") as b,
    ):
        a.enqueue(advice, due=0.0)
        assert ids(a.take_due(0.0)) == [advice.id]
        assert b.take_due(9.99) == []
        assert a.take_due(9.99) == []  # the holder itself does not get it twice either
        assert b.next_due() == 10.0
        [again] = b.take_due(10.0)
        assert again.attempts == 2
        assert a.take_due(19.99) == []


def test_a_drainer_whose_lease_was_taken_over_changes_nothing(
    tmp_path: Path, samples: Samples, caplog: pytest.LogCaptureFixture
) -> None:
    """Drainer a stalls past its lease; b takes its advices over. a's late acknowledgement,
    repeat and park are refused (counted and logged); b settles them, and an advice that no
    one took over is still a's to settle."""
    path = tmp_path / "voucher.db"
    acked, parked, repeated, expired = (samples.confirmation() for _ in range(4))
    with (
        SqliteAdviceQueue(path, lease=2.0, holder="a") as a,
        SqliteAdviceQueue(path, lease=2.0, holder="b") as b,
    ):
        for advice in (acked, parked, repeated, expired):
            a.enqueue(advice, due=0.0)
        assert len(a.take_due(0.0)) == 4
        assert ids(b.take_due(2.0, limit=3)) == [acked.id, parked.id, repeated.id]
        with caplog.at_level(logging.WARNING, logger="voucher_core.sqlite"):
            a.acknowledge(acked.id)
            a.park(parked.id, reason="HTTP 400")
            a.repeat_later(repeated.id, due=0.0)
        assert a.fenced == 3 and len(a) == 4 and a.parked() == []
        assert f"acknowledge of advice {acked.id} refused: no longer leased to a (held by b)" in (
            caplog.text
        )
        a.acknowledge(expired.id)  # expired, but no one took it over
        b.acknowledge(acked.id)
        b.park(parked.id, reason="HTTP 400")
        b.repeat_later(repeated.id, due=5.0)
        assert b.fenced == 0 and a.fenced == 3
        assert ids(b.pending()) == [repeated.id]
        assert [p.queued.id for p in b.parked()] == [parked.id]


def test_two_queue_objects_in_threads_never_hold_the_same_advice(
    tmp_path: Path, samples: Samples
) -> None:
    path = tmp_path / "voucher.db"
    advices = [samples.confirmation() for _ in range(60)]
    with SqliteAdviceQueue(path) as setup:
        for advice in advices:
            setup.enqueue(advice, due=0.0)
    held: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    lock = threading.Lock()
    together = threading.Barrier(3)

    def drain(holder: str) -> None:
        with SqliteAdviceQueue(path, holder=holder, lease=60.0) as queue:
            together.wait()
            while len(queue):
                taken = queue.take_due(time.monotonic(), limit=3)
                start = time.monotonic()
                time.sleep(0.001)  # "sending": lets the other threads in
                for queued in taken:
                    end = time.monotonic()
                    with lock:
                        held[queued.id].append((start, end, holder))
                    if queued.attempts < 2:
                        queue.repeat_later(queued.id, due=0.0)
                    else:
                        queue.acknowledge(queued.id)

    threads = [threading.Thread(target=drain, args=(f"t{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert set(held) == {a.id for a in advices}
    assert all(len(spans) == 2 for spans in held.values())
    for spans in held.values():
        first, second = sorted(spans)
        assert first[1] <= second[0]
    assert len({holder for spans in held.values() for *_, holder in spans}) > 1


def test_two_processes_draining_one_file_never_hold_the_same_advice_at_once(
    tmp_path: Path, samples: Samples
) -> None:
    path = tmp_path / "voucher.db"
    advices = [samples.reversal() for _ in range(120)]
    with SqliteAdviceQueue(path) as setup:
        for advice in advices:
            setup.enqueue(advice, due=0.0)
    script = Path(__file__).with_name("sqlite_drainer.py")
    go = tmp_path / "go"
    logs = [tmp_path / f"drainer-{n}.json" for n in range(3)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), f"p{n}", str(log), str(go)], env=env
        )
        for n, log in enumerate(logs)
    ]
    deadline = time.monotonic() + 30
    while not all(Path(f"{log}.ready").exists() for log in logs) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # all three start draining together
    assert [proc.wait(timeout=60) for proc in procs] == [0, 0, 0]

    spans: dict[str, list[tuple[float, float, str, int, str]]] = defaultdict(list)
    for n, log in enumerate(logs):
        for advice_id, taken, released, action, attempts in json.loads(log.read_text()):
            spans[advice_id].append((taken, released, action, attempts, f"p{n}"))
    assert set(spans) == {a.id for a in advices}  # every advice was taken
    for advice_spans in spans.values():
        advice_spans.sort()
        assert [s[2] for s in advice_spans].count("ack") == 1
        assert advice_spans[-1][2] == "ack"
        assert [s[3] for s in advice_spans] == list(range(1, len(advice_spans) + 1))
        for earlier, later in itertools.pairwise(advice_spans):
            assert earlier[1] <= later[0], "two processes held one advice at once"
    takers = {s[4] for advice_spans in spans.values() for s in advice_spans}
    assert len(takers) >= 2  # they really drained side by side
    with SqliteAdviceQueue(path) as after:
        assert len(after) == 0 and after.parked() == []


class JumpyClock:
    """Monotonic time that moves only when told; wall time that can jump on its own."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime(2026, 3, 29, 1, 59, tzinfo=UTC)

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


def test_wall_clock_jumps_cause_no_storm_of_repeats_and_no_mass_expiry(
    tmp_path: Path, samples: Samples, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = JumpyClock()
    with SqliteAdviceQueue(tmp_path / "voucher.db", lease=150.0) as queue:
        waiting = [samples.confirmation() for _ in range(10)]
        held = [samples.reversal() for _ in range(10)]
        for n, confirmation in enumerate(waiting):
            queue.enqueue(confirmation, due=clock.monotonic() + 60.0 + n)
        for reversal in held:
            queue.enqueue(reversal, due=clock.monotonic())
        assert len(queue.take_due(clock.monotonic())) == 10
        before = (queue.stats(), queue.next_due())
        real_time = time.time
        for jump in (timedelta(days=1), -timedelta(days=2), timedelta(hours=-1)):
            clock.wall += jump  # NTP step, DST mistake, an operator setting the date
            monkeypatch.setattr(time, "time", lambda j=jump: real_time() + j.total_seconds())
            clock.mono += 1.0
            assert queue.take_due(clock.monotonic()) == []
            assert (queue.stats(), queue.next_due()) == before
        clock.mono = 1000.0 + 60.0
        assert ids(queue.take_due(clock.monotonic())) == [waiting[0].id]


def test_a_monotonic_clock_that_went_backwards_leaves_nothing_stuck(
    tmp_path: Path, samples: Samples, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_database, "read_boot_id", lambda: None)  # no reboot detection
    path = tmp_path / "voucher.db"
    waiting, held, soon = samples.confirmation(), samples.reversal(), samples.reversal()
    with SqliteAdviceQueue(path, lease=150.0, horizon=3600.0) as queue:
        queue.enqueue(waiting, due=100_000.0 + 300.0)
        queue.enqueue(held, due=100_000.0)
        queue.take_due(100_000.0, advice_id=held.id)
    # The clock restarted near zero: 100 000 s ahead is beyond any backoff or lease.
    with SqliteAdviceQueue(path, lease=150.0, horizon=3600.0) as queue:
        assert queue.next_due() == 100_000.0 + 150.0  # raw stored times, without ``now``
        assert queue.next_due(now=5.0) == 5.0
        queue.enqueue(soon, due=10.0)  # written on the new clock: a normal future due time
        assert sorted(ids(queue.take_due(5.0))) == sorted([waiting.id, held.id])
        assert queue.take_due(9.0) == []
        assert ids(queue.take_due(10.0)) == [soon.id]


def test_a_small_backward_step_within_the_horizon_just_waits(
    tmp_path: Path, samples: Samples
) -> None:
    advice = samples.confirmation()
    with SqliteAdviceQueue(tmp_path / "voucher.db", horizon=3600.0) as queue:
        queue.enqueue(advice, due=2000.0)
        assert queue.take_due(500.0) == []  # 1500 s ahead: could be real, it waits
        assert ids(queue.take_due(2000.0)) == [advice.id]


def test_after_a_reboot_every_stored_due_time_and_lease_is_reset_on_open(
    tmp_path: Path, samples: Samples
) -> None:
    path = tmp_path / "voucher.db"
    waiting, held, parked = samples.confirmation(), samples.reversal(), samples.reversal()
    with SqliteAdviceQueue(path) as queue:
        queue.enqueue(waiting, due=90_000.0)
        queue.enqueue(held, due=0.0)
        queue.enqueue(parked, due=0.0)
        queue.take_due(1.0)
        queue.park(parked.id, reason="HTTP 400")
        assert queue.database.reset_on_open == 0
    if sqlite_database.read_boot_id() is None:
        pytest.skip("this system does not say which boot it is")
    with sqlite3.connect(path) as conn:  # as if the file was written before the last boot
        conn.execute("UPDATE meta SET value = 'an earlier boot' WHERE key = 'boot_id'")
    with SqliteAdviceQueue(path) as queue:
        assert queue.database.reset_on_open == 2
        assert sorted(ids(queue.take_due(0.0))) == sorted([waiting.id, held.id])
        assert [p.queued.id for p in queue.parked()] == [parked.id]
    with SqliteAdviceQueue(path) as queue:  # same boot again: nothing more to reset
        assert queue.database.reset_on_open == 0


def test_an_unreadable_stored_advice_is_parked_and_does_not_block_the_others(
    tmp_path: Path, samples: Samples
) -> None:
    path = tmp_path / "voucher.db"
    broken, fine = samples.confirmation(), samples.confirmation()
    with SqliteAdviceQueue(path) as queue:
        queue.enqueue(broken, due=0.0)
        queue.enqueue(fine, due=1.0)
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE advice SET body = ? WHERE id = ?", (b'{"id": 1}', broken.id))
        assert ids(queue.take_due(5.0)) == [fine.id]
        [(state, reason)] = sqlite3.connect(path).execute(
            "SELECT state, park_reason FROM advice WHERE id = ?", (broken.id,)
        )
        assert state == "parked" and reason.startswith("stored advice is unreadable")


def test_operator_calls_of_the_async_twin(tmp_path: Path, samples: Samples) -> None:
    advice = samples.reversal()

    async def flow() -> dict[str, Any]:
        twin = AsyncSqliteAdviceQueue(tmp_path / "voucher.db", lease=20.0)
        await twin.enqueue(advice, due=3.0)
        assert await twin.next_due() == 3.0
        assert [q.id for q in await twin.pending()] == [advice.id]
        await twin.take_due(3.0)
        await twin.park(advice.id, reason="no")
        assert [p.reason for p in await twin.parked()] == ["no"]
        assert await twin.requeue(advice.id, due=4.0)
        stats = await twin.stats()
        await twin.aclose()
        return stats

    assert asyncio.run(flow()) == {"queued": 1, "leased": 0, "parked": 0, "oldest_due": 4.0}
