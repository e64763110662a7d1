"""Ports that can "crash the process" at a chosen call, for in-process crash tests.

A crash is an exception (:class:`Crash`) that escapes the driver, after which the test throws
the driver and every live object away and builds a new one over the same durable stores, as
a restarted process would. Each wrapped call is one point where a real process could die:
before the call (nothing happened) or after it (it happened, but nobody heard).

The journal can also fail without a crash (:meth:`CrashingJournal.fail`): its writes raise
``StorageError`` for a while, as a full disk or a locked database does, and the process lives on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from voucher_adapters.errors import StorageError
from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice
from voucher_core.ports import (
    AdviceQueue,
    JournalEntry,
    LookupQuery,
    LookupReply,
    QueuedAdvice,
    TransactionJournal,
    Transport,
)
from voucher_core.replies import AdviceReply, ProvisionReply
from voucher_core.transaction import Transaction
from voucher_core.wire import to_json


class Crash(BaseException):
    """The simulated process died here.

    A ``BaseException``, like the ``SystemExit`` it stands for: a process that dies runs no
    more of its own code, so the driver's ``except Exception`` clauses (which handle failures
    the process lives through) must not see it.
    """


class Fuse:
    """Counts calls across every wrapped port; blows at call number ``at``, before or after."""

    def __init__(self) -> None:
        self.calls = 0
        self.at: int | None = None
        self.after = False
        self.blown = 0

    def arm(self, at: int, *, after: bool) -> None:
        self.at = self.calls + at
        self.after = after

    def call(self, work: Callable[[], Any]) -> Any:
        self.calls += 1
        hit = self.at is not None and self.calls >= self.at
        if hit and not self.after:
            self._blow()
        result = work()
        if hit:
            self._blow()
        return result

    def _blow(self) -> None:
        self.at = None
        self.blown += 1
        raise Crash(f"simulated crash at call {self.calls}")


class CrashingTransport:
    def __init__(self, inner: Transport, fuse: Fuse) -> None:
        self.inner, self.fuse = inner, fuse

    def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        result: ProvisionReply = self.fuse.call(
            lambda: self.inner.provision(request, timeout=timeout)
        )
        return result

    def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        result: ProvisionReply = self.fuse.call(lambda: self.inner.retry(request, timeout=timeout))
        return result

    def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply:
        result: AdviceReply = self.fuse.call(lambda: self.inner.confirm(advice, timeout=timeout))
        return result

    def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply:
        result: AdviceReply = self.fuse.call(lambda: self.inner.reverse(advice, timeout=timeout))
        return result

    def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply:
        return self.inner.lookup(query, timeout=timeout)


class CrashingQueue:
    """Also remembers every advice it reported queued (enqueue returned)."""

    def __init__(self, inner: AdviceQueue, fuse: Fuse) -> None:
        self.inner, self.fuse = inner, fuse
        self.reported_queued: dict[str, bytes] = {}

    def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        taken: QueuedAdvice | None = self.fuse.call(
            lambda: self.inner.enqueue(advice, due=due, take=take)
        )
        self.reported_queued.setdefault(advice.id, to_json(advice))
        return taken

    def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> Sequence[QueuedAdvice]:
        result: Sequence[QueuedAdvice] = self.fuse.call(
            lambda: self.inner.take_due(now, limit=limit, advice_id=advice_id)
        )
        return result

    def acknowledge(self, advice_id: str) -> None:
        self.fuse.call(lambda: self.inner.acknowledge(advice_id))

    def repeat_later(self, advice_id: str, *, due: float) -> None:
        self.fuse.call(lambda: self.inner.repeat_later(advice_id, due=due))

    def park(self, advice_id: str, *, reason: str) -> None:
        self.fuse.call(lambda: self.inner.park(advice_id, reason=reason))

    def next_due(self) -> float | None:
        due: float | None = self.fuse.call(self.inner.next_due)
        return due


class CrashingJournal:
    def __init__(self, inner: TransactionJournal, fuse: Fuse) -> None:
        self.inner, self.fuse = inner, fuse
        self.writes = 0
        self.failing: range = range(0)  # the writes, by number, that fail
        self.failed = 0

    def fail(self, at: int, times: int) -> None:
        """The ``at``-th write from now and the ``times - 1`` after it raise StorageError."""
        self.failing = range(self.writes + at, self.writes + at + times)

    def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        self.writes += 1
        if self.writes in self.failing:
            self.failed += 1
            raise StorageError("journal.db", f"record transaction {tx.id}", "the disk is full")
        self.fuse.call(lambda: self.inner.record(tx, decision_deadline=decision_deadline))

    def get(self, transaction_id: str) -> JournalEntry | None:
        return self.inner.get(transaction_id)

    def unfinished(self) -> Sequence[JournalEntry]:
        return self.inner.unfinished()

    def entries(self) -> Sequence[JournalEntry]:
        return self.inner.entries()
