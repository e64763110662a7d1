"""What the sync and async drivers share: settings, traces, and the advice bookkeeping."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import attrs

from voucher_core.commands import QueueAdvice
from voucher_core.messages import ProvisionRequest
from voucher_core.policy import DUAL, BackoffPolicy, DecisionPolicy, ProviderProfile, RetryPolicy
from voucher_core.ports import Clock, JournalEntry, QueuedAdvice
from voucher_core.replies import (
    Acknowledged,
    AdviceKind,
    AdviceReply,
    Conflict,
    Rejected,
)
from voucher_core.table import State
from voucher_core.transaction import Outcome, Transaction, random_id

__all__ = [
    "AdviceQueued",
    "AdviceSettled",
    "DecisionAwaited",
    "DriverSettings",
    "Ledger",
    "SaleEnded",
    "StateChanged",
    "Trace",
]

log = logging.getLogger("voucher_core.driver")


def sale(transaction_id: str) -> dict[str, str]:
    """A log record's ``extra``: the sale's id as ``record.sale_id``, for filters and
    structured handlers."""
    return {"sale_id": transaction_id}


@attrs.frozen
class StateChanged:
    transaction_id: str
    source: State
    dest: State


@attrs.frozen
class AdviceQueued:
    transaction_id: str
    advice_id: str
    kind: AdviceKind


@attrs.frozen
class AdviceSettled:
    """An advice got a reply; ``reply`` says whether it is final (anything but RepeatLater)."""

    transaction_id: str
    advice_id: str
    kind: AdviceKind
    reply: AdviceReply


@attrs.frozen
class DecisionAwaited:
    transaction_id: str
    deadline: float


@attrs.frozen
class SaleEnded:
    """A sale reached DONE or DECLINED: what the customer was told, how many retries it took,
    and its flag when it needs reconciliation (never a voucher's code)."""

    transaction_id: str
    state: State
    outcome: Outcome | None
    retries: int
    reconciliation: str | None


Trace = StateChanged | AdviceQueued | AdviceSettled | DecisionAwaited | SaleEnded
Observer = Callable[[Trace], None]
ProfileSource = ProviderProfile | Callable[[ProvisionRequest], ProviderProfile]


@attrs.frozen(kw_only=True)
class DriverSettings:
    """Everything a driver needs besides its ports and clock, with sensible defaults."""

    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    profile: ProfileSource = DUAL
    decision: DecisionPolicy = attrs.field(factory=DecisionPolicy)
    backoff: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    new_id: Callable[[], str] = random_id
    draw: Callable[[], float] = random.random
    # Told every trace. One that raises (a metrics backend down) is logged and the sale goes on.
    observer: Observer | None = None

    def profile_for(self, request: ProvisionRequest) -> ProviderProfile:
        profile = self.profile
        return profile if isinstance(profile, ProviderProfile) else profile(request)


class Ledger:
    """The driver's view of live transactions and their host-decision deadlines."""

    def __init__(self, settings: DriverSettings) -> None:
        self.settings = settings
        self.live: dict[str, Transaction] = {}
        self.deadlines: dict[str, float] = {}
        # Journaled advices whose enqueue failed; the next forward() queues them.
        self.unqueued: set[str] = set()
        # Traces the observer failed on since it last took one (logged once per outage).
        self.observer_failures = 0

    def trace(self, item: Trace) -> None:
        """Tell the observer, if any. An observer that raises never stops a sale: what it
        watches has happened (and is journaled) whether or not it hears of it."""
        observer = self.settings.observer
        if observer is None:
            return
        try:
            observer(item)
        except Exception:
            self.observer_failures += 1
            if self.observer_failures == 1:
                log.warning(
                    "the trace observer failed on %s of transaction %s; traces are dropped "
                    "until it takes one again",
                    type(item).__name__,
                    item.transaction_id,
                    exc_info=True,
                )
            return
        if self.observer_failures:
            log.warning(
                "the trace observer works again after dropping %d traces",
                self.observer_failures,
            )
            self.observer_failures = 0

    def watch(self, tx: Transaction) -> None:
        """Start tracking ``tx``; with an observer, record each of its steps for the traces."""
        self.live[tx.id] = tx
        if self.settings.observer is not None:
            tx.record_moves()

    def moved(self, tx: Transaction) -> None:
        """After each event: traces, and the end of the sale if this event ended it."""
        observed = self.settings.observer is not None
        if observed:
            for source, dest in tx.take_moves():
                self.trace(StateChanged(tx.id, source, dest))
        if tx.state is not State.PROVISIONED:
            self.deadlines.pop(tx.id, None)
        if tx.terminal:
            self.live.pop(tx.id, None)
            if tx.reconciliation is not None:
                log.info(
                    "sale %s flagged for reconciliation: %s",
                    tx.id,
                    tx.reconciliation,
                    extra=sale(tx.id),
                )
            if observed:
                self.trace(SaleEnded(tx.id, tx.state, tx.outcome, tx.retries, tx.reconciliation))

    def forget(self, tx: Transaction) -> None:
        """Stop tracking ``tx`` here (its journal record is what carries on)."""
        self.live.pop(tx.id, None)
        self.deadlines.pop(tx.id, None)
        self.unqueued.discard(tx.id)

    def queued(self, tx: Transaction, command: QueueAdvice) -> None:
        self.trace(AdviceQueued(tx.id, command.advice.id, command.kind))

    def awaiting(self, tx: Transaction, now: float, wait: float | None = None) -> None:
        deadline = now + (self.settings.decision.limit if wait is None else wait)
        self.deadlines[tx.id] = deadline
        self.trace(DecisionAwaited(tx.id, deadline))

    def overdue(self, now: float) -> list[Transaction]:
        due = [tid for tid, deadline in self.deadlines.items() if deadline <= now]
        return [self.live[tid] for tid in due if tid in self.live]


@attrs.frozen
class Disposition:
    """What the queue must do with an advice after a send."""

    acknowledge: bool = False
    park_reason: str | None = None
    due: float | None = None


def resume_deadline(entry: JournalEntry, clock: Clock, settings: DriverSettings) -> float:
    """Seconds a resumed PROVISIONED sale may still wait for its host: what is left of its
    limit by the wall clock, never more than the whole limit (a clock set back cannot stretch
    it) and never less than nothing."""
    limit = settings.decision.limit
    if entry.decision_deadline is None:
        return limit
    left = entry.decision_deadline - clock.now().timestamp()
    return min(max(left, 0.0), limit)


def disposition(
    queued: QueuedAdvice, reply: AdviceReply, now: float, settings: DriverSettings
) -> Disposition:
    if isinstance(reply, Acknowledged | Conflict):
        return Disposition(acknowledge=True)
    if isinstance(reply, Rejected):
        return Disposition(park_reason=reply.detail)
    delay = settings.backoff.delay(max(queued.attempts, 1), settings.draw())
    return Disposition(due=now + delay)
