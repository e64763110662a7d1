"""Operating the durable store from the command line: the queue, the journal, recovery,
reconciliation. Each function backs one ``voucher`` subcommand and prints its result.

Everything works on one durable store holding both the advice queue and the transaction
journal: a SQLite file (``--db``, ``./voucher.db`` by default) or a PostgreSQL database
(``--dsn``).
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import AbstractContextManager
from typing import Any, cast

import attrs

from voucher_adapters.bootstrap import (
    DEFAULT_DB,
    Application,
    DurableJournal,
    OperatorQueue,
    Settings,
    build,
    open_stores,
)
from voucher_core import DriverSettings, RetryPolicy, State
from voucher_core.ports import QueuedAdvice
from voucher_core.reconciliation import report

__all__ = [
    "DEFAULT_DB",
    "Remote",
    "Store",
    "drain",
    "journal_list",
    "migrate_schema",
    "queue_list",
    "queue_requeue",
    "queue_stats",
    "reconcile",
    "recover",
]


@attrs.frozen(kw_only=True)
class Remote:
    """Where and how to reach the switch for commands that send."""

    url: str
    username: str
    password: str = attrs.field(repr=False)
    timeout: float = 60.0
    drain_timeout: float = 30.0


@attrs.frozen(kw_only=True)
class Store:
    """Which durable store a command works on: a SQLite file or a PostgreSQL database."""

    db: str = DEFAULT_DB
    dsn: str | None = None
    owner: str | None = None  # whose unfinished sales: the driving process's name

    def settings(self, **more: Any) -> Settings:
        if self.dsn is not None:
            return Settings(dsn=self.dsn, owner=self.owner, **more)
        return Settings(db=self.db, owner=self.owner, **more)

    def open(self) -> AbstractContextManager[tuple[OperatorQueue, DurableJournal]]:
        """The queue and journal, to read or to requeue; no driver, so no owner claim."""
        return open_stores(self.settings(create=False))

    @property
    def name(self) -> str:
        return "the PostgreSQL database" if self.dsn is not None else self.db


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


def queue_list(store: Store, *, as_json: bool) -> int:
    with store.open() as (queue, _):
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


def queue_stats(store: Store, *, as_json: bool) -> int:
    with store.open() as (queue, _):
        stats = queue.stats()
    if as_json:
        print(json.dumps(stats))
    else:
        for key, value in stats.items():
            print(f"{key:<11} {value if value is not None else '-'}")
    return 0


def queue_requeue(store: Store, advice_id: str) -> int:
    with store.open() as (queue, _):
        if not queue.requeue(advice_id, due=time.monotonic()):
            print(f"voucher queue requeue: no parked advice {advice_id}", file=sys.stderr)
            return 1
    print(f"advice {advice_id} is queued again; `voucher queue drain` delivers it")
    return 0


def journal_list(store: Store, *, as_json: bool) -> int:
    with store.open() as (_, journal):
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


def reconcile(store: Store, *, as_json: bool) -> int:
    with store.open() as (queue, journal):
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


def _application(store: Store, remote: Remote) -> Application:
    """A driver on the store, sending to ``remote``; it claims the journal's owner, so no
    other live process is driving the same sales."""
    from voucher_adapters.transports.http import BasicAuth  # noqa: PLC0415  (an optional extra)

    return build(
        store.settings(
            url=remote.url,
            auth=BasicAuth(remote.username, remote.password),
            create=False,
            driver=DriverSettings(policy=RetryPolicy(timeout=remote.timeout)),
        )
    )


def drain(store: Store, remote: Remote) -> int:
    """Deliver every queued advice, repeating until the queue is empty or time is up."""
    with _application(store, remote) as app:
        app.driver.drain(timeout=remote.drain_timeout)
        left = len(app.queue)
        parked = len(cast(OperatorQueue, app.queue).parked())  # durable settings, durable queue
    print(f"queue drained: {left} advice(s) still waiting, {parked} parked")
    return 0 if left == 0 else 1


def recover(store: Store, remote: Remote) -> int:
    """Resume every unfinished sale in the journal, then drain the queue.

    The host that would confirm or cancel a sale left waiting is gone, so such a sale is
    reversed at once, as if its decision limit had passed.
    """
    with _application(store, remote) as app:
        driver = app.driver
        resumed = driver.recover()
        driver.expire_decisions(all_waiting=True)
        driver.drain(timeout=remote.drain_timeout)
        journal = cast(DurableJournal, app.journal)  # durable settings, durable journal
        unfinished = [e.transaction for e in journal.unfinished()]
        left = len(app.queue)
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


def migrate_schema(dsn: str) -> int:
    from voucher_adapters.stores.postgres import migrate  # noqa: PLC0415  (an optional extra)

    version = migrate(dsn)
    print(f"schema is at version {version}")
    return 0
