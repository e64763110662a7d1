# Generated from voucher_core/drivers/async_driver.py by scripts/unasync.py: do not edit it by hand.
# Edit the async module and run `make unasync`; `make lint` fails while this file is stale.
"""The synchronous driver: runs each sale over a blocking transport, queue and journal."""

from __future__ import annotations

from collections.abc import Iterable

from voucher_core.commands import AwaitDecision, Command, QueueAdvice, SendProvision, SendRetry
from voucher_core.drivers.shared import (
    AdviceSettled,
    DriverSettings,
    Ledger,
    disposition,
    log,
    resume_deadline,
    sale,
)
from voucher_core.errors import InvalidArgument
from voucher_core.messages import BasicReversal, ProvisionRequest, Tender, TenderAdvice
from voucher_core.policy import ProviderProfile
from voucher_core.ports import (
    AdviceQueue,
    Clock,
    JournalQueue,
    LookupQuery,
    LookupReply,
    QueuedAdvice,
    TransactionJournal,
    Transport,
)
from voucher_core.replies import AdviceReply, RepeatLater
from voucher_core.table import State
from voucher_core.transaction import Transaction

__all__ = ["Driver"]


class Driver:
    """Sell vouchers over ``transport``, keeping advices in ``queue``.

    ``sell`` runs the provision phase and returns the transaction: terminal, waiting for the
    host (dual messaging, PROVISIONED), or with its advice queued. Advices are tried once at
    once when queued; whatever is left is delivered by :meth:`forward`, which a host calls
    from its own loop or a background worker.

    With a ``journal``, every transaction is recorded before each request leaves and after
    each change, and :meth:`recover` resumes what a crash interrupted. A journal write that
    fails raises (the sale stops there and is resumed by recovery), and the transaction
    returns to what the journal last took: the journal's record is the point where an outcome
    is decided, and the object never claims more. A sale whose ``sell()`` failed after its
    request left, and a sale that recovery resumes in flight, has no host any more to be told
    its outcome: a voucher it gets is reversed (dual messaging) or flagged for reconciliation
    with its reference (single messaging), never handed over in silence.

    With a ``journal_queue`` (the ``journal`` and ``queue`` of one database, written
    together), a state change that queues an advice commits with the advice, and the
    settling of an advice with the state change its reply caused: the queue alone then shows
    every advice owed. Without one, the journal is written first and the queue second, and
    an advice the journal owes but the queue lost to a crash between the two is queued again
    by :meth:`recover` (or by the next :meth:`forward`, after a failed enqueue).
    """

    def __init__(
        self,
        transport: Transport,
        queue: AdviceQueue,
        *,
        clock: Clock,
        settings: DriverSettings | None = None,
        journal: TransactionJournal | None = None,
        journal_queue: JournalQueue | None = None,
    ) -> None:
        if journal_queue is not None and journal is None:
            raise InvalidArgument("a journal_queue is the journal's and the queue's: pass both")
        self.transport = transport
        self.queue = queue
        self.clock = clock
        self.settings = settings if settings is not None else DriverSettings()
        self.journal = journal
        self.journal_queue = journal_queue
        self.ledger = Ledger(self.settings)

    # -- the host's calls -----------------------------------------------------------------------

    def sell(
        self,
        request: ProvisionRequest,
        *,
        tenders: Iterable[Tender] | None = None,
        profile: ProviderProfile | None = None,
    ) -> Transaction:
        settings = self.settings
        tx, command = Transaction.begin(
            request,
            profile=profile if profile is not None else settings.profile_for(request),
            policy=settings.policy,
            tenders=tuple(tenders) if tenders is not None else None,
        )
        self.ledger.watch(tx)
        try:
            self._run(tx, command)
        except Exception:
            self._abandoned(tx)
            raise
        return tx

    def confirm(self, tx: Transaction, tenders: Iterable[Tender]) -> Transaction:
        command = tx.confirm(tuple(tenders), now=self.clock.now(), new_id=self.settings.new_id)
        self.ledger.moved(tx)
        self._run(tx, command)
        return tx

    def cancel(self, tx: Transaction) -> Transaction:
        command = tx.cancel(now=self.clock.now(), new_id=self.settings.new_id)
        self.ledger.moved(tx)
        self._run(tx, command)
        return tx

    def expire_decisions(self, *, all_waiting: bool = False) -> list[Transaction]:
        """Reverse every sale whose host did not decide in time. Returns those reversed.

        ``all_waiting`` reverses every sale still waiting, due or not: for an operator
        recovering after the host process is gone for good, so no decision can come.
        """
        now = self.clock.monotonic()
        overdue = self.ledger.overdue(float("inf") if all_waiting else now)
        expired: list[Transaction] = []
        for tx in overdue:
            if tx.state is not State.PROVISIONED:
                continue  # the host decided while earlier reversals were being sent
            command = tx.decision_timed_out(now=self.clock.now(), new_id=self.settings.new_id)
            self.ledger.moved(tx)
            expired.append(tx)
            self._run(tx, command)
        return expired

    def forward(self, *, limit: int = 100) -> int:
        """Send every advice that is due, once. Returns how many were sent."""
        self._queue_journaled()
        # One at a time: a lease must not run out while earlier advices of a batch are sent.
        sent = 0
        while sent < limit:
            taken = self.queue.take_due(self.clock.monotonic(), limit=1)
            if not taken:
                break
            self._deliver(taken[0])
            sent += 1
        return sent

    def drain(self, *, timeout: float | None = None, max_rounds: int | None = None) -> bool:
        """Deliver every queued advice, waiting on the clock until each is due.

        Returns True once the queue holds nothing more to send (parked advices stay parked),
        False when ``timeout`` seconds or ``max_rounds`` deliveries ran out first. On a
        simulated clock the waits pass at once.
        """
        clock = self.clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        rounds = 0
        while True:
            due = self.queue.next_due()
            if due is None and not self.ledger.unqueued:
                return True
            now = clock.monotonic()
            if (deadline is not None and now >= deadline) or (
                max_rounds is not None and rounds >= max_rounds
            ):
                return False
            if due is not None and due > now:
                clock.sleep((due if deadline is None else min(due, deadline)) - now)
            self.forward()
            rounds += 1

    def recover(self) -> list[Transaction]:
        """Resume every unfinished transaction in the journal (after a crash or restart).

        PROVISIONING and RETRYING continue with a retry, or a reversal once retries are spent
        or unsupported; PROVISIONED waits for its host again until what is left of its limit;
        CONFIRMING and REVERSING have their advice queued again (idempotent) and tried.
        A sale resumed in PROVISIONING or RETRYING has no host to be told its outcome (the
        process that sold it is gone): it is marked so before anything more is sent, and a
        voucher it gets is reversed (dual) or flagged with its reference (single). Sales this
        driver still tracks are left alone, so a live process may call it to resume those it
        gave up on after a journal write failed. Returns the transactions resumed.
        """
        if self.journal is None:
            raise InvalidArgument("recover() needs a driver with a journal")
        resumed: list[Transaction] = []
        for entry in self.journal.unfinished():
            tx = entry.transaction
            if tx.id in self.ledger.live:
                continue
            self.ledger.watch(tx)
            resumed.append(tx)
            log.info("recovery resumes sale %s in %s", tx.id, tx.state, extra=sale(tx.id))
            if tx.state is State.PROVISIONED:
                wait = resume_deadline(entry, self.clock, self.settings)
                self.ledger.awaiting(tx, self.clock.monotonic(), wait)
                continue
            if tx.state is State.PROVISIONING or tx.state is State.RETRYING:
                tx.host_gone(now=self.clock.now(), new_id=self.settings.new_id)
            command = tx.interrupted(now=self.clock.now(), new_id=self.settings.new_id)
            self.ledger.moved(tx)
            self._run(tx, command)
        return resumed

    def lookup(self, tx: Transaction, *, by_code: bool = False) -> LookupReply:
        """Ask the switch about a finished transaction (refused while it is in flight): by its
        provision request's id, or *by_code*, by the code of the voucher it holds."""
        if by_code:
            query = LookupQuery(voucher_code=tx.lookup_code())
        else:
            query = LookupQuery(provision_request_id=tx.lookup_id())
        return self.transport.lookup(query, timeout=self.settings.policy.timeout)

    def in_flight(self) -> list[Transaction]:
        return list(self.ledger.live.values())

    # -- the loop -------------------------------------------------------------------------------

    def _run(self, tx: Transaction, command: Command | None) -> None:
        transport, clock, settings = self.transport, self.clock, self.settings
        timeout = settings.policy.timeout
        while True:
            if command is None:
                self._save(tx)
                return
            if isinstance(command, SendProvision):
                self._save(tx)
                reply = transport.provision(command.request, timeout=timeout)
            elif isinstance(command, SendRetry):
                log.info(
                    "sale %s: no final answer (%s); retry %d",
                    tx.id,
                    tx.unanswered,
                    command.attempt,
                    extra=sale(tx.id),
                )
                clock.sleep(settings.policy.retry_delay)
                self._save(tx)
                reply = transport.retry(command.request, timeout=timeout)
            elif isinstance(command, QueueAdvice):
                self._queue(tx, command)
                return
            else:
                assert isinstance(command, AwaitDecision)
                self.ledger.awaiting(tx, clock.monotonic())
                self._save(tx, decision_deadline=self._wall_deadline())
                return
            command = tx.provision_replied(reply, now=clock.now(), new_id=settings.new_id)
            self.ledger.moved(tx)

    def _save(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        if self.journal is None:
            return
        try:
            self.journal.record(tx, decision_deadline=decision_deadline)
        except Exception:
            self._not_journaled(tx)
            raise
        tx.checkpoint()

    def _not_journaled(self, tx: Transaction) -> None:
        # Stop here: the journal still holds the last state it took, the transaction goes back
        # to it, and recovery carries the sale on from there.
        tx.roll_back()
        self.ledger.forget(tx)

    def _abandoned(self, tx: Transaction) -> None:
        """``sell()`` failed: its host tells the customer so. If the request may have left
        (the journal took the sale, which it does before anything is sent), the sale is now
        one without its host: marked so, and journaled if the journal takes it (recovery marks
        it anyway). Recovery finishes it; this driver lets it go."""
        self.ledger.forget(tx)
        tx.roll_back()
        if not tx.checkpointed or not (
            tx.state is State.PROVISIONING or tx.state is State.RETRYING
        ):
            return
        assert self.journal is not None  # checkpointed: the journal took it
        tx.host_gone(now=self.clock.now(), new_id=self.settings.new_id)
        try:
            self.journal.record(tx)
        except Exception as error:
            tx.roll_back()
            log.warning(
                "sale %s failed after its request left and the journal could not note that "
                "its host is gone (%s); recovery will mark it so",
                tx.id,
                error,
            )
        else:
            tx.checkpoint()

    def _wall_deadline(self) -> float:
        return self.clock.now().timestamp() + self.settings.decision.limit

    def _queue(self, tx: Transaction, command: QueueAdvice) -> None:
        """Journal ``tx`` with the advice it owes, queue the advice and try it once."""
        if isinstance(command.advice, BasicReversal):
            log.info(
                "sale %s: reversal %s queued (%s)",
                tx.id,
                command.advice.id,
                command.advice.reversal_reason,
                extra=sale(tx.id),
            )
        # Stored already leased to this driver: it goes out now, and no forwarder sends it at
        # the same time.
        now = self.clock.monotonic()
        together = self.journal_queue
        if together is not None:
            try:
                taken = together.record_and_enqueue(tx, command.advice, due=now, take=True)
            except Exception:
                self._not_journaled(tx)
                raise
            tx.checkpoint()
        else:
            self._save(tx)
            try:
                taken = self.queue.enqueue(command.advice, due=now, take=True)
            except Exception:
                if self.journal is None:
                    raise
                # The journal already holds the advice: the outcome stands, and the next
                # forward() (or recovery) queues it again.
                self.ledger.unqueued.add(tx.id)
                return
        self.ledger.queued(tx, command)
        if taken is None:  # someone else holds it (a forwarder), and sends it
            return
        try:
            self._deliver(taken)
        except Exception:
            # The outcome stands as the journal took it (CONFIRMING or REVERSING) and is what
            # the host is told; the advice stays in the queue, leased here, and goes out again
            # once its lease runs out, and its settlement is journaled then.
            log.warning(
                "advice %s of sale %s was sent but could not be settled in the stores; it is "
                "sent again once its lease runs out",
                taken.id,
                tx.id,
                exc_info=True,
            )

    def _queue_journaled(self) -> None:
        for tid in list(self.ledger.unqueued):
            tx = self.ledger.live.get(tid)
            if tx is None or tx.advice is None or tx.terminal:
                self.ledger.unqueued.discard(tid)
                continue
            self.queue.enqueue(tx.advice, due=self.clock.monotonic())
            self.ledger.unqueued.discard(tid)
            self.ledger.queued(tx, QueueAdvice(tx.advice))

    def _deliver(self, queued: QueuedAdvice) -> None:
        timeout = self.settings.policy.timeout
        advice = queued.advice
        reply: AdviceReply
        if isinstance(advice, TenderAdvice):
            reply = self.transport.confirm(advice, timeout=timeout)
        else:
            reply = self.transport.reverse(advice, timeout=timeout)
        self.ledger.trace(AdviceSettled(queued.request_id, queued.id, queued.kind, reply))
        outcome = disposition(queued, reply, self.clock.monotonic(), self.settings)
        if not isinstance(reply, RepeatLater):
            tx = self._sale_of(queued.request_id)
            if tx is not None and not tx.terminal:
                tx.advice_replied(reply)
                self.ledger.moved(tx)
                together = self.journal_queue
                if together is None:
                    self._save(tx)
                else:
                    # A final reply: the advice leaves the queue (or is parked) in the commit
                    # that journals what it did to the sale.
                    try:
                        together.record_and_settle(tx, queued.id, park_reason=outcome.park_reason)
                    except Exception:
                        self._not_journaled(tx)
                        raise
                    tx.checkpoint()
                    return
        if outcome.acknowledge:
            self.queue.acknowledge(queued.id)
        elif outcome.park_reason is not None:
            log.info(
                "sale %s: %s %s refused for good and parked: %s",
                queued.request_id,
                queued.kind,
                queued.id,
                outcome.park_reason,
                extra=sale(queued.request_id),
            )
            self.queue.park(queued.id, reason=outcome.park_reason)
        else:
            assert outcome.due is not None
            self.queue.repeat_later(queued.id, due=outcome.due)

    def _sale_of(self, transaction_id: str) -> Transaction | None:
        """The sale an advice belongs to: live here, or as the journal last saw it."""
        tx = self.ledger.live.get(transaction_id)
        if tx is None and self.journal is not None:
            entry = self.journal.get(transaction_id)
            tx = entry.transaction if entry is not None else None
        return tx
