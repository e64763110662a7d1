"""Durable benchmark: whole dual-messaging sales per second with the journal and the advice
queue in SQLite (WAL, ``synchronous=FULL``: every commit is on disk before it returns).

The switch answers from a recording of the simulator's answers to the same sales, made
before the clock starts (:class:`RecordedSwitch`): a till's switch is another machine, and
its work is not the till's. One run has the simulator answer in this process instead, for
comparison. Each sale is durable end to end: the journal records it before the provision
leaves and after every change, the confirmation is stored in the queue before it is sent,
and the sale ends DONE with its confirmation acknowledged and removed from the queue.

- **sequential**: the sync ``Driver`` with ``SqliteJournal`` and ``SqliteAdviceQueue``, one
  sale after another (sell, then the host confirms).
- **concurrent**: the ``AsyncDriver`` with ``AsyncSqliteJournal`` and
  ``AsyncSqliteAdviceQueue``, N sales in flight; their writes share commits (group commit).
- **baseline**: plain ``sqlite3`` with the same pragmas inserting and then deleting the same
  number of rows as there are sales, one commit each: what the disk allows one writer that
  commits every change on its own.

Journal and queue share one file, as a till would keep them; the drivers are built as a
host builds them (:mod:`voucher_adapters.bootstrap`), which claims the journal before the
clock starts and writes each state change with the advice it queues or settles in one commit
(four commits a dual sale). The sequential run is also given as a share of what the baseline's
commit rate allows for the commits a sale took (``seq_of_raw``: 1.0 would be a sale costing
nothing but its commits). Files go in a temporary directory inside the project, so they sit on the
filesystem the project does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast

from voucher_adapters.bootstrap import Settings, build, build_async
from voucher_adapters.clock import SystemClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import Operation, SimReply, SwitchSimulator
from voucher_adapters.stores.sqlite import (
    AsyncSqliteAdviceQueue,
    AsyncSqliteJournal,
    Database,
    SqliteAdviceQueue,
    SqliteJournal,
)
from voucher_core import AsyncDriver, DriverSettings, ProviderProfile, State
from voucher_core.messages import ProvisionRequest
from voucher_core.policy import Messaging
from voucher_core.wire import to_wire

ROOT = Path(__file__).resolve().parent.parent
DUAL = ProviderProfile(messaging=Messaging.DUAL)
TENDERS = cash(1000)


def requests(count: int, seed: int) -> list[ProvisionRequest]:
    ids, clock = SeededIds(seed), SystemClock()
    return [demo_request(id=ids(), time=clock.now()) for _ in range(count)]


def settings(seed: int) -> DriverSettings:
    return DriverSettings(profile=DUAL, new_id=SeededIds(seed + 1))


class RecordedSwitch:
    """A switch far away: it answers at once from a recording, spending no time here.

    The answers are the simulator's own, made for the same sales before the clock starts
    (a 201 with the voucher for each provision; a confirmation is answered 202 with its
    body, as the simulator answers one). The driver, the transport's encoding and its
    reading and classifying of every reply still run in full; only the switch's own work
    (validating, minting, keeping books) is left out of the measured process, as it is on a
    till that talks to the real switch.
    """

    def __init__(self, sales: list[ProvisionRequest], seed: int) -> None:
        simulator = SwitchSimulator(seed=seed)
        # Encoded here without ``to_json``, whose cache would otherwise be warm for the run.
        self._provisions = {
            request.id: simulator.handle(
                Operation.PROVISION,
                json.dumps(to_wire(request), separators=(",", ":")).encode(),
                username=DEMO_CLIENT_ID,
            )
            for request in sales
        }
        if any(answer.status != 201 for answer in self._provisions.values()):
            raise RuntimeError("the simulator did not approve every recorded provision")

    def handle(
        self,
        operation: Operation,
        body: bytes = b"",
        *,
        username: str | None,
        provision_id: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> SimReply:
        if operation is Operation.PROVISION:
            return self._provisions[json.loads(body)["id"]]
        if operation is Operation.CONFIRM:
            return SimReply(202, body)
        raise RuntimeError(f"the recording has no {operation.value}")


def check(journal: SqliteJournal, queue: SqliteAdviceQueue, count: int) -> None:
    """Every sale ended DONE on disk and the queue is empty: the run did what it claims."""
    entries = journal.entries()
    done = sum(entry.transaction.state is State.DONE for entry in entries)
    if len(entries) != count or done != count or len(queue) or queue.parked():
        raise RuntimeError(f"{done} of {count} sales DONE, {len(queue)} advices left")


def switch_for(sales: list[ProvisionRequest], seed: int, recorded: bool) -> SwitchSimulator:
    """The simulator itself, or a :class:`RecordedSwitch` of its answers for ``sales``."""
    if recorded:
        return cast(SwitchSimulator, RecordedSwitch(sales, seed))
    return SwitchSimulator(seed=seed)


def till(
    path: Path,
    sales: list[ProvisionRequest],
    seed: int,
    *,
    recorded: bool,
    commit_on: Literal["thread", "loop"] = "thread",
) -> Settings:
    """A till on the SQLite file ``path``, reaching the simulator or a recording of its
    answers for ``sales`` in this process."""
    return Settings(
        simulator=switch_for(sales, seed, recorded),
        username=DEMO_CLIENT_ID,
        db=str(path),
        commit_on=commit_on,
        clock=SystemClock(),
        driver=settings(seed),
    )


def commits(*databases: Database) -> int:
    """Commits made on these connections, each counted once (journal and queue may share)."""
    return sum(database.commits for database in {id(db): db for db in databases}.values())


def sequential(path: Path, count: int, seed: int, *, recorded: bool) -> tuple[float, int]:
    """Seconds for ``count`` sales through the sync driver, and how many commits they took."""
    sales = requests(count, seed)
    with build(till(path, sales, seed, recorded=recorded)) as app:
        driver = app.driver
        journal, queue = cast(SqliteJournal, app.journal), cast(SqliteAdviceQueue, app.queue)
        commits_before = commits(journal.database, queue.database)
        began = time.perf_counter()
        for request in sales:
            driver.confirm(driver.sell(request), TENDERS)
        seconds = time.perf_counter() - began
        made = commits(journal.database, queue.database) - commits_before
        check(journal, queue, count)
    return seconds, made


async def drive(driver: AsyncDriver, sales: list[ProvisionRequest], in_flight: int) -> float:
    """Seconds for ``sales`` through the asyncio driver, ``in_flight`` at a time."""
    gate = asyncio.Semaphore(in_flight)

    async def one(request: ProvisionRequest) -> None:
        async with gate:
            await driver.confirm(await driver.sell(request), TENDERS)

    began = time.perf_counter()
    await asyncio.gather(*(one(request) for request in sales))
    return time.perf_counter() - began


async def concurrent(
    path: Path,
    count: int,
    in_flight: int,
    seed: int,
    commit_on: Literal["thread", "loop"],
    *,
    recorded: bool,
) -> tuple[float, int]:
    """Seconds for ``count`` sales on SQLite through the asyncio driver, ``in_flight`` at a
    time, and how many commits they took."""
    sales = requests(count, seed)
    wanted = till(path, sales, seed, recorded=recorded, commit_on=commit_on)
    async with await build_async(wanted) as app:
        journal = cast(AsyncSqliteJournal, app.journal)
        queue = cast(AsyncSqliteAdviceQueue, app.queue)
        databases = (journal.sync.database, queue.sync.database)
        commits_before = commits(*databases)
        seconds = await drive(app.driver, sales, in_flight)
        made = commits(*databases) - commits_before
        check(journal.sync, queue.sync, count)
    return seconds, made


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
    """Per-run figures (sales or commits per second, commits per sale), kept for medians."""

    def __init__(self, count: int, in_flight: int) -> None:
        self.count = count
        self.in_flight = in_flight
        self.rate: dict[str, list[float]] = {}
        self.commits: dict[str, list[float]] = {}

    def add(self, name: str, seconds: float, commits: int | None = None) -> None:
        self.rate.setdefault(name, []).append(self.count / seconds)
        if commits is not None:
            self.commits.setdefault(name, []).append(commits / self.count)

    def median(self, name: str) -> float:
        return statistics.median(self.rate[name])

    def commits_per_sale(self, name: str) -> str:
        return f"{statistics.median(self.commits[name]):.2f}" if name in self.commits else "-"

    def of_raw(self) -> float:
        """The sequential rate as a share of what the baseline's commits allow for the
        commits a sequential sale took."""
        allowed = self.median("baseline") / statistics.median(self.commits["seq"])
        return self.median("seq") / allowed

    def sequential(self, path: Path, seed: int) -> None:
        self.add("seq", *sequential(path, self.count, seed, recorded=True))

    def concurrent(self, path: Path, seed: int) -> None:
        """Group commit on the event loop (``commit_on="loop"``)."""
        run = concurrent(path, self.count, self.in_flight, seed, "loop", recorded=True)
        self.add("loop", *asyncio.run(run))

    def concurrent_simulator(self, path: Path, seed: int) -> None:
        """The same, with the simulator answering in this process."""
        run = concurrent(path, self.count, self.in_flight, seed, "loop", recorded=False)
        self.add("loop-sim", *asyncio.run(run))

    def concurrent_thread(self, path: Path, seed: int) -> None:
        """Group commit on a worker thread (the default, ``commit_on="thread"``)."""
        run = concurrent(path, self.count, self.in_flight, seed, "thread", recorded=True)
        self.add("thread", *asyncio.run(run))

    def baseline(self, path: Path, seed: int) -> None:
        # baseline() gives commits per second; store it so that median() gives it back.
        self.add("baseline", self.count / baseline(path, self.count))


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
        sequential(next(files), 50, seed=1, recorded=True)
        for mode in ("loop", "thread"):
            asyncio.run(concurrent(next(files), 50, args.in_flight, 2, mode, recorded=True))
        asyncio.run(concurrent(next(files), 50, args.in_flight, 3, "loop", recorded=False))
        runs = [
            figures.sequential,
            figures.concurrent,
            figures.concurrent_simulator,
            figures.concurrent_thread,
            figures.baseline,
        ]
        for round_number in range(args.rounds):
            # Alternate the order, so that drifting machine noise hits every run alike.
            order = runs if round_number % 2 == 0 else runs[::-1]
            for position, run in enumerate(order):
                run(next(files), 10 * round_number + position + 10)

    n = args.in_flight
    rows = [
        ("seq", "sequential, sync Driver", "sales"),
        ("loop", f"AsyncDriver, {n} in flight, commit on loop", "sales"),
        ("loop-sim", "  the same, simulator in this process", "sales"),
        ("thread", f"AsyncDriver, {n} in flight, commit on thread", "sales"),
        ("baseline", "baseline, raw sqlite3, one commit a row", "commits"),
    ]
    print(
        f"{args.count} durable dual-messaging sales per run (sell, confirm, confirmation "
        f"acknowledged), {args.rounds} rounds, median; SQLite WAL, synchronous=FULL; the "
        "switch answers from a recording unless said"
    )
    print(f"  {'run':<46} {'per second':>16} {'commits/sale':>13}")
    for name, label, unit in rows:
        rate = f"{figures.median(name):,.0f} {unit}"
        print(f"  {label:<46} {rate:>16} {figures.commits_per_sale(name):>13}")
    print(
        f"  sequential: {figures.of_raw():.2f} of what the baseline's commit rate allows for "
        f"{figures.commits_per_sale('seq')} commits a sale"
    )
    print(
        f"BENCH durable seq_tps={figures.median('seq'):.0f} "
        f"concurrent_tps={figures.median('loop'):.0f} "
        f"baseline_commits_per_s={figures.median('baseline'):.0f} "
        f"concurrent_tps_with_simulator={figures.median('loop-sim'):.0f} "
        f"seq_commits_per_sale={figures.commits_per_sale('seq')} "
        f"seq_of_raw={figures.of_raw():.2f}"
    )


if __name__ == "__main__":
    main()
