"""One damaged journal row is reported by its id and skipped; the healthy sales go on.

The row is damaged behind the library's back, with the raw driver (sqlite3 or psycopg), in a
real SQLite file and a real PostgreSQL database. The journals skip it in ``entries()``,
``unfinished()`` and ``get()`` and list it in ``damaged``; `voucher journal list`,
`voucher reconcile` and `voucher recover` name it and exit 1 without a traceback, while every
healthy sale is listed, reported or resumed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_stores import Where, damage_row, store_of, voucher
from sqlite_samples import Samples

from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.simulator.server import RunningServer, create_app
from voucher_adapters.stores.damage import DamagedEntry
from voucher_adapters.stores.postgres import AsyncPostgresJournal
from voucher_adapters.stores.sqlite import AsyncSqliteJournal
from voucher_core import State
from voucher_core.snapshot import snapshot_json

BAD_JSON = '{"version": 1, "id": '  # cut short, as a torn or hand-edited write leaves it


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Where]:
    with store_of(request.param, tmp_path) as place:
        yield place


def test_the_journal_skips_damaged_rows_and_names_each(where: Where) -> None:
    samples = Samples(21)
    first, broken, not_a_snapshot, swapped, last = (samples.provisioned() for _ in range(5))
    other = samples.confirming()
    with where.journal() as journal:
        for tx in (first, broken, not_a_snapshot, swapped, last):
            journal.record(tx, decision_deadline=1e9)
    damage_row(where, broken.id, BAD_JSON)
    damage_row(where, not_a_snapshot.id, '{"version": 1, "id": "x"}')
    damage_row(where, swapped.id, snapshot_json(other))  # a whole snapshot, of another sale
    with where.journal() as journal:
        assert [e.transaction.id for e in journal.entries()] == [first.id, last.id]
        assert [e.transaction.id for e in journal.unfinished()] == [first.id, last.id]
        assert journal.get(broken.id) is None
        assert journal.get(first.id) is not None
        damaged = journal.damaged
        assert [d.transaction_id for d in damaged] == [broken.id, not_a_snapshot.id, swapped.id]
        assert all(isinstance(d, DamagedEntry) and d.reason for d in damaged)
        assert "not valid JSON" in damaged[0].reason
        assert other.id in damaged[2].reason
        # Recorded again, whole, the row reads back and leaves the list.
        journal.record(broken, decision_deadline=1e9)
        assert journal.get(broken.id) is not None
        assert [d.transaction_id for d in journal.damaged] == [not_a_snapshot.id, swapped.id]


def test_the_async_journals_skip_damaged_rows_too(where: Where) -> None:
    samples = Samples(22)
    healthy, broken = samples.provisioning(), samples.provisioning()
    with where.journal() as journal:
        journal.record(healthy)
        journal.record(broken)
    damage_row(where, broken.id, BAD_JSON)

    async def run() -> None:
        journal: AsyncSqliteJournal | AsyncPostgresJournal
        if where.kind == "sqlite":
            journal = AsyncSqliteJournal(where.place)
        else:
            journal = AsyncPostgresJournal(where.place, timeout=5.0)
        try:
            assert [e.transaction.id for e in await journal.entries()] == [healthy.id]
            assert [e.transaction.id for e in await journal.unfinished()] == [healthy.id]
            assert await journal.get(broken.id) is None
            assert [d.transaction_id for d in journal.damaged] == [broken.id]
        finally:
            await journal.aclose()

    asyncio.run(run())


def test_journal_list_shows_the_healthy_rows_names_the_damaged_one_and_exits_1(
    where: Where,
) -> None:
    samples = Samples(23)
    done, broken = samples.done(), samples.provisioning()
    with where.journal() as journal:
        journal.record(done)
        journal.record(broken)
    damage_row(where, broken.id, BAD_JSON)
    listed = voucher("journal", "list", *where.option)
    assert listed.returncode == 1, listed.stderr
    assert "Traceback" not in listed.stderr
    assert done.id in listed.stdout and "DONE" in listed.stdout
    assert f"{broken.id}  DAMAGED" in listed.stdout
    assert "1 journal row(s) cannot be read" in listed.stderr and broken.id in listed.stderr
    as_json = voucher("journal", "list", "--json", *where.option)
    assert as_json.returncode == 1
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert rows[0]["id"] == done.id and rows[0]["state"] == "DONE"
    assert rows[1]["id"] == broken.id and "not valid JSON" in rows[1]["damaged"]


def test_reconcile_reports_the_damaged_row_as_a_finding(where: Where) -> None:
    samples = Samples(24)
    conflict, broken = samples.done_with_conflict(), samples.done()
    with where.journal() as journal:
        journal.record(conflict)
        journal.record(broken)
    damage_row(where, broken.id, BAD_JSON)
    result = voucher("reconcile", "--json", *where.option)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(f["id"], f["issue"]) for f in findings] == [
        (conflict.id, "conflict"),
        (broken.id, "damaged"),
    ]
    assert findings[1]["state"] is None and "not valid JSON" in findings[1]["happened"]


def test_recover_resumes_the_healthy_sales_and_exits_1_naming_the_damaged_row(
    where: Where,
) -> None:
    samples = Samples(25)
    waiting, confirming, broken = samples.provisioned(), samples.confirming(), samples.provisioned()
    with where.journal() as journal:
        journal.record(waiting, decision_deadline=0.0)
        journal.record(broken, decision_deadline=0.0)
        journal.record(confirming)
    damage_row(where, broken.id, BAD_JSON)
    switch = SwitchSimulator(seed=5)
    with RunningServer(create_app(switch)) as server:
        result = voucher("recover", *where.option, "--url", server.url, "--drain-timeout", "10")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "resumed 2 sale(s)" in result.stdout
    assert "their sales were not resumed" in result.stderr and broken.id in result.stderr
    with where.journal() as journal:
        states = {e.transaction.id: e.transaction.state for e in journal.entries()}
        assert states[waiting.id] is State.DECLINED  # its host is gone: reversed
        # The switch never saw this sale's provision: the confirmation is answered as a
        # conflict, and the sale ends flagged; what matters here is that it was resumed.
        assert states[confirming.id] is State.DONE
        assert broken.id not in states
