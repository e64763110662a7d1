"""`voucher reconcile` as an operator meets it: every sale a person must look at, in doubt or
flagged, named by when, where, what and how much; exit status 1 whenever there is one.

Run as a subprocess on a real SQLite file and a real PostgreSQL database. A live owner is a
real child process holding the owner's claim.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_stores import ROOT, Where, store_of, voucher
from sqlite_samples import Samples

from voucher_core import reconciliation
from voucher_core.reconciliation import Issue
from voucher_core.replies import Rejected

SALE = "2026-11-23 12:00:00+00:00, terminal TILL0001, product AIRTIME10, amount 1000 (currency 710)"
UNATTENDED = (
    "unattended: the voucher was issued after its host was gone and nobody was given it "
    "(serial number SN-4711; references 999001 till-1)"
)


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Where]:
    with store_of(request.param, tmp_path) as place:
        yield place


def findings_of(where: Where) -> tuple[int, list[dict[str, object]]]:
    result = voucher("reconcile", "--json", *where.option)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def test_sales_stuck_before_their_outcome_are_in_doubt_and_the_exit_says_so(
    where: Where,
) -> None:
    samples = Samples(31)
    with where.journal() as journal:
        journal.record(samples.done())
    clean = voucher("reconcile", *where.option)
    assert clean.returncode == 0, clean.stderr
    assert "nothing to reconcile" in clean.stdout

    provisioning, provisioned = samples.provisioning(), samples.provisioned()
    retrying = samples.retrying()
    with where.journal() as journal, where.journal("lane-4") as lane:
        journal.record(provisioning)
        journal.record(provisioned, decision_deadline=0.0)
        lane.record(retrying)
    text = voucher("reconcile", *where.option)
    assert text.returncode == 1, text.stdout + text.stderr
    out = text.stdout
    assert f"in doubt: sale {provisioning.id}, PROVISIONING\n  sale:          {SALE}\n" in out
    assert f"in doubt: sale {provisioned.id}, PROVISIONED\n" in out
    assert f"in doubt: sale {retrying.id}, RETRYING\n" in out
    assert "Run `voucher recover --owner lane-4` once" in out
    assert out.count("what to do:    Run `voucher recover` once") == 2
    assert "3 sale(s) to look at: 3 in doubt" in out

    code, findings = findings_of(where)
    assert code == 1
    by_id = {finding["id"]: finding for finding in findings}
    assert set(by_id) == {provisioning.id, provisioned.id, retrying.id}
    stuck = by_id[provisioning.id]
    assert stuck["issue"] == "in doubt" and stuck["state"] == "PROVISIONING"
    assert (stuck["time"], stuck["terminal"], stuck["product"]) == (
        "2026-11-23 12:00:00+00:00",
        "TILL0001",
        "AIRTIME10",
    )
    assert (stuck["amount"], stuck["currency"], stuck["owner"]) == (1000, "710", None)
    assert by_id[retrying.id]["owner"] == "lane-4"


HOLDER = textwrap.dedent(
    """
    import sys
    kind, place = sys.argv[1], sys.argv[2]
    if kind == "sqlite":
        from voucher_adapters.stores.sqlite import SqliteJournal as Journal
    else:
        from voucher_adapters.stores.postgres import PostgresJournal as Journal
    journal = Journal(place, owner="lane-1")
    journal.unfinished()  # claims lane-1, as a till that is up and selling
    print("held", flush=True)
    sys.stdin.read()
    """
)


def test_a_sale_a_live_process_is_driving_is_not_in_doubt_until_that_process_dies(
    where: Where,
) -> None:
    samples = Samples(32)
    on_the_wire = samples.provisioning()
    with where.journal("lane-1") as lane:
        lane.record(on_the_wire)
    till = subprocess.Popen(
        [sys.executable, "-c", HOLDER, where.kind, where.place],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert till.stdout is not None and till.stdout.readline().strip() == "held"
        alive = voucher("reconcile", *where.option)
        assert alive.returncode == 0, alive.stdout + alive.stderr
        assert "1 unfinished sale(s) are being driven by a live process" in alive.stdout
        assert on_the_wire.id not in alive.stdout
        till.send_signal(signal.SIGKILL)
        till.wait(timeout=30)
        code, findings = findings_of(where)
        assert code == 1
        assert [(f["id"], f["issue"], f["owner"]) for f in findings] == [
            (on_the_wire.id, "in doubt", "lane-1")
        ]
    finally:
        if till.poll() is None:
            till.kill()
            till.wait(timeout=30)


def test_every_finding_says_when_where_what_and_how_much_and_shows_its_flag(
    where: Where,
) -> None:
    samples = Samples(33)
    conflict, timed_out = samples.done_with_conflict(), samples.declined_after_host_timeout()
    rejected = samples.confirming()
    rejected.advice_replied(Rejected(400, None, "HTTP 400 FORMAT_ERROR: tenders[0].amount"))
    unattended, other = samples.done_single(), samples.done_single()
    unattended.reconciliation = UNATTENDED  # as recovery flags a sale it ended without its host
    other.reconciliation = "audit: checked by hand"  # a kind of flag this report does not know
    with where.journal() as journal, where.queue() as queue:
        for tx in (conflict, timed_out, rejected, unattended, other):
            journal.record(tx)
        assert rejected.advice is not None
        queue.enqueue(rejected.advice, due=0.0)
        queue.take_due(1.0)
        queue.park(rejected.advice.id, reason="HTTP 400 FORMAT_ERROR: tenders[0].amount")

    text = voucher("reconcile", *where.option)
    assert text.returncode == 1, text.stdout + text.stderr
    out = text.stdout
    for tx in (conflict, timed_out, rejected, unattended, other):
        assert re.search(rf": sale {tx.id}, \w+ \(\w+\)\n  sale:          {re.escape(SALE)}\n", out)
    assert f"unattended: sale {unattended.id}, DONE (approved)\n" in out
    assert f"  flag:          {UNATTENDED}\n" in out
    assert "what to do:    Find the customer from the till's record" in out
    assert f"flagged: sale {other.id}, DONE (approved)\n" in out
    assert "  flag:          audit: checked by hand\n" in out
    assert f"rejected: sale {rejected.id}, DONE (approved)\n" in out
    assert f"`voucher queue requeue {rejected.advice.id}`" in out
    assert f"host timeout: sale {timed_out.id}, DECLINED (declined)\n" in out
    assert "5 sale(s) to look at: 1 conflict, 1 host timeout, 1 rejected, 1 unattended, " in out

    code, findings = findings_of(where)
    assert code == 1
    issues = {f["id"]: f["issue"] for f in findings}
    assert issues == {
        conflict.id: "conflict",
        timed_out.id: "host timeout",
        rejected.id: "rejected",
        unattended.id: "unattended",
        other.id: "flagged",
    }
    flagged = next(f for f in findings if f["id"] == unattended.id)
    assert flagged["flag"] == UNATTENDED and flagged["amount"] == 1000
    assert flagged["terminal"] == "TILL0001" and flagged["product"] == "AIRTIME10"


# -- the runbook ----------------------------------------------------------------------------


def runbook() -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    heading = r"^## Runbook: in-doubt and flagged sales\n(.*?)(?=^## |\Z)"
    match = re.search(heading, text, re.M | re.S)
    assert match, "docs/operations.md has no runbook section for in-doubt and flagged sales"
    return match.group(1)


def test_the_runbook_explains_every_finding_in_the_words_the_command_prints() -> None:
    raw = runbook()
    book = " ".join(raw.split())
    for issue in Issue:
        assert f"| `{issue.value}` |" in book, f"the runbook does not explain `{issue.value}`"
    for action in (
        reconciliation.CONFLICT_CONFIRMATION,
        reconciliation.CONFLICT_REVERSAL,
        reconciliation.REJECTED.format(advice="ADVICE_ID"),
        reconciliation.UNATTENDED,
        reconciliation.FLAGGED,
        reconciliation.HOST_TIMEOUT,
        reconciliation.IN_DOUBT.format(owner=""),
        reconciliation.DAMAGED,
    ):
        assert " ".join(action.split()) in book, f"the runbook does not say: {action}"
    for line in (
        "  sale:          ",
        "  flag:          ",
        "  what happened: ",
        "  what to do:    ",
    ):
        assert line.strip() in book
    assert "exit status" in book.lower()
