"""The commands that work on the durable store (``--db``), as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from voucher_adapters.cli.main import main
from voucher_adapters.demo import SeededIds, cash
from voucher_adapters.stores.sqlite import SqliteAdviceQueue, SqliteJournal
from voucher_core.messages import TenderAdvice, ThirdPartyIdentifier

WHEN = datetime(2026, 11, 23, tzinfo=UTC)


def voucher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voucher_adapters.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "voucher.db")


def test_simulate_with_a_database_journals_every_sale_and_leaves_an_empty_queue(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--scenario", "all", "--json", "--db", db]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(results) == 10
    assert main(["journal", "list", "--json", "--db", db]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 10
    assert all(set(row) == {"id", "state", "outcome", "reconciliation"} for row in rows)
    assert sorted(r["state"] for r in rows) == sorted(r["final_state"] for r in results)
    assert main(["queue", "stats", "--json", "--db", db]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["queued"] == 0 and stats["leased"] == 0 and stats["parked"] == 0


def test_chaos_with_a_database_ends_right(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--chaos", "--count", "150", "--seed", "9", "--json", "--db", db]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mismatches"] == 0 and summary["count"] == 150
    with SqliteJournal(db) as journal:
        never = summary["edges"]["never_recorded"]  # their first journal write failed
        assert len(journal.entries()) + never == 150 and journal.unfinished() == []


def test_the_reconciliation_report_lists_host_timeouts_with_advice(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["simulate", "--chaos", "--count", "60", "--seed", "2", "--json", "--db", db])
    capsys.readouterr()
    assert main(["reconcile", "--json", "--db", db]) == 1  # findings: the exit status says so
    findings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    timeouts = [f for f in findings if f["issue"] == "host timeout"]
    assert timeouts, "the chaos run leaves some hosts undecided"
    with SqliteJournal(db) as journal:
        for finding in timeouts:
            entry = journal.get(finding["id"])
            assert entry is not None and entry.transaction.host_timed_out
            assert finding["state"] == "DECLINED" and finding["action"]
    assert main(["reconcile", "--db", db]) == 1
    text = capsys.readouterr().out
    assert "what happened:" in text and "what to do:" in text


def test_a_parked_advice_is_listed_and_requeued(db: str) -> None:
    ids = SeededIds(4)
    advice = TenderAdvice(
        id=ids(),
        request_id=ids(),
        time=WHEN,
        third_party_identifiers=(
            ThirdPartyIdentifier(institution_id="1", transaction_identifier="t"),
        ),
        tenders=cash(500),
    )
    with SqliteAdviceQueue(db) as queue:
        queue.enqueue(advice, due=0.0)
        [taken] = queue.take_due(0.0)
        queue.park(taken.id, reason="HTTP 400 FORMAT_ERROR: tenders[0].amount")
    listed = voucher("queue", "list", "--json", "--db", db)
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["id"] == advice.id and row["state"] == "parked"
    assert row["reason"] == "HTTP 400 FORMAT_ERROR: tenders[0].amount"
    assert row["kind"] == "confirmation" and row["requestId"] == advice.request_id
    requeued = voucher("queue", "requeue", advice.id, "--db", db)
    assert requeued.returncode == 0 and "queued again" in requeued.stdout
    again = voucher("queue", "requeue", advice.id, "--db", db)
    assert again.returncode == 1 and "no parked advice" in again.stderr
    with SqliteAdviceQueue(db) as queue:
        assert [q.id for q in queue.pending()] == [advice.id] and queue.parked() == []


@pytest.mark.parametrize(
    "command",
    [
        ["journal", "list"],
        ["queue", "list"],
        ["queue", "stats"],
        ["reconcile"],
        ["queue", "requeue", "x"],
        ["recover", "--url", "http://127.0.0.1:1"],
        ["queue", "drain", "--url", "http://127.0.0.1:1"],
    ],
)
def test_a_missing_or_corrupt_database_is_a_clear_error(tmp_path: Path, command: list[str]) -> None:
    missing = voucher(*command, "--db", str(tmp_path / "nowhere.db"))
    assert missing.returncode == 1
    assert "no database at" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "nowhere.db").exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    corrupt = voucher(*command, "--db", str(garbage))
    assert corrupt.returncode == 1
    assert str(garbage) in corrupt.stderr and "Traceback" not in corrupt.stderr
