"""Durable benchmark: whole dual-messaging sales per second with the journal and the advice
queue in SQLite (WAL, ``synchronous=FULL``: every commit is on disk before it returns).

The switch is the in-memory simulator, so what is measured is the storage. Each sale is
durable end to end: the journal records it before the provision leaves and after every
change, the confirmation is stored in the queue before it is sent, and the sale ends DONE
with its confirmation acknowledged and removed from the queue.

- **sequential**: the sync ``Driver`` with ``SqliteJournal`` and ``SqliteAdviceQueue``, one
  sale after another (sell, then the host confirms).
- **concurrent**: the ``AsyncDriver`` with ``AsyncSqliteJournal`` and
  ``AsyncSqliteAdviceQueue``, N sales in flight; their writes share commits (group commit).
- **baseline**: plain ``sqlite3`` with the same pragmas inserting and then deleting the same
  number of rows as there are sales, one commit each: what the disk allows one writer that
  commits every change on its own.

Journal and queue share one file, as a till would keep them. Files go in a temporary
directory inside the project, so they sit on the filesystem the project does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal

from adapters.clock import SystemClock
from adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from adapters.memory import AsyncInMemoryTransport, InMemoryTransport
from adapters.simulator import SwitchSimulator
from adapters.sqlite import (
    AsyncSqliteAdviceQueue,
    AsyncSqliteJournal,
    SqliteAdviceQueue,
    SqliteJournal,
)
from voucher_core import AsyncDriver, Driver, DriverSettings, ProviderProfile, State
from voucher_core.messages import ProvisionRequest
from voucher_core.policy import Messaging

ROOT = Path(__file__).resolve().parent.parent
DUAL = ProviderProfile(messaging=Messaging.DUAL)
TENDERS = cash(1000)


def requests(count: int, seed: int) -> list[ProvisionRequest]:
    ids, clock = SeededIds(seed), SystemClock()
    return [demo_request(id=ids(), time=clock.now()) for _ in range(count)]


def settings(seed: int) -> DriverSettings:
    return DriverSettings(profile=DUAL, new_id=SeededIds(seed + 1))


def check(journal: SqliteJournal, queue: SqliteAdviceQueue, count: int) -> None:
    """Every sale ended DONE on disk and the queue is empty: the run did what it claims."""
    entries = journal.entries()
    done = sum(entry.transaction.state is State.DONE for entry in entries)
    if len(entries) != count or done != count or len(queue) or queue.parked():
        raise RuntimeError(f"{done} of {count} sales DONE, {len(queue)} advices left")


def sequential(path: Path, count: int, seed: int) -> tuple[float, int]:
    """Seconds for ``count`` sales through the sync driver, and how many commits they took."""
    journal, queue = SqliteJournal(path), SqliteAdviceQueue(path)
    driver = Driver(
        InMemoryTransport(SwitchSimulator(seed=seed), username=DEMO_CLIENT_ID),
        queue,
        clock=SystemClock(),
        journal=journal,
        settings=settings(seed),
    )
    sales = requests(count, seed)
    commits_before = journal.commits + queue.commits
    began = time.perf_counter()
    for request in sales:
        driver.confirm(driver.sell(request), TENDERS)
    seconds = time.perf_counter() - began
    commits = journal.commits + queue.commits - commits_before
    check(journal, queue, count)
    journal.close()
    queue.close()
    return seconds, commits


async def concurrent(
    path: Path, count: int, in_flight: int, seed: int, commit_on: Literal["thread", "loop"]
) -> tuple[float, int]:
    """Seconds for ``count`` sales through the asyncio driver, ``in_flight`` at a time, and
    how many commits they took."""
    journal = await asyncio.to_thread(AsyncSqliteJournal, path, commit_on=commit_on)
    queue = await asyncio.to_thread(AsyncSqliteAdviceQueue, path, commit_on=commit_on)
    driver = AsyncDriver(
        AsyncInMemoryTransport(SwitchSimulator(seed=seed), username=DEMO_CLIENT_ID),
        queue,
        clock=SystemClock(),
        journal=journal,
        settings=settings(seed),
    )
    gate = asyncio.Semaphore(in_flight)

    async def one(request: ProvisionRequest) -> None:
        async with gate:
            await driver.confirm(await driver.sell(request), TENDERS)

    sales = requests(count, seed)
    commits_before = journal.commits + queue.commits
    began = time.perf_counter()
    await asyncio.gather(*(one(request) for request in sales))
    seconds = time.perf_counter() - began
    commits = journal.commits + queue.commits - commits_before
    check(journal.sync, queue.sync, count)
    await journal.aclose()
    await queue.aclose()
    return seconds, commits


def baseline(path: Path, count: int) -> float:
    """Commits per second: ``count`` rows inserted, then deleted, one commit each."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE row (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    body = os.urandom(600)  # about an advice's size
    began = time.perf_counter()
    for key in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO row (id, body) VALUES (?, ?)", (key, body))
        conn.execute("COMMIT")
    for key in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM row WHERE id = ?", (key,))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - began
    conn.close()
    return 2 * count / seconds


class Figures:
    """Per-run figures, kept for the medians."""

    def __init__(self, count: int, in_flight: int) -> None:
        self.count = count
        self.in_flight = in_flight
        self.seq_tps: list[float] = []
        self.seq_commits: list[float] = []
        self.con_tps: list[float] = []
        self.con_commits: list[float] = []
        self.thr_tps: list[float] = []
        self.thr_commits: list[float] = []
        self.base_cps: list[float] = []

    def sequential(self, path: Path, seed: int) -> None:
        seconds, commits = sequential(path, self.count, seed)
        self.seq_tps.append(self.count / seconds)
        self.seq_commits.append(commits / self.count)

    def concurrent(self, path: Path, seed: int) -> None:
        """Group commit on the event loop (``commit_on="loop"``)."""
        seconds, commits = asyncio.run(concurrent(path, self.count, self.in_flight, seed, "loop"))
        self.con_tps.append(self.count / seconds)
        self.con_commits.append(commits / self.count)

    def concurrent_thread(self, path: Path, seed: int) -> None:
        """Group commit on a worker thread (the default, ``commit_on="thread"``)."""
        seconds, commits = asyncio.run(concurrent(path, self.count, self.in_flight, seed, "thread"))
        self.thr_tps.append(self.count / seconds)
        self.thr_commits.append(commits / self.count)

    def baseline(self, path: Path, seed: int) -> None:
        self.base_cps.append(baseline(path, self.count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2000, help="sales per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=50)
    args = parser.parse_args()

    figures = Figures(args.count, args.in_flight)
    with tempfile.TemporaryDirectory(prefix=".bench-durable-", dir=ROOT) as folder:
        files = iter(Path(folder, f"run-{n}.db") for n in range(1_000))
        # Warm up: imports, the converter's generated code, the first files on this disk.
        sequential(next(files), 50, seed=1)
        asyncio.run(concurrent(next(files), 50, args.in_flight, 2, "loop"))
        asyncio.run(concurrent(next(files), 50, args.in_flight, 3, "thread"))
        runs = [
            figures.sequential,
            figures.concurrent,
            figures.concurrent_thread,
            figures.baseline,
        ]
        for round_number in range(args.rounds):
            # Alternate the order, so that drifting machine noise hits every run alike.
            order = runs if round_number % 2 == 0 else runs[::-1]
            for position, run in enumerate(order):
                run(next(files), 10 * round_number + position + 10)

    median = statistics.median
    seq, con, base = median(figures.seq_tps), median(figures.con_tps), median(figures.base_cps)
    seq_commits, con_commits = median(figures.seq_commits), median(figures.con_commits)
    thr, thr_commits = median(figures.thr_tps), median(figures.thr_commits)
    print(
        f"{args.count} durable dual-messaging sales per run (sell, confirm, confirmation "
        f"acknowledged), {args.rounds} rounds, median; SQLite WAL, synchronous=FULL"
    )
    print(f"  {'run':<46} {'per second':>16} {'commits/sale':>13}")
    rows = [
        ("sequential, sync Driver", f"{seq:,.0f} sales", f"{seq_commits:.2f}"),
        (
            f"AsyncDriver, {args.in_flight} in flight, commit on loop",
            f"{con:,.0f} sales",
            f"{con_commits:.2f}",
        ),
        (
            f"AsyncDriver, {args.in_flight} in flight, commit on thread",
            f"{thr:,.0f} sales",
            f"{thr_commits:.2f}",
        ),
        ("baseline, raw sqlite3, one commit a row", f"{base:,.0f} commits", "-"),
    ]
    for name, rate, commits in rows:
        print(f"  {name:<46} {rate:>16} {commits:>13}")
    print(
        f"BENCH durable seq_tps={seq:.0f} concurrent_tps={con:.0f} "
        f"baseline_commits_per_s={base:.0f}"
    )


if __name__ == "__main__":
    main()
