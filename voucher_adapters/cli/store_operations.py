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
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, cast

import attrs

from voucher_adapters.bootstrap import (
    DEFAULT_DB,
    DEFAULT_SCHEMA,
    Application,
    DurableJournal,
    OperatorQueue,
    Settings,
    build,
    open_stores,
)
from voucher_adapters.cli.switch_access import SwitchAccess
from voucher_adapters.stores.damage import DamagedEntry
from voucher_adapters.stores.redaction import redact_dsn
from voucher_core import DriverSettings, RetryPolicy, State
from voucher_core.ports import QueuedAdvice
from voucher_core.reconciliation import Finding, Issue, report

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
    access: SwitchAccess = attrs.field(factory=SwitchAccess)  # TLS; OAuth2 instead of Basic


class _Journal(DurableJournal, Protocol):
    """What the commands read of a durable journal besides the port (SQLite, PostgreSQL)."""

    @property
    def damaged(self) -> list[DamagedEntry]: ...

    def unfinished_owners(self) -> dict[str, str | None]: ...

    def claimed(self, owner: str | None) -> bool | None: ...


def _durable(journal: object) -> _Journal:
    return cast(_Journal, journal)  # the store commands open only SQLite or PostgreSQL


def _report_damaged(command: str, damaged: Sequence[DamagedEntry], what: str) -> None:
    """Say on stderr which journal rows could not be read, and what to do."""
    if not damaged:
        return
    print(
        f"voucher {command}: {len(damaged)} journal row(s) cannot be read and {what}; restore "
        "them from a backup (see `voucher reconcile`):",
        file=sys.stderr,
    )
    for row in damaged:
        print(f"  {row.transaction_id}: {row.reason}", file=sys.stderr)


@attrs.frozen(kw_only=True)
class Store:
    """Which durable store a command works on: a SQLite file or a PostgreSQL database."""

    db: str = DEFAULT_DB
    dsn: str | None = None
    schema: str = DEFAULT_SCHEMA  # the PostgreSQL schema of ``dsn``
    owner: str | None = None  # whose unfinished sales: the driving process's name

    def settings(self, **more: Any) -> Settings:
        if self.dsn is not None:
            return Settings(dsn=self.dsn, schema=self.schema, owner=self.owner, **more)
        return Settings(db=self.db, owner=self.owner, **more)

    def open(
        self, *, read_only: bool = False
    ) -> AbstractContextManager[tuple[OperatorQueue, DurableJournal]]:
        """The queue and journal, to read or to requeue; no driver, so no owner claim.
        ``read_only`` for the listings, which then work on a file in a read-only folder."""
        return open_stores(self.settings(create=False), read_only=read_only)

    @property
    def name(self) -> str:
        """The store as it may be printed: the file, or the DSN without its password."""
        return redact_dsn(self.dsn) if self.dsn is not None else self.db


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
    with store.open(read_only=True) as (queue, _):
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
    with store.open(read_only=True) as (queue, _):
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
    """Every transaction; a row that cannot be read is listed as damaged, and makes the exit
    status 1."""
    with store.open(read_only=True) as (_, opened):
        journal = _durable(opened)
        entries = journal.entries()
        damaged = journal.damaged
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
    for bad in damaged:
        if as_json:
            print(json.dumps({"id": bad.transaction_id, "damaged": bad.reason}))
        else:
            print(f"{bad.transaction_id}  DAMAGED      -         (cannot be read: {bad.reason})")
    if not entries and not damaged and not as_json:
        print("the journal is empty")
    _report_damaged("journal list", damaged, "were skipped")
    return 1 if damaged else 0


def reconcile(store: Store, *, as_json: bool) -> int:
    """The sales a person must look at. Exit status 0: none; 1: at least one finding (a
    damaged journal row is one)."""
    with store.open(read_only=True) as (queue, opened):
        journal = _durable(opened)
        entries = journal.entries()
        owners = journal.unfinished_owners()
        live = {owner: journal.claimed(owner) for owner in set(owners.values())}
        in_flight = {tid for tid, owner in owners.items() if live[owner] is True}
        findings = report(
            entries,
            [p.queued.advice for p in queue.parked()],
            in_flight=in_flight,
            owners=owners,
            damaged=[(bad.transaction_id, bad.reason) for bad in journal.damaged],
        )
    if as_json:
        for finding in findings:
            print(json.dumps(finding.as_json()))
        return 1 if findings else 0
    if not findings:
        print("nothing to reconcile: every sale ended as the switch holds it")
    for index, finding in enumerate(findings):
        if index:
            print()
        _print_finding(finding)
    if findings:
        counts: dict[str, int] = {}
        for finding in findings:
            counts[finding.issue.value] = counts.get(finding.issue.value, 0) + 1
        summary = ", ".join(f"{n} {issue}" for issue, n in counts.items())
        print(f"\n{len(findings)} sale(s) to look at: {summary}")
    if in_flight:
        print(
            f"{len(in_flight)} unfinished sale(s) are being driven by a live process (not "
            "findings; run `voucher reconcile` again once it has settled them)"
        )
    return 1 if findings else 0


def _print_finding(finding: Finding) -> None:
    state = finding.state or "state unknown"
    outcome = f" ({finding.outcome})" if finding.outcome else ""
    print(f"{finding.issue.value}: sale {finding.transaction_id}, {state}{outcome}")
    print(f"  sale:          {finding.sale}")
    if finding.flag is not None:
        print(f"  flag:          {finding.flag}")
    if finding.owner is not None and finding.issue is Issue.IN_DOUBT:
        print(f"  owner:         {finding.owner}")
    print(f"  what happened: {finding.happened}")
    print(f"  what to do:    {finding.action}")


def _application(store: Store, remote: Remote) -> Application:
    """A driver on the store, sending to ``remote``; it claims the journal's owner, so no
    other live process is driving the same sales."""
    from voucher_adapters.transports.http import BasicAuth  # noqa: PLC0415  (an optional extra)

    oauth2 = remote.access.oauth2_auth()
    return build(
        store.settings(
            url=remote.url,
            auth=oauth2 if oauth2 is not None else BasicAuth(remote.username, remote.password),
            verify=remote.access.verify,
            cert=remote.access.cert,
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
        journal = _durable(app.journal)  # durable settings, durable journal
        unfinished = [e.transaction for e in journal.unfinished()]
        left = len(app.queue)
        damaged = journal.damaged
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
    _report_damaged("recover", damaged, "their sales were not resumed")
    return 1 if unfinished or left or damaged else 0


def migrate_schema(dsn: str, *, schema: str = DEFAULT_SCHEMA) -> int:
    from voucher_adapters.stores.postgres import migrate  # noqa: PLC0415  (an optional extra)

    version = migrate(dsn, schema=schema)
    print(f"schema is at version {version}")
    return 0
