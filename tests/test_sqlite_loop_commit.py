"""Group commit on the event loop's thread (``commit_on="loop"``) keeps every promise of the
worker-thread committer: each await returns after the commit holding its write, concurrent
calls share commits, failures reach their callers."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_samples import Samples

from voucher_adapters.demo import SeededIds, demo_request
from voucher_adapters.stores.sqlite import AsyncSqliteAdviceQueue, AsyncSqliteJournal, StorageError
from voucher_core import Transaction


def test_fifty_concurrent_writes_are_all_committed_in_few_commits(tmp_path: Path) -> None:
    db = tmp_path / "voucher.db"

    async def run() -> tuple[int, int]:
        queue = AsyncSqliteAdviceQueue(db, commit_on="loop")
        journal = AsyncSqliteJournal(db, commit_on="loop")
        ids = SeededIds(3)
        samples = Samples()
        advices = [samples.confirmation() for _ in range(50)]
        sales = [
            Transaction.begin(demo_request(id=ids(), time=datetime(2026, 1, 1, tzinfo=UTC)))[0]
            for _ in range(50)
        ]
        before = queue.commits + journal.commits
        await asyncio.gather(
            *(queue.enqueue(a, due=0.0) for a in advices),
            *(journal.record(tx) for tx in sales),
        )
        commits = queue.commits + journal.commits - before
        # Every write is visible to another connection once its await returned.
        other = sqlite3.connect(db)
        stored = other.execute("SELECT COUNT(*) FROM advice").fetchone()[0]
        journaled = other.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        other.close()
        assert stored == 50 and journaled == 50
        await queue.aclose()
        await journal.aclose()
        return commits, 100

    commits, writes = asyncio.run(run())
    assert 1 <= commits < writes / 5


def test_a_closed_loop_committer_refuses_new_writes(tmp_path: Path) -> None:
    async def run() -> None:
        queue = AsyncSqliteAdviceQueue(tmp_path / "voucher.db", commit_on="loop")
        await queue.aclose()
        with pytest.raises(StorageError, match="closed"):
            await queue.enqueue(Samples().confirmation(), due=0.0)

    asyncio.run(run())


def test_an_unknown_commit_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="commit_on"):
        AsyncSqliteJournal(tmp_path / "voucher.db", commit_on="disk")  # type: ignore[arg-type]
