"""Many concurrent sales against a faulty switch: the invariants of the specification hold.

A hypothesis state machine interleaves sales across providers of every profile with faults
(timeouts, lost responses, dropped connections, 5xx, unknown outcomes, hard declines),
host decisions, time passing, advice forwarding, the switch's own store-and-forward, and
repeated acknowledgements. After every step it checks the invariants that hold at all times;
when the network heals and every queue drains it checks that every sale ended and the money
agrees.

1. Every transaction reaches DONE or DECLINED once the network heals.
2. After all advices are delivered, the provider holds an active voucher exactly for the sales
   that ended DONE, and none for DECLINED ones, unless flagged for reconciliation.
3. A provision is never both confirmed and reversed by the library.
4. Retries reuse the original id and body, and there are at most ``max_retries`` of them.
5. Every advice reported queued is delivered at least once, across crashes, byte for byte.
6. A hard decline on the first attempt produces no further message.
7. No sale ends approved unless the switch returned a voucher with a code for that sale's id:
   approvals that prove nothing (no voucher, an empty code, another sale's id, client or
   amount) and DUPLICATE_RECORD answers are scripted, and every approved sale holds the code
   the switch issued for it.
8. A sale ends approved and unflagged only if its host was told so (or the process died after
   the journal took the approval); a host told an outcome keeps it; a sale that recovery
   resumed in flight, or whose sell() failed, ends reversed (dual) or flagged (single).
Also: every repeat of an advice has the same id and body, nothing is sent for a sale before
the journal holds it, and a transaction never claims more than the journal holds.

The process may die at any port call (before or after it: a rule arms that), after which
everything in memory is thrown away and a new driver recovers from the journal and queue.
The journal may fail for a few writes (a full disk, a locked database) while the process
lives on: the call raises StorageError, the host tells its customer the sale failed, and the
process resumes what it gave up on with recover(). The trace observer may raise. Where the
journal is durable (SQLite, PostgreSQL) it is claimed, and a second process starting on it is
refused before it sends or writes anything.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crashing import Crash, CrashingJournal, CrashingQueue, CrashingTransport, Fuse
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.errors import StorageError
from voucher_adapters.simulator import (
    Damage,
    Fault,
    FaultKind,
    Operation,
    Provider,
    SwitchSimulator,
)
from voucher_adapters.stores.memory import InMemoryAdviceQueue, InMemoryJournal
from voucher_adapters.stores.second_process import start_second_process
from voucher_adapters.stores.sqlite import SqliteAdviceQueue, SqliteJournal
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.in_process import InMemoryTransport
from voucher_core import (
    DecisionPolicy,
    Driver,
    DriverSettings,
    Outcome,
    RetryPolicy,
    State,
    Transaction,
)
from voucher_core.drivers import Trace
from voucher_core.messages import ProvisionRequest
from voucher_core.policy import Messaging, ProviderProfile
from voucher_core.reconciliation import report
from voucher_core.replies import Acknowledged
from voucher_core.snapshot import snapshot

MAX_RETRIES = 3
PROVIDERS = (
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
)
# A second process on the same journal: it builds the application as any host would (which
# claims the journal's owner) and, were it let in, resumes the unfinished sales.
PROFILES = {product: p.profile for p in PROVIDERS for product in p.products}
PROVISION_FAULTS = st.sampled_from(list(FaultKind))
ADVICE_FAULTS = st.sampled_from(
    [
        FaultKind.DELAY,
        FaultKind.LOST,
        FaultKind.DROPPED,
        FaultKind.UNAVAILABLE,
        FaultKind.SERVER_ERROR,
        FaultKind.DECLINE,
    ]
)


class ManySales(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.second_started = False
        self.switch = SwitchSimulator(PROVIDERS, seed=11)
        self.clock = SimulatedClock()
        self.exchanges: list[Exchange] = []
        self.ids = SeededIds(11)
        self.decision = DecisionPolicy(limit=300.0)
        # What survives a crash: the switch, the clock, and the durable stores.
        self.fuse = Fuse()
        self.transport = CrashingTransport(
            InMemoryTransport(self.switch, username=DEMO_CLIENT_ID, observer=self.exchanges.append),
            self.fuse,
        )
        self.queue_store, self.journal_store = self._open_stores()
        self.queue = CrashingQueue(self.queue_store, self.fuse)
        self.journal = CrashingJournal(self.journal_store, self.fuse)
        self.started: list[str] = []
        self.restarts = 0
        # What each host was told ("approved" / "declined"), and the sales whose approval the
        # journal took before the process died in the host's call (decided, but not told).
        self.told: dict[str, Outcome] = {}
        self.decided_untold: set[str] = set()
        self.observer_failures = 0  # traces the observer is still to fail on
        self.driver = self._new_driver()

    def _open_stores(self) -> tuple[Any, Any]:
        """The durable stores a crash leaves behind (in memory here; on disk in subclasses)."""
        return InMemoryAdviceQueue(lease=150.0), InMemoryJournal()

    def _close_stores(self) -> None:
        return None

    def _second_process(self) -> dict[str, object] | None:
        """The settings a second process starts with on the same journal (None: the journal
        lives in this process's memory, so no other process can reach it)."""
        return None

    def _new_driver(self) -> Driver:
        def profile_of(request: ProvisionRequest) -> ProviderProfile:
            assert request.product is not None
            return PROFILES[request.product.product_id]

        return Driver(
            self.transport,
            self.queue,
            clock=self.clock,
            journal=self.journal,
            settings=DriverSettings(
                policy=RetryPolicy(max_retries=MAX_RETRIES, timeout=60.0, retry_delay=2.0),
                profile=profile_of,
                decision=self.decision,
                new_id=self.ids,
                observer=self._observe,
            ),
        )

    def _observe(self, trace: Trace) -> None:
        """A metrics backend that is down for a number of traces."""
        if self.observer_failures:
            self.observer_failures -= 1
            raise ConnectionError("metrics backend unreachable")

    def _guard(self, work: Callable[[], object], *, sale: str | None = None) -> str:
        """Run ``work``; say how it went ("done", "died" or "failed"). If the process "dies"
        on the way, restart and recover; if the journal failed, the process lives on (the host
        tells its customer the call failed).
        ``sale`` names the sale a host's call was about, to note whether the journal had taken
        its approval when the process died."""
        try:
            work()
        except Crash:
            if sale is not None:
                entry = self.journal_store.get(sale)
                if entry is not None and entry.transaction.outcome is Outcome.APPROVED:
                    self.decided_untold.add(sale)
            self._restart()
            return "died"
        except StorageError:
            return "failed"
        return "done"

    def _tell(self, tx: Transaction) -> None:
        """What the host tells its customer once a call returned: the outcome, if decided."""
        if tx.outcome is not None:
            self.told[tx.id] = tx.outcome

    def _restart(self) -> None:
        self.restarts += 1
        for _ in range(50):
            self.driver = self._new_driver()  # everything in memory is gone
            try:
                self._recover()
                return
            except Crash:
                continue
        raise AssertionError("recovery kept crashing with no fuse armed")

    def _recover(self) -> None:
        """recover(), again while the journal fails: the process lives on and tries again, and
        resumes what it gave up on the first time."""
        for _ in range(50):
            try:
                self.driver.recover()
                return
            except StorageError:
                continue
        raise AssertionError("recovery kept failing on a journal that works again")

    def _sales(self) -> list[Transaction]:
        """Every sale as the journal holds it (a sale that died before its first record never
        sent anything and is not a sale)."""
        found = [self.journal_store.get(tid) for tid in self.started]
        return [entry.transaction for entry in found if entry is not None]

    @initialize(seed=st.integers(0, 2**16), rate=st.sampled_from([0.0, 0.2, 0.5, 0.8]))
    def a_flaky_network(self, seed: int, rate: float) -> None:
        """Besides the scripted faults, every request may meet a random one."""
        if rate:
            self.switch.faults.randomly(
                seed=seed, rate=rate, kinds=list(FaultKind), provider_down_rate=rate / 2
            )

    # -- what happens -----------------------------------------------------------------------------

    @rule(product=st.sampled_from(sorted(PROFILES)), tenders_first=st.booleans())
    def sell(self, product: str, tenders_first: bool) -> None:
        request = demo_request(id=self.ids(), time=self.clock.now(), product_id=product)
        self.started.append(request.id)
        tenders = cash(1000) if tenders_first else None
        self._guard(lambda: self._tell(self.driver.sell(request, tenders=tenders)), sale=request.id)

    @rule(
        operation=st.sampled_from([Operation.PROVISION, Operation.RETRY]),
        kind=PROVISION_FAULTS,
        times=st.integers(1, 4),
    )
    def provision_fault(self, operation: Operation, kind: FaultKind, times: int) -> None:
        self.switch.faults.script(operation, kind, times=times)

    @rule(
        operation=st.sampled_from([Operation.CONFIRM, Operation.REVERSE]),
        kind=ADVICE_FAULTS,
        times=st.integers(1, 3),
    )
    def advice_fault(self, operation: Operation, kind: FaultKind, times: int) -> None:
        self.switch.faults.script(operation, kind, times=times)

    @rule(
        operation=st.sampled_from([Operation.PROVISION, Operation.RETRY]),
        damage=st.sampled_from(list(Damage)),
        times=st.integers(1, 4),
    )
    def an_approval_proves_nothing(self, operation: Operation, damage: Damage, times: int) -> None:
        """The switch issues, but its approval reaches the till without the proof."""
        self.switch.faults.script(operation, Fault(FaultKind.UNPROVEN, damage=damage), times=times)

    @rule(times=st.integers(1, 3))
    def the_switch_says_duplicate_record(self, times: int) -> None:
        """The switch issues, and answers the provision with DUPLICATE_RECORD."""
        self.switch.faults.script(Operation.PROVISION, FaultKind.DUPLICATE_RECORD, times=times)

    # Once per run: a real process costs a second or more to start, and what it must meet
    # (a live claim) is the same at every step; hypothesis still picks the step.
    @precondition(lambda self: self._second_process() is not None and not self.second_started)
    @rule()
    def a_second_process_starts_on_the_journal(self) -> None:
        """Another process (a second till, a `voucher recover`) starts on the same journal
        while this one lives: it is refused before it sends or writes anything."""
        self.second_started = True
        second = self._second_process()
        assert second is not None
        held = self._held()
        tried = start_second_process(second, claim_wait=0.5)
        assert tried.refused, tried
        assert "another live process" in tried.output
        assert self._held() == held
        event("a second process on the journal, refused")

    def _held(self) -> list[str]:
        return [snapshot(tx) for tx in self._sales()]

    @rule(at=st.integers(1, 8), after=st.booleans())
    def the_process_will_die(self, at: int, after: bool) -> None:
        """Somewhere in the next few port calls the process is killed, before or after one."""
        self.fuse.arm(at, after=after)

    @rule(at=st.integers(1, 6), times=st.integers(1, 3))
    def the_journal_will_fail(self, at: int, times: int) -> None:
        """One of the next few journal writes fails, and a few after it: a disk fills up, or
        another process holds the database locked. The process lives on."""
        self.journal.fail(at, times)

    @rule(times=st.integers(1, 20))
    def the_metrics_backend_goes_down(self, times: int) -> None:
        """The trace observer raises for the next few traces; no call may raise for it."""
        self.observer_failures = times

    @rule()
    def the_process_resumes_what_it_gave_up_on(self) -> None:
        """After a StorageError the driver lets the sale go; recover() in the live process
        resumes it from the journal (and leaves alone the sales it still drives)."""
        self._guard(self.driver.recover)

    def _waiting(self) -> list[Transaction]:
        return [tx for tx in self.driver.in_flight() if tx.state is State.PROVISIONED]

    @precondition(lambda self: bool(self._waiting()))
    @rule(pick=st.integers(0, 1000), confirm=st.booleans())
    def host_decides(self, pick: int, confirm: bool) -> None:
        waiting = self._waiting()
        tx = waiting[pick % len(waiting)]
        if confirm:
            went = self._guard(lambda: self._tell(self.driver.confirm(tx, cash(1000))), sale=tx.id)
        else:
            went = self._guard(lambda: self._tell(self.driver.cancel(tx)), sale=tx.id)
        if went == "failed":
            # The host was told its decision failed: the object it holds says what the
            # journal holds, no more.
            entry = self.journal_store.get(tx.id)
            assert entry is not None and snapshot(entry.transaction) == snapshot(tx)

    @rule(seconds=st.floats(0.0, 400.0))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self._guard(self.driver.expire_decisions)

    @rule()
    def forward(self) -> None:
        self._guard(self.driver.forward)

    @rule()
    def switch_forwards_to_providers(self) -> None:
        self.switch.pump(max_rounds=1)

    @precondition(lambda self: any(tx.terminal for tx in self._sales()))
    @rule(pick=st.integers(0, 1000))
    def duplicate_acknowledgement(self, pick: int) -> None:
        finished = [tx for tx in self._sales() if tx.terminal]
        tx = finished[pick % len(finished)]
        before = (tx.state, tx.reconciliation)
        tx.advice_replied(Acknowledged(202))
        assert (tx.state, tx.reconciliation) == before

    @rule()
    def network_heals_and_queues_drain(self) -> None:
        self._heal_and_drain()
        self._check_ends_right()

    # -- invariants at every step ------------------------------------------------------------------

    def _by_request(self) -> dict[str, list[Exchange]]:
        grouped: dict[str, list[Exchange]] = defaultdict(list)
        for exchange in self.exchanges:
            grouped[exchange.request_id].append(exchange)
        return grouped

    @invariant()
    def never_both_confirmed_and_reversed(self) -> None:
        for request_id, exchanges in self._by_request().items():
            operations = {e.operation for e in exchanges}
            assert not {Operation.CONFIRM, Operation.REVERSE} <= operations, request_id

    @invariant()
    def retries_reuse_the_original_id_and_body_at_most_max_times(self) -> None:
        for request_id, exchanges in self._by_request().items():
            provisions = [e for e in exchanges if e.operation is Operation.PROVISION]
            retries = [e for e in exchanges if e.operation is Operation.RETRY]
            assert len(provisions) <= 1, request_id
            assert len(retries) <= MAX_RETRIES
            for retry in retries:
                assert retry.message_id == request_id
                if provisions:
                    assert retry.body == provisions[0].body

    @invariant()
    def providers_without_retries_get_none(self) -> None:
        grouped = self._by_request()
        for tx in self._sales():
            if not tx.profile.retries_supported:
                assert all(e.operation is not Operation.RETRY for e in grouped[tx.id])

    @invariant()
    def a_first_attempt_hard_decline_sends_nothing_more(self) -> None:
        grouped = self._by_request()
        for tx in self._sales():
            if tx.declined is not None and tx.retries == 0:
                assert [e.operation for e in grouped[tx.id]] == [Operation.PROVISION]
                assert tx.state is State.DECLINED

    @invariant()
    def advice_repeats_are_identical(self) -> None:
        bodies: dict[str, set[bytes]] = defaultdict(set)
        for exchange in self.exchanges:
            if exchange.operation in (Operation.CONFIRM, Operation.REVERSE):
                bodies[exchange.message_id].add(exchange.body)
        assert all(len(variants) == 1 for variants in bodies.values())

    @invariant()
    def nothing_is_sent_before_it_is_journaled(self) -> None:
        journaled = {tx.id for tx in self._sales()}
        assert {e.request_id for e in self.exchanges} <= journaled

    @invariant()
    def a_live_transaction_claims_no_more_than_the_journal_holds(self) -> None:
        for tx in self.driver.in_flight():
            entry = self.journal_store.get(tx.id)
            assert entry is not None, tx.id
            assert snapshot(entry.transaction) == snapshot(tx), tx.id

    @invariant()
    def an_approved_sale_holds_the_voucher_issued_for_it(self) -> None:
        """Invariant 7."""
        for tx in self._sales():
            if tx.outcome is not Outcome.APPROVED:
                continue
            response = tx.response
            assert response is not None and response.id == tx.id, tx.id
            assert response.voucher.code.strip(), f"{tx.id} approved with no voucher code"
            assert response.voucher.code == self.switch.issued_code(tx.id), tx.id

    @invariant()
    def outcome_is_never_withdrawn(self) -> None:
        for tx in self._sales():
            if tx.state is State.DONE:
                assert tx.outcome is not None and tx.outcome.value == "approved"
            if tx.state is State.DECLINED:
                assert tx.outcome is not None and tx.outcome.value == "declined"

    # -- when the network heals -----------------------------------------------------------------

    def _heal_and_drain(self) -> None:
        self.fuse.at = None
        self.journal.failing = range(0)
        self.observer_failures = 0
        self.switch.faults.heal()
        self._guard(lambda: None)
        self.driver.recover()  # what the process gave up on after a journal failure
        self.clock.advance(self.decision.limit)
        self.driver.expire_decisions()
        for _ in range(10_000):
            self.driver.forward()
            if not len(self.queue_store):
                break
            due = self.queue_store.next_due()
            assert due is not None
            self.clock.advance(max(due - self.clock.monotonic(), 0.0))
        assert not len(self.queue_store), "the advice queue did not drain after the network healed"
        self.switch.pump()
        assert self.switch.pending_forwards() == 0

    def _check_ends_right(self) -> None:
        ledger: dict[str, list[str]] = defaultdict(list)
        for entry in self.switch.ledger():
            ledger[entry.provision_id].append(entry.state)
        sent_advices = {
            e.message_id: e.body
            for e in self.exchanges
            if e.operation in (Operation.CONFIRM, Operation.REVERSE)
        }
        # Every advice ever reported queued was delivered at least once, byte for byte.
        for advice_id, body in self.queue.reported_queued.items():
            assert sent_advices.get(advice_id) == body, f"advice {advice_id} never delivered"
        sales = self._sales()
        reported = {f.transaction_id for f in report(self.journal_store.entries())}
        for tx in sales:
            assert tx.terminal, f"{tx.id} stuck in {tx.state}"
            self._check_the_host_was_there(tx)
            if tx.reconciliation is not None:
                assert tx.id in reported, f"{tx.id} flagged but not reported"
            if tx.reconciliation is not None and tx.advice is not None:
                continue  # an advice met a final refusal: a person settles the money
            if tx.state is State.DECLINED and tx.profile.advices_supported:
                # Nothing may be left issued-but-unsettled at a provider that takes advices.
                assert set(ledger[tx.id]) <= {"reversed"}, (tx.id, ledger[tx.id])
            assert self.switch.voucher_active(tx.id) == (tx.state is State.DONE), (
                f"{tx.id} ended {tx.state} but the provider disagrees"
            )

    def _check_the_host_was_there(self, tx: Transaction) -> None:
        """Invariant 8."""
        told = self.told.get(tx.id)
        if told is Outcome.APPROVED:
            assert tx.state is State.DONE, f"{tx.id}: the host said approved, it ended {tx.state}"
        elif told is Outcome.DECLINED:
            assert tx.state is State.DECLINED, f"{tx.id}: the host said declined, it ended DONE"
        elif tx.state is State.DONE and tx.reconciliation is None:
            assert tx.id in self.decided_untold, f"{tx.id} approved behind its host's back"
        if tx.unattended and tx.profile.dual:
            assert tx.state is State.DECLINED and told is None, tx.id
            event("a dual sale without its host, reversed")
        if tx.unattended and tx.state is State.DONE:
            assert tx.reconciliation is not None and tx.response is not None, tx.id
            assert tx.response.voucher.code not in tx.reconciliation
            event("a single voucher without its host, flagged")

    def teardown(self) -> None:
        try:
            self._heal_and_drain()
            self._check_ends_right()
        finally:
            self._close_stores()


class ManySalesOnSqlite(ManySales):
    """The same, with the journal and queue in a SQLite file (fsync off: no process dies)."""

    def _open_stores(self) -> tuple[Any, Any]:
        self._folder = tempfile.mkdtemp(prefix="voucher-invariants-")
        self._path = Path(self._folder) / "voucher.db"
        journal = SqliteJournal(self._path, synchronous="OFF")
        journal.claim()
        return SqliteAdviceQueue(self._path, lease=150.0, synchronous="OFF"), journal

    def _second_process(self) -> dict[str, object] | None:
        return {"db": str(self._path)}

    def _close_stores(self) -> None:
        self.queue_store.close()
        self.journal_store.close()
        shutil.rmtree(self._folder, ignore_errors=True)


class ManySalesOnPostgres(ManySales):
    """The same, with the journal and queue in a fresh PostgreSQL schema."""

    def _open_stores(self) -> tuple[Any, Any]:
        from pg import require_postgres  # noqa: PLC0415

        from voucher_adapters.stores.postgres import PostgresAdviceQueue, PostgresJournal  # noqa: PLC0415

        self._dsn = require_postgres()
        self._schema = f"voucher_test_{uuid.uuid4().hex}"
        journal = PostgresJournal(self._dsn, schema=self._schema, pool_size=1)
        journal.claim()
        return (
            PostgresAdviceQueue(self._dsn, schema=self._schema, lease=150.0, pool_size=1),
            journal,
        )

    def _second_process(self) -> dict[str, object] | None:
        return {"dsn": self._dsn, "schema": self._schema, "pool_size": 1}

    def _close_stores(self) -> None:
        from pg import drop_schema  # noqa: PLC0415

        self.queue_store.close()
        self.journal_store.close()
        drop_schema(self._schema)


# `make soak` sets VOUCHER_SOAK to run each machine that many times longer.
SOAK = max(1, int(os.environ.get("VOUCHER_SOAK", "1")))

ManySales.TestCase.settings = settings(
    max_examples=150 * SOAK,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_many_sales_under_faults_end_right = ManySales.TestCase

ManySalesOnSqlite.TestCase.settings = settings(
    max_examples=30 * SOAK,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_many_sales_on_sqlite_end_right = ManySalesOnSqlite.TestCase

ManySalesOnPostgres.TestCase.settings = settings(
    max_examples=15 * SOAK,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_many_sales_on_postgres_end_right = ManySalesOnPostgres.TestCase
