"""A ready-wired point of sale for tests: a driver, a fake switch, stores in memory, fake time.

:class:`Till` (sync) and :class:`AsyncTill` (asyncio) build the real driver over the
in-memory transport, advice queue and journal, with a
:class:`~voucher_adapters.clock.SimulatedClock`
so nothing ever waits: retry delays, advice backoff and the host's decision limit all pass
the moment they are slept on or skipped with :meth:`Till.advance`. Every exchange with the
switch and every driver trace lands in :attr:`Till.records`, in order, for
:meth:`Till.assert_flow` and :meth:`Till.timeline`. Ids come from a seed, so a run repeats.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from voucher_adapters.bootstrap import Settings, build, build_async_in_memory
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.stores.memory import (
    AsyncInMemoryAdviceQueue,
    AsyncInMemoryJournal,
    InMemoryAdviceQueue,
    InMemoryJournal,
)
from voucher_adapters.testing.fake_switch import FakeSwitch
from voucher_adapters.testing.flow import (
    UNCHECKED,
    Record,
    _Unchecked,
    assert_flow,
    describe_flow,
    operation_name,
    operations_of,
)
from voucher_adapters.transports.exchange import Exchange, Operation
from voucher_adapters.transports.in_process import AsyncInMemoryTransport, InMemoryTransport
from voucher_core import (
    BackoffPolicy,
    DecisionPolicy,
    DriverSettings,
    RetryPolicy,
    State,
    Transaction,
)
from voucher_core.drivers import Trace
from voucher_core.errors import VoucherError
from voucher_core.messages import ProvisionRequest, Tender
from voucher_core.transaction import Outcome

__all__ = ["AsyncTill", "SettleError", "Till"]


class SettleError(VoucherError, AssertionError):
    """Advices were still queued after ``max_rounds`` deliveries (a switch that never agrees)."""


class _TillBase:
    """What both tills share: the switch, fake time, the records and the assertions."""

    # The in-memory parts the application was built with (the async till's sync ones).
    transport: InMemoryTransport
    queue: InMemoryAdviceQueue
    journal: InMemoryJournal

    def __init__(
        self,
        switch: FakeSwitch | None,
        *,
        seed: int,
        policy: RetryPolicy | None,
        decision: DecisionPolicy | None,
        backoff: BackoffPolicy | None,
        username: str,
    ) -> None:
        self.switch = switch if switch is not None else FakeSwitch(seed=seed)
        self.clock = SimulatedClock()
        self.username = username
        self.ids = SeededIds(seed)
        self.records: list[Record] = []
        self.settings = DriverSettings(
            policy=policy if policy is not None else RetryPolicy(),
            profile=self.switch.profile_for,
            decision=decision if decision is not None else DecisionPolicy(),
            backoff=backoff if backoff is not None else BackoffPolicy(),
            new_id=self.ids,
            draw=random.Random(seed).random,
            observer=self._record_trace,
        )
        self.app_settings = Settings(
            simulator=self.switch.simulator,
            username=username,
            exchange_observer=self._record_exchange,
            memory_journal=True,
            clock=self.clock,
            driver=self.settings,
        )

    def _record_exchange(self, exchange: Exchange) -> None:
        self.records.append(exchange)

    def _record_trace(self, trace: Trace) -> None:
        self.records.append(trace)

    # -- building sales -------------------------------------------------------------------------

    def request(
        self, product: str = "AIRTIME10", amount: int = 1000, *, terminal_id: str = "TILL0001"
    ) -> ProvisionRequest:
        """A valid provision request with the next id, stamped with the till's clock."""
        return demo_request(
            id=self.ids(),
            time=self.clock.now(),
            product_id=product,
            amount=amount,
            client_id=self.username,
            terminal_id=terminal_id,
        )

    @staticmethod
    def _default_tenders(tx: Transaction) -> tuple[Tender, ...]:
        amounts = tx.request.amounts
        wanted = amounts.request_amount if amounts is not None else None
        return cash(wanted.amount if wanted is not None else 0)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass, at once."""
        self.clock.advance(seconds)

    # -- what happened --------------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        """Every exchange with the switch, in order (all sales)."""
        return [record for record in self.records if isinstance(record, Exchange)]

    def operations(self, tx: Transaction | str | None = None) -> list[str]:
        """The operations sent (for ``tx``, or for every sale) as short words."""
        if tx is None:
            return [operation_name(exchange.operation) for exchange in self.exchanges]
        return operations_of(tx, self.records)

    def timeline(self, tx: Transaction | str) -> str:
        """``tx``'s timeline, one numbered line per message and state change."""
        return describe_flow(tx, self.records)

    def assert_flow(
        self,
        tx: Transaction,
        *,
        operations: Sequence[Operation | str] | None = None,
        final_state: State | str | None = None,
        outcome: Outcome | str | _Unchecked | None = UNCHECKED,
        reconciliation: bool | None = None,
    ) -> None:
        """:func:`~voucher_adapters.testing.assert_flow` on this till's records."""
        __tracebackhide__ = True
        assert_flow(
            tx,
            self.records,
            operations=operations,
            final_state=final_state,
            outcome=outcome,
            reconciliation=reconciliation,
        )

    def _settle_failed(self, max_rounds: int) -> SettleError:
        pending = ", ".join(queued.id for queued in self.queue.pending())
        return SettleError(
            f"advices still queued after {max_rounds} deliveries: {pending}; "
            "is the switch scripted to refuse them forever?"
        )


class Till(_TillBase):
    """A sync :class:`~voucher_core.Driver` wired to a :class:`FakeSwitch`, for tests.

    ``policy``, ``decision`` and ``backoff`` are the driver's policies (library defaults when
    left out); each product's provider profile comes from the switch.
    """

    def __init__(
        self,
        switch: FakeSwitch | None = None,
        *,
        seed: int = 0,
        policy: RetryPolicy | None = None,
        decision: DecisionPolicy | None = None,
        backoff: BackoffPolicy | None = None,
        username: str = DEMO_CLIENT_ID,
    ) -> None:
        super().__init__(
            switch,
            seed=seed,
            policy=policy,
            decision=decision,
            backoff=backoff,
            username=username,
        )
        self.app = build(self.app_settings)
        self.driver = self.app.driver
        transport, queue, journal = self.app.transport, self.app.queue, self.app.journal
        assert isinstance(transport, InMemoryTransport)
        assert isinstance(queue, InMemoryAdviceQueue)
        assert isinstance(journal, InMemoryJournal)
        self.transport, self.queue, self.journal = transport, queue, journal

    def sell(
        self,
        product: str = "AIRTIME10",
        amount: int = 1000,
        *,
        tenders: Iterable[Tender] | None = None,
        request: ProvisionRequest | None = None,
    ) -> Transaction:
        """Sell one voucher (``request``, or a demo request for ``product`` and ``amount``).

        With ``tenders`` the confirmation follows at once in dual messaging; without them a
        dual-messaging sale stops at PROVISIONED for :meth:`confirm` or :meth:`cancel`.
        """
        if request is None:
            request = self.request(product, amount)
        return self.driver.sell(request, tenders=tenders)

    def confirm(self, tx: Transaction, tenders: Iterable[Tender] | None = None) -> Transaction:
        """The customer paid: confirm (with one cash tender for the amount by default)."""
        chosen = tuple(tenders) if tenders is not None else self._default_tenders(tx)
        return self.driver.confirm(tx, chosen)

    def cancel(self, tx: Transaction) -> Transaction:
        """The customer walked away: reverse the voucher."""
        return self.driver.cancel(tx)

    def forward(self) -> int:
        """Send every advice that is due now, once (no time passes)."""
        return self.driver.forward()

    def settle(self, *, max_rounds: int = 1000) -> None:
        """Deliver everything queued, skipping the backoff in between, then pump the switch.

        Afterwards every advice is acknowledged, conflicting or parked, and the switch has
        told its providers. Sales still waiting for the host are left alone (see
        :meth:`expire_decisions`). Raises :class:`SettleError` if advices are still queued
        after ``max_rounds`` deliveries.
        """
        if not self.driver.drain(max_rounds=max_rounds):
            raise self._settle_failed(max_rounds)
        self.switch.pump()

    def expire_decisions(self, *, wait: float | None = None) -> list[Transaction]:
        """Let ``wait`` seconds pass (the whole decision limit by default), then reverse
        every sale whose host did not decide in time. Returns those reversed."""
        self.advance(self.settings.decision.limit if wait is None else wait)
        return self.driver.expire_decisions()

    def restart(self) -> list[Transaction]:
        """Simulate a crash and restart: a new driver over the same journal, queue and
        switch, then ``recover()``. Returns the sales resumed. In-flight
        :class:`Transaction` objects from before are stale afterwards: use the returned ones
        (or ``till.journal.get(id)``)."""
        self.driver = self.app.restart()
        return self.driver.recover()


class AsyncTill(_TillBase):
    """The asyncio twin of :class:`Till`: an :class:`~voucher_core.AsyncDriver`, awaited.

    It can be built outside an event loop (a plain fixture); its calls are coroutines.
    """

    def __init__(
        self,
        switch: FakeSwitch | None = None,
        *,
        seed: int = 0,
        policy: RetryPolicy | None = None,
        decision: DecisionPolicy | None = None,
        backoff: BackoffPolicy | None = None,
        username: str = DEMO_CLIENT_ID,
    ) -> None:
        super().__init__(
            switch,
            seed=seed,
            policy=policy,
            decision=decision,
            backoff=backoff,
            username=username,
        )
        self.app = build_async_in_memory(self.app_settings)
        self.driver = self.app.driver
        transport, queue, journal = self.app.transport, self.app.queue, self.app.journal
        assert isinstance(transport, AsyncInMemoryTransport)
        assert isinstance(queue, AsyncInMemoryAdviceQueue)
        assert isinstance(journal, AsyncInMemoryJournal)
        self.async_transport, self.async_queue, self.async_journal = transport, queue, journal
        # The sync parts underneath: one record of exchanges, one queue, one journal.
        self.transport, self.queue, self.journal = transport.sync, queue.sync, journal.sync

    async def sell(
        self,
        product: str = "AIRTIME10",
        amount: int = 1000,
        *,
        tenders: Iterable[Tender] | None = None,
        request: ProvisionRequest | None = None,
    ) -> Transaction:
        """See :meth:`Till.sell`."""
        if request is None:
            request = self.request(product, amount)
        return await self.driver.sell(request, tenders=tenders)

    async def confirm(
        self, tx: Transaction, tenders: Iterable[Tender] | None = None
    ) -> Transaction:
        """See :meth:`Till.confirm`."""
        chosen = tuple(tenders) if tenders is not None else self._default_tenders(tx)
        return await self.driver.confirm(tx, chosen)

    async def cancel(self, tx: Transaction) -> Transaction:
        return await self.driver.cancel(tx)

    async def forward(self) -> int:
        return await self.driver.forward()

    async def settle(self, *, max_rounds: int = 1000) -> None:
        """See :meth:`Till.settle`."""
        if not await self.driver.drain(max_rounds=max_rounds):
            raise self._settle_failed(max_rounds)
        self.switch.pump()

    async def expire_decisions(self, *, wait: float | None = None) -> list[Transaction]:
        """See :meth:`Till.expire_decisions`."""
        self.advance(self.settings.decision.limit if wait is None else wait)
        return await self.driver.expire_decisions()

    async def restart(self) -> list[Transaction]:
        """See :meth:`Till.restart`."""
        self.driver = self.app.restart()
        return await self.driver.recover()
