"""PostgreSQL benchmark: durable dual-messaging sales per second with the journal and the
advice queue in PostgreSQL, 1, 4 and 16 sales in flight, next to the SQLite figure.

The switch answers from a recording of the simulator's answers, made before the clock starts
(``RecordedSwitch`` from ``bench_durable.py``), so what is measured is the till's side. Each
sale is durable end to end, as in ``bench_durable.py``: the journal records it before the provision
leaves and after every change, the confirmation is stored in the queue before it is sent,
and the sale ends DONE with its confirmation acknowledged and removed from the queue.

- **postgres, N lanes**: the ``AsyncDriver`` with ``AsyncPostgresJournal`` and
  ``AsyncPostgresAdviceQueue`` (written together as an ``AsyncPostgresJournalQueue``, as the
  composition root wires them: four commits a sale), N sales in flight. Each pool holds
  ``min(N, 32)`` connections (two pools, so up to twice that on the server). Every run gets a
  fresh schema ``voucher_bench_<hex>``, migrated before and dropped after.
- **sqlite**: the ``AsyncDriver`` with ``AsyncSqliteJournal`` and ``AsyncSqliteAdviceQueue``
  (``commit_on="loop"``), 16 in flight, in a temporary directory inside the project.

Both are built through the composition root (:mod:`voucher_adapters.bootstrap`), as
``bench_durable.py`` builds its drivers.

The server is ``$VOUCHER_BENCH_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
If it does not answer, the benchmark says so and exits 0 without a ``BENCH`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import cast

import attrs
import psycopg
from bench_durable import drive, requests, till

from voucher_adapters.bootstrap import build_async
from voucher_adapters.stores.postgres import AsyncPostgresAdviceQueue, AsyncPostgresJournal, migrate
from voucher_adapters.stores.sqlite import AsyncSqliteAdviceQueue, AsyncSqliteJournal
from voucher_core import AsyncDriver, State
from voucher_core.messages import ProvisionRequest
from voucher_core.ports import JournalEntry

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
LANES = (1, 4, 16)
SQLITE_IN_FLIGHT = 16
POOL_CAP = 32  # per pool; the journal and the queue each have one


def check(entries: list[JournalEntry], queued: int, parked: int, count: int) -> None:
    """Every sale ended DONE and the queue is empty: the run did what it claims."""
    done = sum(entry.transaction.state is State.DONE for entry in entries)
    if len(entries) != count or done != count or queued or parked:
        raise RuntimeError(
            f"{done} of {count} sales DONE ({len(entries)} journalled), "
            f"{queued} advices queued, {parked} parked"
        )


Journal = AsyncPostgresJournal | AsyncSqliteJournal
Queue = AsyncPostgresAdviceQueue | AsyncSqliteAdviceQueue


def commits(journal: Journal, queue: Queue) -> int:
    """Commits so far; a SQLite queue on the journal's connection shares its count."""
    shared = (
        isinstance(journal, AsyncSqliteJournal)
        and isinstance(queue, AsyncSqliteAdviceQueue)
        and queue.sync.database is journal.sync.database
    )
    if shared:
        return journal.commits
    return journal.commits + queue.commits


async def measured(
    driver: AsyncDriver,
    journal: Journal,
    queue: Queue,
    sales: list[ProvisionRequest],
    in_flight: int,
) -> tuple[float, int]:
    """Seconds for ``sales`` through ``driver`` on ``journal`` and ``queue``, and the commits
    they took; checks every sale ended DONE with the queue empty."""
    commits_before = commits(journal, queue)
    seconds = await drive(driver, sales, in_flight)
    made = commits(journal, queue) - commits_before
    entries = await journal.entries()
    check(entries, len(await queue.pending()), len(await queue.parked()), len(sales))
    return seconds, made


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres(dsn: str, count: int, lanes: int, seed: int) -> tuple[float, int]:
    """Seconds for ``count`` sales with ``lanes`` in flight, in a fresh schema, and how many
    commits they took."""
    schema = f"voucher_bench_{uuid.uuid4().hex[:16]}"
    pool_size = min(lanes, POOL_CAP)
    migrate(dsn, schema=schema)
    try:

        async def run() -> tuple[float, int]:
            sales = requests(count, seed)
            on_sqlite = till(Path("unused"), sales, seed, recorded=True)
            wanted = attrs.evolve(on_sqlite, db=None, dsn=dsn, schema=schema, pool_size=pool_size)
            async with await build_async(wanted) as app:
                journal = cast(AsyncPostgresJournal, app.journal)
                queue = cast(AsyncPostgresAdviceQueue, app.queue)
                await journal.entries()  # open both pools before the clock starts
                await queue.stats()
                return await measured(app.driver, journal, queue, sales, lanes)

        return asyncio.run(run())
    finally:
        drop_schema(dsn, schema)


def sqlite(path: Path, count: int, in_flight: int, seed: int) -> tuple[float, int]:
    """Seconds for ``count`` sales on SQLite (commit on the loop), and their commits."""

    async def run() -> tuple[float, int]:
        sales = requests(count, seed)
        wanted = till(path, sales, seed, recorded=True, commit_on="loop")
        async with await build_async(wanted) as app:
            journal = cast(AsyncSqliteJournal, app.journal)
            queue = cast(AsyncSqliteAdviceQueue, app.queue)
            return await measured(app.driver, journal, queue, sales, in_flight)

    return asyncio.run(run())


def reachable(dsn: str) -> str | None:
    """None if the server answers, else why not."""
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


class Figures:
    """Per-run figures (sales per second, commits per sale), kept for the medians."""

    def __init__(self) -> None:
        self.tps: dict[str, list[float]] = {}
        self.commits: dict[str, list[float]] = {}

    def add(self, name: str, count: int, seconds: float, commits: int) -> None:
        self.tps.setdefault(name, []).append(count / seconds)
        self.commits.setdefault(name, []).append(commits / count)

    def median(self, name: str) -> tuple[float, float]:
        return statistics.median(self.tps[name]), statistics.median(self.commits[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=1000, help="sales per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    dsn = os.environ.get("VOUCHER_BENCH_PG_DSN", DEFAULT_DSN)
    why = reachable(dsn)
    if why is not None:
        print(f"PostgreSQL does not answer at $VOUCHER_BENCH_PG_DSN ({why}); benchmark skipped.")
        sys.exit(0)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit'), "
            "current_setting('fsync')"
        ).fetchone()
    version, synchronous_commit, fsync = row if row is not None else ("?", "?", "?")

    figures = Figures()
    with tempfile.TemporaryDirectory(prefix=".bench-postgres-", dir=ROOT) as folder:
        files = iter(Path(folder, f"run-{n}.db") for n in range(1_000))
        # Warm up: imports, the converter's generated code, the server's caches, the disk.
        postgres(dsn, 50, 4, seed=1)
        sqlite(next(files), 50, SQLITE_IN_FLIGHT, seed=2)

        def pg_run(lanes: int) -> Callable[[int], None]:
            def run(seed: int) -> None:
                figures.add(f"pg{lanes}", args.count, *postgres(dsn, args.count, lanes, seed))

            return run

        def sqlite_run(seed: int) -> None:
            seconds, commits = sqlite(next(files), args.count, SQLITE_IN_FLIGHT, seed)
            figures.add("sqlite", args.count, seconds, commits)

        runs = [*(pg_run(lanes) for lanes in LANES), sqlite_run]
        for round_number in range(args.rounds):
            # Alternate the order, so that drifting machine noise hits every run alike.
            order = runs if round_number % 2 == 0 else runs[::-1]
            for position, run in enumerate(order):
                run(10 * round_number + position + 10)

    print(
        f"{args.count} durable dual-messaging sales per run (sell, confirm, confirmation "
        f"acknowledged), {args.rounds} rounds, median"
    )
    print(
        f"PostgreSQL {version} (synchronous_commit={synchronous_commit}, fsync={fsync}); "
        "SQLite WAL, synchronous=FULL"
    )
    print(f"  {'run':<52} {'sales/s':>10} {'commits/sale':>13}")
    rows = [
        (
            f"PostgreSQL, AsyncDriver, {lanes} in flight, pool {min(lanes, POOL_CAP)}x2",
            *figures.median(f"pg{lanes}"),
        )
        for lanes in LANES
    ]
    rows.append(
        (
            f"SQLite, AsyncDriver, {SQLITE_IN_FLIGHT} in flight, commit on loop",
            *figures.median("sqlite"),
        )
    )
    for name, rate, commits in rows:
        print(f"  {name:<52} {rate:>10,.0f} {commits:>13.2f}")
    tps = {lanes: figures.median(f"pg{lanes}")[0] for lanes in LANES}
    print(
        f"BENCH postgres tps_1={tps[1]:.0f} tps_4={tps[4]:.0f} tps_16={tps[16]:.0f} "
        f"sqlite_tps={figures.median('sqlite')[0]:.0f}"
    )


if __name__ == "__main__":
    main()
