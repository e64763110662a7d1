"""Operating the durable store from the command line: the queue, the journal, recovery,
reconciliation. Each function backs one ``voucher`` subcommand and prints its result.

Everything works on one SQLite file (``--db``, ``./voucher.db`` by default) holding both the
advice queue and the transaction journal.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from adapters.clock import SystemClock
from adapters.sqlite import SqliteAdviceQueue, SqliteJournal, StorageError
from voucher_core import Driver, DriverSettings, RetryPolicy, State
from voucher_core.ports import QueuedAdvice
from voucher_core.reconciliation import report

__all__ = [
    "DEFAULT_DB",
    "MissingDatabase",
    "Remote",
    "drain",
    "journal_list",
    "open_store",
    "queue_list",
    "queue_requeue",
    "queue_stats",
    "reconcile",
    "recover",
]

DEFAULT_DB = "./voucher.db"


class MissingDatabase(Exception):
    """A command that only reads was pointed at a file that does not exist."""


@attrs.frozen(kw_only=True)
class Remote:
    """Where and how to reach the switch for commands that send."""

    url: str
    username: str
    password: str = attrs.field(repr=False)
    timeout: float = 60.0
    drain_timeout: float = 30.0


@contextmanager
def open_store(db: str, *, create: bool) -> Iterator[tuple[SqliteJournal, SqliteAdviceQueue]]:
    """The journal and queue in ``db``; refuses a missing file unless ``create``."""
    if not create and not Path(db).exists():
        raise MissingDatabase(f"no database at {db} (nothing has been stored there yet)")
    journal = SqliteJournal(db)
    try:
        queue = SqliteAdviceQueue(db)
    except StorageError:
        journal.close()
        raise
    try:
        yield journal, queue
    finally:
        queue.close()
        journal.close()


def _advice_row(queued: QueuedAdvice, state: str, reason: str | None = None) -> dict[str, object]:
    row: dict[str, object] = {
        "id": queued.id,
        "kind": queued.kind.value,
        "requestId": queued.request_id,
        "attempts": queued.attempts,
        "state": state,
    }
    if reason is not None:
        row["reason"] = reason
    return row


def queue_list(db: str, *, as_json: bool) -> int:
    with open_store(db, create=False) as (_, queue):
        rows = [_advice_row(q, "queued") for q in queue.pending()]
        rows += [_advice_row(p.queued, "parked", p.reason) for p in queue.parked()]
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print("the advice queue is empty")
    for row in rows:
        line = f"{row['id']}  {row['kind']:<12} {row['state']:<6} attempts {row['attempts']}"
        print(f"{line}  for {row['requestId']}")
        if "reason" in row:
            print(f"    parked: {row['reason']}")
    return 0


def queue_stats(db: str, *, as_json: bool) -> int:
    with open_store(db, create=False) as (_, queue):
        stats = queue.stats()
    if as_json:
        print(json.dumps(stats))
    else:
        for key, value in stats.items():
            print(f"{key:<11} {value if value is not None else '-'}")
    return 0


def queue_requeue(db: str, advice_id: str) -> int:
    with open_store(db, create=False) as (_, queue):
        if not queue.requeue(advice_id, due=time.monotonic()):
            print(f"voucher queue requeue: no parked advice {advice_id}", file=sys.stderr)
            return 1
    print(f"advice {advice_id} is queued again; `voucher queue drain` delivers it")
    return 0


def journal_list(db: str, *, as_json: bool) -> int:
    with open_store(db, create=False) as (journal, _):
        entries = journal.entries()
    for entry in entries:
        tx = entry.transaction
        row = {
            "id": tx.id,
            "state": tx.state.value,
            "outcome": tx.outcome.value if tx.outcome is not None else None,
            "reconciliation": tx.reconciliation is not None,
        }
        if as_json:
            print(json.dumps(row))
        else:
            flag = "  (reconcile)" if row["reconciliation"] else ""
            print(f"{tx.id}  {tx.state.value:<12} {row['outcome'] or '-':<8}{flag}")
    if not entries and not as_json:
        print("the journal is empty")
    return 0


def reconcile(db: str, *, as_json: bool) -> int:
    with open_store(db, create=False) as (journal, queue):
        findings = report(journal.entries(), [p.queued.advice for p in queue.parked()])
    if as_json:
        for finding in findings:
            print(json.dumps(finding.as_json()))
        return 0
    if not findings:
        print("nothing to reconcile: every sale ended as the switch holds it")
        return 0
    for finding in findings:
        print(f"{finding.transaction_id}  {finding.state} ({finding.outcome}): {finding.issue}")
        print(f"  what happened: {finding.happened}")
        print(f"  what to do:    {finding.action}")
    return 0


def _driver(remote: Remote, journal: SqliteJournal, queue: SqliteAdviceQueue) -> Driver:
    from adapters.http import BasicAuth, HttpTransport  # noqa: PLC0415  (an optional extra)

    transport = HttpTransport(remote.url, auth=BasicAuth(remote.username, remote.password))
    return Driver(
        transport,
        queue,
        clock=SystemClock(),
        journal=journal,
        settings=DriverSettings(policy=RetryPolicy(timeout=remote.timeout)),
    )


def _drain_queue(driver: Driver, queue: SqliteAdviceQueue, deadline: float) -> None:
    clock = driver.clock
    while len(queue) and clock.monotonic() < deadline:
        driver.forward()
        next_due = queue.next_due(clock.monotonic())
        if next_due is not None and len(queue):
            clock.sleep(min(next_due, deadline) - clock.monotonic())


def drain(db: str, remote: Remote) -> int:
    """Deliver every queued advice, repeating until the queue is empty or time is up."""
    with open_store(db, create=False) as (journal, queue):
        driver = _driver(remote, journal, queue)
        _drain_queue(driver, queue, driver.clock.monotonic() + remote.drain_timeout)
        left = len(queue)
        parked = len(queue.parked())
    print(f"queue drained: {left} advice(s) still waiting, {parked} parked")
    return 0 if left == 0 else 1


def recover(db: str, remote: Remote) -> int:
    """Resume every unfinished sale in the journal, then drain the queue.

    The host that would confirm or cancel a sale left waiting is gone, so such a sale is
    reversed at once, as if its decision limit had passed.
    """
    with open_store(db, create=False) as (journal, queue):
        driver = _driver(remote, journal, queue)
        resumed = driver.recover()
        driver.expire_decisions(all_waiting=True)
        _drain_queue(driver, queue, driver.clock.monotonic() + remote.drain_timeout)
        unfinished = [e.transaction for e in journal.unfinished()]
        left = len(queue)
    states: dict[str, int] = {}
    for tx in resumed:
        states[tx.state.value] = states.get(tx.state.value, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "nothing"
    print(f"resumed {len(resumed)} sale(s): now {summary}")
    if unfinished or left:
        waiting = sum(1 for tx in unfinished if tx.state is not State.PROVISIONED)
        print(
            f"{len(unfinished)} sale(s) not finished yet ({waiting} with an advice still to "
            f"deliver); {left} advice(s) queued: run `voucher recover` or `voucher queue "
            "drain` again once the switch answers",
            file=sys.stderr,
        )
        return 1
    return 0
