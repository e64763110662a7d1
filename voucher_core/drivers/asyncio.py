"""The asyncio driver: the same loop as the sync driver, awaiting the async ports."""

from __future__ import annotations

from collections.abc import Iterable

from voucher_core.commands import AwaitDecision, Command, QueueAdvice, SendProvision, SendRetry
from voucher_core.drivers.shared import DriverSettings, Ledger, disposition
from voucher_core.messages import ProvisionRequest, Tender, TenderAdvice
from voucher_core.policy import ProviderProfile
from voucher_core.ports import AsyncAdviceQueue, AsyncTransport, Clock, LookupReply, QueuedAdvice
from voucher_core.replies import AdviceReply
from voucher_core.table import State
from voucher_core.transaction import Transaction

__all__ = ["AsyncDriver"]


class AsyncDriver:
    """Sell vouchers over ``transport``, keeping advices in ``queue``.

    ``sell`` runs the provision phase and returns the transaction: terminal, waiting for the
    host (dual messaging, PROVISIONED), or with its advice queued. Advices are tried once at
    once when queued; whatever is left is delivered by :meth:`forward`, which a host calls
    from its own loop or background worker.
    """

    def __init__(
        self,
        transport: AsyncTransport,
        queue: AsyncAdviceQueue,
        *,
        clock: Clock,
        settings: DriverSettings | None = None,
    ) -> None:
        self.transport = transport
        self.queue = queue
        self.clock = clock
        self.settings = settings if settings is not None else DriverSettings()
        self.ledger = Ledger(self.settings)

    # -- the host's calls -----------------------------------------------------------------------

    async def sell(
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
        await self._run(tx, command)
        return tx

    async def confirm(self, tx: Transaction, tenders: Iterable[Tender]) -> Transaction:
        command = tx.confirm(tuple(tenders), now=self.clock.now(), new_id=self.settings.new_id)
        self.ledger.moved(tx)
        await self._run(tx, command)
        return tx

    async def cancel(self, tx: Transaction) -> Transaction:
        command = tx.cancel(now=self.clock.now(), new_id=self.settings.new_id)
        self.ledger.moved(tx)
        await self._run(tx, command)
        return tx

    async def expire_decisions(self) -> list[Transaction]:
        """Reverse every sale whose host did not decide in time. Returns those reversed."""
        overdue = self.ledger.overdue(self.clock.monotonic())
        expired: list[Transaction] = []
        for tx in overdue:
            if tx.state is not State.PROVISIONED:
                continue  # the host decided while earlier reversals were being sent
            command = tx.decision_timed_out(now=self.clock.now(), new_id=self.settings.new_id)
            self.ledger.moved(tx)
            expired.append(tx)
            await self._run(tx, command)
        return expired

    async def forward(self, *, limit: int = 100) -> int:
        """Send every advice that is due, once. Returns how many were sent."""
        taken = await self.queue.take_due(self.clock.monotonic(), limit=limit)
        for queued in taken:
            await self._deliver(queued)
        return len(taken)

    async def lookup(self, tx: Transaction) -> LookupReply:
        """Ask the switch about a finished transaction (refused while it is in flight)."""
        return await self.transport.lookup(tx.lookup_id(), timeout=self.settings.policy.timeout)

    def in_flight(self) -> list[Transaction]:
        return list(self.ledger.live.values())

    # -- the loop -------------------------------------------------------------------------------

    async def _run(self, tx: Transaction, command: Command | None) -> None:
        transport, clock, settings = self.transport, self.clock, self.settings
        timeout = settings.policy.timeout
        while command is not None:
            if isinstance(command, SendProvision):
                reply = await transport.provision(command.request, timeout=timeout)
            elif isinstance(command, SendRetry):
                await clock.asleep(settings.policy.retry_delay)
                reply = await transport.retry(command.request, timeout=timeout)
            elif isinstance(command, QueueAdvice):
                await self._queue(tx, command)
                return
            else:
                assert isinstance(command, AwaitDecision)
                self.ledger.awaiting(tx, clock.monotonic())
                return
            command = tx.provision_replied(reply, now=clock.now(), new_id=settings.new_id)
            self.ledger.moved(tx)

    async def _queue(self, tx: Transaction, command: QueueAdvice) -> None:
        now = self.clock.monotonic()
        await self.queue.enqueue(command.advice, due=now)
        self.ledger.queued(tx, command)
        for queued in await self.queue.take_due(now, limit=1, advice_id=command.advice.id):
            await self._deliver(queued)

    async def _deliver(self, queued: QueuedAdvice) -> None:
        timeout = self.settings.policy.timeout
        advice = queued.advice
        reply: AdviceReply
        if isinstance(advice, TenderAdvice):
            reply = await self.transport.confirm(advice, timeout=timeout)
        else:
            reply = await self.transport.reverse(advice, timeout=timeout)
        outcome = disposition(queued, reply, self.clock.monotonic(), self.settings)
        if outcome.acknowledge:
            await self.queue.acknowledge(queued.id)
        elif outcome.park_reason is not None:
            await self.queue.park(queued.id, reason=outcome.park_reason)
        else:
            assert outcome.due is not None
            await self.queue.repeat_later(queued.id, due=outcome.due)
        self.ledger.settle(queued, reply)
