"""Many sales through a misbehaving network and host, then a check that the money adds up.

:func:`run_chaos` sells ``count`` vouchers across providers of every profile while the switch
drops, delays and fails requests at random (seeded, so a run repeats exactly), answers some
provisions with approvals that prove nothing or with ``DUPLICATE_RECORD``, and hosts confirm,
cancel or forget to decide. Beside the network, the host's side misbehaves too (each of these
can be turned off):

* the journal fails some writes (a full disk for a few writes in a row): the call raises, the
  host tells its customer the sale failed, and now and then the process resumes what it gave
  up on with ``recover()``;
* the trace observer and the exchange observer raise now and then (a metrics backend down);
* the process restarts now and then, between two calls: what the driver held in memory is
  gone, and the new driver recovers from the journal and queue;
* with a durable journal (``db`` or ``dsn``), a second process starts on it now and then, and
  must be refused before it sends or writes anything.

Then the network heals, every queue drains (the library's advice queue and the switch's own
store-and-forward), and each sale as the journal holds it is compared with the provider's
ledger: an approved sale must hold the voucher code the switch issued for it and have an
active voucher, a declined one none; no sale may end approved and unflagged unless its host
was told so, and a host told an outcome keeps it. Sales flagged for reconciliation are
counted apart, since they are the ones a person resolves.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from voucher_adapters.bootstrap import DEFAULT_SCHEMA, Application, Settings, build
from voucher_adapters.cli.switch_links import SwitchLink, open_link
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.errors import StorageError
from voucher_adapters.simulator import FaultKind, Provider, SwitchSimulator
from voucher_adapters.stores.failing import FailingJournal
from voucher_adapters.stores.second_process import start_second_process
from voucher_adapters.transports.exchange import Exchange
from voucher_core.drivers import Driver, Trace
from voucher_core.drivers.shared import DriverSettings
from voucher_core.messages import ErrorType, ProvisionRequest
from voucher_core.policy import DecisionPolicy, Messaging, ProviderProfile, RetryPolicy
from voucher_core.ports import Operation, TransactionJournal
from voucher_core.replies import Unknown
from voucher_core.table import State
from voucher_core.transaction import Outcome, Transaction

__all__ = ["CHAOS_PROVIDERS", "ChaosEdges", "ChaosSummary", "run_chaos"]

CHAOS_PROVIDERS: tuple[Provider, ...] = (
    Provider("dualco", ProviderProfile(messaging=Messaging.DUAL), frozenset({"DUAL1"})),
    Provider("singleco", ProviderProfile(messaging=Messaging.SINGLE), frozenset({"SINGLE1"})),
    Provider(
        "netcare",
        ProviderProfile(messaging=Messaging.DUAL, retries_supported=False),
        frozenset({"NETCARE1"}),
    ),
    Provider(
        "stellr",
        ProviderProfile(messaging=Messaging.DUAL, retries_supported=False, advices_supported=False),
        frozenset({"STELLR1"}),
    ),
    Provider(
        "singlenoadvice",
        ProviderProfile(messaging=Messaging.SINGLE, advices_supported=False),
        frozenset({"SINGLE2"}),
    ),
)
_FAULTS = (
    FaultKind.DELAY,
    FaultKind.LOST,
    FaultKind.DROPPED,
    FaultKind.UNAVAILABLE,
    FaultKind.STATUS_UNKNOWN,
    FaultKind.SERVER_ERROR,
    FaultKind.DECLINE,
    FaultKind.UNPROVEN,
    FaultKind.DUPLICATE_RECORD,
)
_PROVISIONS = (Operation.PROVISION, Operation.RETRY)

# A second process on a durable journal: it builds the application as any host does (which
# claims the journal's owner) and, were it let in, would resume the unfinished sales.


@attrs.frozen
class ChaosEdges:
    """How often each failure beside the network strikes (0 turns it off). Rates are per
    journal write, per observer call, and per sale (restarts, recoveries, second processes).
    """

    storage_failure_rate: float = 0.01
    storage_burst: int = 3
    observer_failure_rate: float = 0.02
    restart_rate: float = 0.002
    recover_rate: float = 0.02
    second_process_rate: float = 0.002

    @classmethod
    def none(cls) -> ChaosEdges:
        return cls(0.0, 1, 0.0, 0.0, 0.0, 0.0)


@attrs.frozen
class ChaosSummary:
    count: int
    final_states: dict[str, int]
    mismatches: int
    reconciliation: int
    edges: dict[str, int] = attrs.field(factory=dict)
    mismatched_ids: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "final_states": self.final_states,
            "mismatches": self.mismatches,
            "reconciliation": self.reconciliation,
            "edges": self.edges,
        }


def run_chaos(
    count: int,
    seed: int,
    *,
    fault_rate: float = 0.3,
    http: bool = False,
    db: str | None = None,
    dsn: str | None = None,
    schema: str = DEFAULT_SCHEMA,
    edges: ChaosEdges | None = None,
) -> ChaosSummary:
    """Sell ``count`` vouchers through random faults; over loopback HTTP if ``http``; with
    the journal and advice queue in the SQLite file ``db`` or the PostgreSQL database ``dsn``
    if given (else in memory). ``edges`` says how often the host's side fails."""
    edges = ChaosEdges() if edges is None else edges
    switch = SwitchSimulator(CHAOS_PROVIDERS, seed=seed)
    tally: Counter[str] = Counter()
    misbehave = random.Random(f"{seed}/host side")  # a stream of its own: the sales repeat

    def observer_fails(what: str) -> None:
        if edges.observer_failure_rate and misbehave.random() < edges.observer_failure_rate:
            tally["observer_failures"] += 1
            raise ConnectionError(f"metrics backend unreachable ({what})")

    def on_exchange(exchange: Exchange) -> None:
        reply = exchange.reply
        if exchange.operation in _PROVISIONS and isinstance(reply, Unknown):
            if exchange.status is not None and 200 <= exchange.status < 300:
                tally["approvals_without_proof"] += 1
            elif reply.error is not None and reply.error.error_type == ErrorType.DUPLICATE_RECORD:
                tally["duplicate_records"] += 1
        observer_fails("exchange")

    def on_trace(_: Trace) -> None:
        observer_fails("trace")

    with _counting_logs(tally), open_link(switch, http=http) as link:
        switch.faults.randomly(
            seed=seed,
            rate=fault_rate,
            kinds=_FAULTS,
            provider_down_rate=0.3,
            delay=link.fault_delay,
        )
        rng = random.Random(seed)
        profiles = {product: p.profile for p in CHAOS_PROVIDERS for product in p.products}

        def profile_of(request: ProvisionRequest) -> ProviderProfile:
            assert request.product is not None
            return profiles[request.product.product_id]

        settings = Settings(
            transport=link.transport(DEMO_CLIENT_ID, observer=on_exchange),
            db=db,
            dsn=dsn,
            schema=schema,
            memory_journal=True,
            clock=SimulatedClock(),
            driver=DriverSettings(
                policy=RetryPolicy(timeout=link.timeout, retry_delay=1.0),
                profile=profile_of,
                decision=DecisionPolicy(limit=120.0),
                new_id=SeededIds(f"{seed}:chaos"),
                draw=rng.random,
                observer=on_trace,
            ),
        )
        second = None
        if db is not None:
            second = {"db": db}
        elif dsn is not None:
            second = {"dsn": dsn, "schema": schema}
        with build(settings) as app:
            assert app.journal is not None
            failing = FailingJournal(
                app.journal,
                rate=edges.storage_failure_rate,
                draw=misbehave.random,
                burst=edges.storage_burst,
            )
            run = _Run(
                link=link,
                switch=switch,
                app=app,
                journal=failing,
                rng=rng,
                misbehave=misbehave,
                edges=edges,
                tally=tally,
                second=second,
            )
            summary = run.sell(sorted(profiles), count=count)
            tally["storage_failures"] = failing.failures
            return attrs.evolve(summary, edges=_edges_of(tally))


@contextmanager
def _counting_logs(tally: Counter[str]) -> Iterator[None]:
    """While a run lasts, the library's warnings are counted, not printed: the run causes
    them on purpose, thousands of them (each is tested where it is raised)."""
    logger = logging.getLogger("voucher_core")
    counter = _Counting(tally)
    propagate = logger.propagate
    logger.addHandler(counter)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(counter)
        logger.propagate = propagate


class _Counting(logging.Handler):
    def __init__(self, tally: Counter[str]) -> None:
        super().__init__(logging.WARNING)
        self.tally = tally

    def emit(self, record: logging.LogRecord) -> None:
        self.tally["warnings_logged"] += 1


def _edges_of(tally: Counter[str]) -> dict[str, int]:
    names = (
        "never_recorded",
        "approvals_without_proof",
        "duplicate_records",
        "storage_failures",
        "calls_failed",
        "observer_failures",
        "restarts",
        "recoveries",
        "second_processes_refused",
        "warnings_logged",
    )
    return {name: tally.get(name, 0) for name in names}


class _Run:
    """One chaos run: the host's side of it, and the check at the end."""

    def __init__(
        self,
        *,
        link: SwitchLink,
        switch: SwitchSimulator,
        app: Application,
        journal: FailingJournal,
        rng: random.Random,
        misbehave: random.Random,
        edges: ChaosEdges,
        tally: Counter[str],
        second: dict[str, str] | None,
    ) -> None:
        self.link, self.switch, self.app, self.journal = link, switch, app, journal
        self.rng, self.misbehave, self.edges, self.tally = rng, misbehave, edges, tally
        self.second = second
        self.told: dict[str, Outcome] = {}
        self._start(journal)

    def _start(self, journal: TransactionJournal) -> None:
        """A driver on the failing journal, as a (re)started process builds it."""
        old = self.app.driver
        self.driver = self.app.driver = Driver(
            old.transport, old.queue, clock=old.clock, settings=old.settings, journal=journal
        )

    def _chance(self, rate: float) -> bool:
        return bool(rate) and self.misbehave.random() < rate

    def _host_call(
        self, call: Callable[..., Transaction], *args: Any, **kwargs: Any
    ) -> Transaction | None:
        """A host's call; a StorageError is a failure its customer is told of (None)."""
        try:
            tx = call(*args, **kwargs)
        except StorageError:
            self.tally["calls_failed"] += 1
            return None
        if tx.outcome is not None:
            self.told[tx.id] = tx.outcome
        return tx

    def _background(self, work: Callable[[], object]) -> None:
        """Work the host does in the background: a StorageError is logged and tried later."""
        try:
            work()
        except StorageError:
            self.tally["calls_failed"] += 1

    def sell(self, products: list[str], *, count: int) -> ChaosSummary:
        clock = self.driver.clock
        assert isinstance(clock, SimulatedClock)
        ids, decision = self.driver.settings.new_id, self.driver.settings.decision
        started: list[str] = []
        for _ in range(count):
            amount = self.rng.choice((500, 1000, 2000, 5000))
            request = demo_request(
                id=ids(), time=clock.now(), product_id=self.rng.choice(products), amount=amount
            )
            started.append(request.id)
            tenders_first = self.rng.random() < 0.2
            tenders = cash(amount) if tenders_first else None
            driver = self.driver
            tx = self._host_call(driver.sell, request, tenders=tenders)
            choice = self.rng.random()
            if tx is not None and tx.state is State.PROVISIONED:
                if choice < 0.6:
                    self._host_call(driver.confirm, tx, cash(amount))
                elif choice < 0.8:
                    self._host_call(driver.cancel, tx)
                # else: the host never answers; the decision limit reverses it later.
            clock.advance(self.rng.uniform(0.0, 5.0))
            self._background(self.driver.expire_decisions)
            if self.rng.random() < 0.3:
                self._background(self.driver.forward)
                self.link.pump_once()
            self._misbehave()

        # The network and the disk heal; what was given up on is resumed; undecided sales
        # time out; everything queued is delivered.
        self.switch.faults.heal()
        self.journal.rate = 0.0
        self.driver.recover()
        clock.advance(decision.limit)
        self.driver.expire_decisions()
        self.driver.drain()
        self.link.settle()
        return self._check(started)

    def _misbehave(self) -> None:
        edges = self.edges
        if self._chance(edges.restart_rate):
            self.tally["restarts"] += 1
            self._start(self.journal)
            self._background(self.driver.recover)
        if self._chance(edges.recover_rate):
            self.tally["recoveries"] += 1
            self._background(self.driver.recover)
        if self.second is not None and self._chance(edges.second_process_rate):
            self._second_process(self.second)

    def _second_process(self, settings: dict[str, str]) -> None:
        tried = start_second_process(settings, claim_wait=0.5)  # the holder here is alive
        if not tried.refused:
            raise AssertionError(
                "a second process was not refused on a claimed journal "
                f"(exit {tried.returncode}): {tried.output[-500:]}"
            )
        self.tally["second_processes_refused"] += 1

    def _check(self, started: list[str]) -> ChaosSummary:
        sales: list[Transaction] = []
        unsettled = {e.provision_id for e in self.switch.ledger() if e.state != "reversed"}
        mismatched: list[str] = []
        for tid in started:
            entry = self.journal.get(tid)
            if entry is None:
                # Its first record failed, so nothing may have left for it.
                self.tally["never_recorded"] += 1
                if self.switch.issued_code(tid) is not None or tid in unsettled:
                    mismatched.append(tid)
                continue
            tx = entry.transaction
            sales.append(tx)
            if _disagrees(tx, self.switch, unsettled) or _behind_the_host(tx, self.told):
                mismatched.append(tx.id)
        states = Counter(tx.state.value for tx in sales)
        flagged = [tx for tx in sales if tx.reconciliation is not None]
        return ChaosSummary(
            count=len(started),
            final_states={state.value: states.get(state.value, 0) for state in State},
            mismatches=len(mismatched),
            reconciliation=len(flagged),
            mismatched_ids=tuple(mismatched),
        )


def _disagrees(tx: Transaction, switch: SwitchSimulator, unsettled: set[str]) -> bool:
    """Whether the provider's books contradict how the sale ended.

    Excused: a sale whose advice met a final conflict or rejection, flagged and reported for a
    person to settle. A voucher flagged because its host was gone when it was issued is not
    excused: it was issued all the same, and the books must show it active.
    """
    if tx.outcome is Outcome.APPROVED:
        # What proves the approval: the code the switch issued for this very sale.
        response = tx.response
        if response is None or response.id != tx.id:
            return True
        code = response.voucher.code
        if not code or not code.strip() or code != switch.issued_code(tx.id):
            return True
    if tx.reconciliation is not None and tx.advice is not None:
        return False
    if not tx.terminal:
        return True
    if tx.state is State.DONE:
        return not switch.voucher_active(tx.id)
    # Declined: no active voucher, and nothing left issued at a provider that takes advices.
    return switch.voucher_active(tx.id) or (tx.profile.advices_supported and tx.id in unsettled)


def _behind_the_host(tx: Transaction, told: dict[str, Outcome]) -> bool:
    """Whether the sale ended otherwise than its host was told, or approved and unflagged
    with no host told (a sale resumed by recovery, or one whose call failed)."""
    outcome = told.get(tx.id)
    if outcome is Outcome.APPROVED:
        return tx.state is not State.DONE
    if outcome is Outcome.DECLINED:
        return tx.state is not State.DECLINED
    return tx.state is State.DONE and tx.reconciliation is None
