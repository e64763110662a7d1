"""Real point-of-sale processes killed with SIGKILL mid-sale: nothing is lost, money agrees.

The switch simulator runs over HTTP in this process; a worker process
(``tests/crash_worker.py``) sells vouchers to it through the sync or asyncio driver, with the
journal and the advice queue in one store. Every test runs on both durable stores: one
SQLite file (``[sqlite]``), and a fresh PostgreSQL schema, migrated before the first worker
starts and dropped afterwards (``[postgres]``; see ``tests/pg.py``: skipped when no server
answers, failed instead under CI). The test kills the worker with SIGKILL at chosen points:
while the switch holds its provision (a delay fault keeps the worker waiting for the answer),
between a reply and the journal write that records it, between storing an advice and sending
it, in the middle of forwarding the queue, and at random moments. After each kill a fresh
worker recovers from the store and drains the queue (and is sometimes killed itself). Once
the network heals and everything is delivered, every invariant of the specification is
checked against three independent records: the journal in the store, every request the
server received (bytes and answer, recorded by a middleware in front of the application),
and the providers' books in the switch. Beside invariants 1 to 6, invariant 8: a sale that
recovery resumed in flight was never handed to a customer (its till died before it could say),
so it ends reversed in dual messaging and, in single messaging, flagged for reconciliation with
its voucher's reference and listed by the reconciliation report.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from crash_worker import MAX_RETRIES, PROFILES, Sale
from pg import fresh_schema, require_postgres
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voucher_adapters.demo import DEMO_CLIENT_ID
from voucher_adapters.simulator import Fault, FaultKind, Operation, Provider, SwitchSimulator
from voucher_adapters.simulator.server import RunningServer, create_app
from voucher_adapters.stores.postgres import PostgresAdviceQueue, PostgresJournal, migrate
from voucher_adapters.stores.sqlite import SqliteAdviceQueue, SqliteJournal
from voucher_core import State, Transaction
from voucher_core.reconciliation import Finding, report

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "crash_worker.py"
VOUCHERS = "/suv/v1/vouchers"
PROVIDERS = (
    Provider("dualco", PROFILES["DUAL1"], frozenset({"DUAL1"})),
    Provider("singleco", PROFILES["SINGLE1"], frozenset({"SINGLE1"})),
    Provider("netcare", PROFILES["NETCARE1"], frozenset({"NETCARE1"})),
    Provider("stellr", PROFILES["STELLR1"], frozenset({"STELLR1"})),
)
KILLED = -signal.SIGKILL
WAIT = 60.0  # seconds any one worker may take before the test gives up on it
MIN_SALES = 8  # sales each selling worker is given at least


# -- what the server received ---------------------------------------------------------------


@dataclass
class Received:
    """One request to an SUV voucher path, as it arrived, and the status it was answered."""

    method: str
    path: str
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False  # the whole body arrived (a worker may die halfway through)
    status: int | None = None  # None: the connection was dropped without an answer

    @property
    def operation(self) -> Operation:
        rest = self.path.removeprefix(VOUCHERS).strip("/")
        if not rest:
            return Operation.PROVISION if self.method == "POST" else Operation.LOOKUP
        if rest == "confirmations":
            return Operation.CONFIRM
        if rest == "reversals":
            return Operation.REVERSE
        return Operation.RETRY

    @property
    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(bytes(self.body))
        return loaded

    @property
    def message_id(self) -> str:
        return str(self.document["id"])

    @property
    def request_id(self) -> str:
        """The provision this is about."""
        if self.operation is Operation.RETRY:
            return self.path.removeprefix(VOUCHERS).strip("/").split("/")[0]
        if self.operation in (Operation.CONFIRM, Operation.REVERSE):
            return str(self.document["requestId"])
        return self.message_id

    @property
    def final(self) -> bool:
        """The switch took it and said so (a 5xx or a dropped connection says nothing)."""
        return self.status is not None and self.status < 500


class Recorder:
    """ASGI middleware in front of the simulator: keeps every SUV request and its answer.

    It runs on the server's event loop, which owns the switch, so it may also script a fault
    on the switch for one request the moment that request's body has arrived.
    """

    def __init__(self, app: ASGIApp, switch: SwitchSimulator) -> None:
        self.app = app
        self.switch = switch
        self.received: list[Received] = []
        self._hold_next_provision: threading.Event | None = None

    def hold_next_provision(self) -> threading.Event:
        """Delay the answer to the next provision well past the worker's timeout; the event
        is set once the switch holds that provision."""
        event = threading.Event()
        self._hold_next_provision = event
        return event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(VOUCHERS):
            await self.app(scope, receive, send)
            return
        record = Received(scope["method"], scope["path"])
        self.received.append(record)

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                record.body += message.get("body", b"")
                if not message.get("more_body", False):
                    record.complete = True
                    self._arrived(record)
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
            await send(message)

        await self.app(scope, recording_receive, recording_send)

    def _arrived(self, record: Received) -> None:
        held = self._hold_next_provision
        if held is None or record.operation is not Operation.PROVISION:
            return
        self._hold_next_provision = None
        fault = Fault(FaultKind.DELAY, delay=30.0)
        self.switch.faults.script(Operation.PROVISION, fault, provision_id=record.message_id)
        held.set()


# -- where the workers keep their journal and queue ------------------------------------------


def drain_alone(store: list[str], url: str) -> None:
    """``voucher queue drain`` on ``store`` (its options), as an operator runs it."""
    command = [sys.executable, "-m", "voucher_adapters.cli", "queue", "drain", *store]
    command += ["--url", url, "--username", DEMO_CLIENT_ID, "--password", "x", "--timeout", "2"]
    done = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stdout + done.stderr


@dataclass(frozen=True)
class SqliteStore:
    """One SQLite file holding both."""

    path: Path

    def argv(self) -> list[str]:
        return ["--db", str(self.path)]

    def env(self) -> dict[str, str]:
        return {}

    def journal(self) -> SqliteJournal:
        return SqliteJournal(self.path)

    def queue(self) -> SqliteAdviceQueue:
        return SqliteAdviceQueue(self.path)

    def drain_alone(self, url: str) -> None:
        """``voucher queue drain`` on the file, as an operator runs it: no recovery."""
        drain_alone(["--db", str(self.path)], url)


@dataclass(frozen=True)
class PostgresStore:
    """One PostgreSQL schema holding both."""

    dsn: str
    schema: str

    def argv(self) -> list[str]:
        return ["--schema", self.schema]

    def env(self) -> dict[str, str]:
        return {"VOUCHER_TEST_PG_DSN": self.dsn}

    def journal(self) -> PostgresJournal:
        return PostgresJournal(self.dsn, schema=self.schema, pool_size=1)

    def queue(self) -> PostgresAdviceQueue:
        return PostgresAdviceQueue(self.dsn, schema=self.schema, pool_size=1)

    def drain_alone(self, url: str) -> None:
        """``voucher queue drain`` on the schema, as an operator runs it: no recovery."""
        drain_alone(["--dsn", self.dsn, "--schema", self.schema], url)


Store = SqliteStore | PostgresStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each test runs on both; the PostgreSQL schema is new, migrated, and dropped after."""
    if request.param == "sqlite":
        yield SqliteStore(tmp_path / "pos.db")
        return
    dsn = require_postgres()
    with fresh_schema() as schema:
        migrate(dsn, schema=schema)
        yield PostgresStore(dsn, schema)


# -- the worker processes -------------------------------------------------------------------


class Worker:
    """One ``crash_worker.py`` process; its stdout lines are read as they come."""

    def __init__(
        self,
        argv: list[str],
        log: Path,
        on_line: Callable[[list[str]], None],
        *,
        env: dict[str, str],
    ) -> None:
        self.log = log
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._on_line = on_line
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER), *argv],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
                env={**os.environ, **env},
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.strip())
                self._on_line(line.split())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, word: str, nth: int = 1, timeout: float = WAIT) -> bool:
        """Wait for the ``nth`` line starting with ``word``; False if the worker ended first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(1 for line in self.lines if line.split()[:1] == [word]) < nth:
                if not self._reader.is_alive():
                    return False
                if not self._changed.wait(deadline - time.monotonic()):
                    raise AssertionError(f"no {word!r} line in {timeout} s\n{self.story()}")
        return True

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)

    def end(self, timeout: float = WAIT) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()
            raise AssertionError(f"the worker did not end in {timeout} s\n{self.story()}") from None
        self._reader.join(5)
        return code

    def story(self) -> str:
        return "stdout:\n" + "\n".join(self.lines[-30:]) + "\nstderr:\n" + self.log.read_text()


@dataclass
class Tally:
    """What the workers reported: every sale they started, every advice queue stored."""

    started: dict[str, int] = field(default_factory=dict)  # sale id -> number
    queued: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    kills: list[str] = field(default_factory=list)
    # Sale id -> the states recoveries resumed it in, in order; and what each host was told.
    resumed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    sold: dict[str, str] = field(default_factory=dict)

    def heard(self, words: list[str]) -> None:
        if words[:1] == ["sell"]:
            self.started[words[2]] = int(words[1])
        elif words[:1] == ["queued"]:
            self.queued[words[1]].add(words[3])
        elif words[:1] == ["resuming"]:
            self.resumed[words[1]].append(words[2])
        elif words[:1] == ["sold"]:
            self.sold[words[2]] = words[3]

    @property
    def next_sale(self) -> int:
        return max(self.started.values(), default=-1) + 1


class Shop:
    """A simulator over HTTP, a store, and the workers that sell through them."""

    def __init__(
        self,
        tmp_path: Path,
        store: Store,
        seed: int,
        sales: int,
        *,
        asyncio: bool = False,
        together: bool = False,
    ) -> None:
        self.tmp_path = tmp_path
        self.store = store
        self.seed = seed
        self.sales = sales
        self.asyncio = asyncio
        self.together = together  # the workers commit a state change with its advice
        self.switch = SwitchSimulator(PROVIDERS, seed=seed)
        self.recorder = Recorder(create_app(self.switch, pump_interval=0.05), self.switch)
        self.server = RunningServer(self.recorder)
        self.tally = Tally()
        self.random = random.Random(seed)
        self.url = ""
        self.workers: list[Worker] = []

    @property
    def left(self) -> int:
        return self.sales - self.tally.next_sale

    def start(
        self,
        mode: str,
        *,
        die: str | None = None,
        count: int | None = None,
        start: int | None = None,
    ) -> Worker:
        if self.asyncio:
            mode = f"async-{mode}"
        argv = [*self.store.argv(), self.url, mode, "--seed", str(self.seed)]
        argv += ["--concurrency", "6"]
        if self.together:
            argv.append("--together")
        # Never fewer than a few sales, so that a kill point is reached before the work ends.
        count = max(self.left, MIN_SALES) if count is None else count
        start = self.tally.next_sale if start is None else start
        argv += ["--start", str(start), "--count", str(count)]
        if die is not None:
            argv += ["--die", die]
        log = self.tmp_path / f"worker-{len(self.workers) + 1}-{mode}.log"
        worker = Worker(argv, log, self.tally.heard, env=self.store.env())
        self.workers.append(worker)
        return worker

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.url}/testServerAdmin/{path}"
        reply = httpx.post(url, json=body, timeout=10.0)
        assert reply.status_code in (200, 201), reply.text
        return reply.json()

    # -- ways to die ------------------------------------------------------------------------

    def killed_while_the_switch_holds_a_provision(self, after_sales: int) -> None:
        worker = self.start("sell")
        worker.wait_for("sold", after_sales)
        held = self.recorder.hold_next_provision()
        assert held.wait(WAIT), worker.story()
        time.sleep(0.02)  # well inside the 0.5 s the worker waits for an answer
        worker.kill()
        self._expect_killed(worker, "holding a provision")

    def kills_itself(
        self, mode: str, point: str, *, start: int | None = None, count: int | None = None
    ) -> None:
        worker = self.start(mode, die=point, start=start, count=count)
        self._expect_killed(worker, point)
        assert f"dying {point.partition(':')[0]}" in worker.lines, worker.story()

    def killed_at_random(self, mode: str, within: float) -> None:
        worker = self.start(mode)
        if worker.wait_for("ready"):
            time.sleep(self.random.uniform(0.05, within))
        worker.kill()
        code = worker.end()
        assert code in (KILLED, 0), worker.story()
        self.tally.kills.append(f"{mode} at random" if code == KILLED else f"{mode} finished")

    def _expect_killed(self, worker: Worker, what: str) -> None:
        code = worker.end()
        assert code == KILLED, f"expected a kill {what}, got exit status {code}\n{worker.story()}"
        self.tally.kills.append(what)

    def recovers(self) -> None:
        worker = self.start("recover", count=0)
        code = worker.end()
        assert code == 0, worker.story()
        assert "drained" in worker.lines, worker.story()

    def sells_the_rest(self) -> None:
        if self.left > 0:
            worker = self.start("sell")
            assert worker.end() == 0, worker.story()

    def heals_and_settles(self) -> None:
        """No more faults; a last worker delivers everything, and the switch its own queue."""
        self.admin("heal")
        self.recovers()
        for _ in range(100):
            if self.admin("pump")["pending"] == 0:
                return
        raise AssertionError("the switch could not forward its queued advices")

    def close(self) -> None:
        """Stop the server: from then on the switch is read with nothing else touching it."""
        for worker in self.workers:  # only left running by a failed step
            worker.kill()
        self.server.__exit__(None, None, None)


@pytest.fixture
def open_shop(tmp_path: Path, store: Store) -> Iterator[Callable[..., Shop]]:
    shops: list[Shop] = []

    def opened(seed: int, sales: int, *, asyncio: bool = False, together: bool = False) -> Shop:
        shop = Shop(tmp_path, store, seed, sales, asyncio=asyncio, together=together)
        shop.server.__enter__()
        shop.url = shop.server.url
        shops.append(shop)
        return shop

    yield opened
    for shop in shops:
        shop.close()


# -- the invariants ---------------------------------------------------------------------------


@dataclass
class Evidence:
    """The three records, read once the server has stopped and no worker runs."""

    sales: dict[str, Transaction]  # the journal, in the store
    received: list[Received]  # what the server received, in order
    about: dict[str, list[Received]]  # the same, by the provision each is about
    ledger: dict[str, list[str]]  # the providers' books, by provision
    findings: list[Finding]  # what the reconciliation report lists for a person

    @classmethod
    def of(cls, shop: Shop) -> Evidence:
        with shop.store.journal() as journal:
            entries = list(journal.entries())
        sales = {entry.transaction.id: entry.transaction for entry in entries}
        # A request whose sender died before its body was through never reached the switch.
        received = [
            r for r in shop.recorder.received if r.complete and r.operation is not Operation.LOOKUP
        ]
        about: dict[str, list[Received]] = defaultdict(list)
        for request in received:
            about[request.request_id].append(request)
        ledger: dict[str, list[str]] = defaultdict(list)
        for entry in shop.switch.ledger():
            ledger[entry.provision_id].append(entry.state)
        return cls(sales, received, about, ledger, report(entries))


def every_sale_ended_and_the_money_agrees(shop: Shop, evidence: Evidence) -> None:
    """Invariants 1 and 2."""
    stuck = {tid: tx.state for tid, tx in evidence.sales.items() if not tx.terminal}
    assert not stuck, f"sales left unfinished: {stuck}"
    for tid, tx in evidence.sales.items():
        if tx.reconciliation is not None and tx.advice is not None:
            continue  # an advice met a final refusal: listed for a person to settle
        # (A voucher flagged because nobody was given it is issued all the same: checked.)
        if tx.state is State.DECLINED and tx.profile.advices_supported:
            assert set(evidence.ledger[tid]) <= {"reversed"}, (tid, evidence.ledger[tid])
        active = shop.switch.voucher_active(tid)
        assert active == (tx.state is State.DONE), f"{tid} ended {tx.state}, active={active}"


def the_messages_of_each_sale_are_right(evidence: Evidence) -> None:
    """Invariants 3, 4 and 6, and nothing sent for a sale before the journal held it."""
    assert set(evidence.about) <= set(evidence.sales), "a sale reached the switch unjournaled"
    advices = (Operation.CONFIRM, Operation.REVERSE)
    for tid, requests in evidence.about.items():
        tx = evidence.sales[tid]
        operations = [r.operation for r in requests]
        # 3: never both confirmed and reversed; indeed one advice, however often repeated.
        assert not set(advices) <= set(operations), (tid, operations)
        sent = {r.message_id for r in requests if r.operation in advices}
        assert sent <= ({tx.advice.id} if tx.advice is not None else set()), (tid, sent)
        # 4: one provision at most; retries carry its id and body, MAX_RETRIES at most.
        provisions = [r for r in requests if r.operation is Operation.PROVISION]
        retries = [r for r in requests if r.operation is Operation.RETRY]
        assert len(provisions) <= 1, tid
        assert len(retries) <= MAX_RETRIES, (tid, operations)
        assert len({bytes(r.body) for r in provisions + retries}) <= 1, f"{tid}: body changed"
        assert all(r.message_id == tid for r in retries), tid
        if not tx.profile.retries_supported:
            assert not retries, f"{tid}: retried at a provider that takes no retries"
        # 6: a hard decline on the first attempt is the last word.
        if tx.declined is not None and tx.retries == 0:
            assert operations == [Operation.PROVISION], (tid, operations)
            assert tx.state is State.DECLINED


def every_queued_advice_was_delivered_byte_for_byte(shop: Shop, evidence: Evidence) -> None:
    """Invariant 5: every advice a worker reported queued reached the switch with the bytes
    it was stored with, and got a final answer; every repeat was the same bytes."""
    bodies: dict[str, set[bytes]] = defaultdict(set)
    delivered: dict[str, set[str]] = defaultdict(set)
    for request in evidence.received:
        if request.operation in (Operation.CONFIRM, Operation.REVERSE):
            bodies[request.message_id].add(bytes(request.body))
            if request.final:
                delivered[request.message_id].add(hashlib.sha256(request.body).hexdigest())
    for advice_id, variants in bodies.items():
        assert len(variants) == 1, f"advice {advice_id} was repeated with another body"
    for advice_id, digests in shop.tally.queued.items():
        assert digests <= delivered[advice_id], f"advice {advice_id} was never delivered"


def the_queue_is_empty(shop: Shop) -> None:
    with shop.store.queue() as queue:
        stats = queue.stats()
    assert stats["queued"] == stats["leased"] == stats["parked"] == 0, stats


def no_sale_ends_approved_behind_its_hosts_back(shop: Shop, evidence: Evidence) -> None:
    """Invariant 8: a sale that recovery resumed in flight was never handed to a customer (its
    till was killed before sell() returned): in dual messaging it ends reversed and was never
    confirmed, even with tenders given up front; in single messaging a voucher it got ends
    flagged with the voucher's reference (never its code). A sale resumed waiting for its host
    is reversed by the decision limit. A host told "approved" keeps its voucher. Every flagged
    sale is in the reconciliation report, which is what excuses it from the money check."""
    reported = {finding.transaction_id for finding in evidence.findings}
    for tid, tx in evidence.sales.items():
        if tx.reconciliation is not None:
            assert tid in reported, f"{tid} is flagged but not reported: {tx.reconciliation}"
        if shop.tally.sold.get(tid) in ("DONE", "CONFIRMING"):
            assert tx.state is State.DONE, f"{tid}: the host was told approved, it ended {tx.state}"
        resumed = shop.tally.resumed.get(tid)
        if not resumed:
            continue
        operations = [r.operation for r in evidence.about.get(tid, [])]
        if resumed[0] == "PROVISIONED":
            assert tx.state is State.DECLINED and tx.host_timed_out, (tid, tx.state)
        if resumed[0] not in ("PROVISIONING", "RETRYING"):
            continue
        if tx.profile.dual:
            assert tx.state is State.DECLINED, f"{tid} resumed in flight, ended {tx.state}"
            assert Operation.CONFIRM not in operations, (tid, operations)
        elif tx.state is State.DONE:
            flag, response = tx.reconciliation, tx.response
            assert flag is not None and flag.startswith("unattended: "), (tid, flag)
            assert response is not None and response.voucher.code not in flag
            assert f"serial number {response.voucher.serial_number}" in flag, flag
        assert tx.unattended, tid


def check_every_invariant(shop: Shop) -> Evidence:
    evidence = Evidence.of(shop)
    assert set(evidence.sales) <= set(shop.tally.started)
    every_sale_ended_and_the_money_agrees(shop, evidence)
    the_messages_of_each_sale_are_right(evidence)
    every_queued_advice_was_delivered_byte_for_byte(shop, evidence)
    the_queue_is_empty(shop)
    no_sale_ends_approved_behind_its_hosts_back(shop, evidence)
    return evidence


# -- the flows ----------------------------------------------------------------------------------


def random_faults(shop: Shop, rate: float, provider_down_rate: float) -> None:
    shop.admin(
        "faults/random",
        {
            "seed": shop.seed,
            "rate": rate,
            "kinds": [kind.value for kind in FaultKind],
            "providerDownRate": provider_down_rate,
        },
    )


def advices_fail_first(shop: Shop) -> None:
    """The next few advices meet a 503, so forward() has repeats to send."""
    for operation in ("confirmVoucher", "reverseVoucher"):
        shop.admin("faults", {"operation": operation, "kind": "unavailable", "times": 2})


def test_a_till_killed_at_each_named_point_loses_nothing(open_shop: Callable[..., Shop]) -> None:
    """Killed while the switch holds its provision, between a provision's reply and the
    journal, between storing an advice and sending it, in forward() between an advice's reply
    and the journal and between leasing an advice and sending it, and at random; one
    recovering worker is killed too."""
    shop = open_shop(seed=101, sales=60)
    random_faults(shop, rate=0.2, provider_down_rate=0.2)

    shop.killed_while_the_switch_holds_a_provision(after_sales=3)
    shop.recovers()
    shop.kills_itself("sell", "provision-reply:3")
    shop.recovers()
    shop.kills_itself("sell", "enqueued:2")
    shop.killed_at_random("recover", within=0.3)
    shop.recovers()
    advices_fail_first(shop)
    shop.kills_itself("sell", "forward-reply:1")
    shop.recovers()
    advices_fail_first(shop)
    shop.kills_itself("sell", "forward-take:1")
    shop.recovers()
    shop.killed_at_random("sell", within=1.5)
    shop.recovers()
    shop.sells_the_rest()
    shop.heals_and_settles()
    shop.close()

    assert len(check_every_invariant(shop).sales) >= 50
    assert len([k for k in shop.tally.kills if "finished" not in k]) >= 6, shop.tally.kills


def test_a_till_killed_at_random_points_loses_nothing(open_shop: Callable[..., Shop]) -> None:
    """Five kills drawn from a seed, on a network with more faults: at a random moment or at
    a random arrival at a named point; recovering workers are killed at random too."""
    shop = open_shop(seed=202, sales=45)
    random_faults(shop, rate=0.35, provider_down_rate=0.3)
    choose = random.Random(202)
    points = ["provision-reply", "enqueued", "forward-reply", "forward-take", "journaled"]
    for _ in range(5):
        if choose.random() < 0.4:
            shop.killed_at_random("sell", within=0.8)
        else:
            point = choose.choice(points)
            at = choose.randint(1, 4)
            if point.startswith("forward"):
                advices_fail_first(shop)
            if point != "journaled":  # reached fewer times a sale than a journal commit
                at = min(at, 2)
            shop.kills_itself("sell", f"{point}:{at}")
        if choose.random() < 0.4:
            shop.killed_at_random("recover", within=0.4)
        shop.recovers()
    shop.sells_the_rest()
    shop.heals_and_settles()
    shop.close()

    assert len(check_every_invariant(shop).sales) >= 35


def test_an_asyncio_till_with_sales_in_flight_killed_loses_nothing(
    open_shop: Callable[..., Shop],
) -> None:
    """The asyncio driver, six sales in flight at a time with a forwarder alongside: killed at
    random, after a provision reply, after an advice is stored, after a journal commit; a
    recovering asyncio worker is killed too."""
    shop = open_shop(seed=303, sales=42, asyncio=True)
    random_faults(shop, rate=0.2, provider_down_rate=0.2)

    shop.killed_at_random("sell", within=0.6)
    shop.recovers()
    shop.kills_itself("sell", "provision-reply:5")
    shop.killed_at_random("recover", within=0.3)
    shop.recovers()
    shop.kills_itself("sell", "enqueued:3")
    shop.recovers()
    shop.kills_itself("sell", "journaled:12")
    shop.recovers()
    shop.sells_the_rest()
    shop.heals_and_settles()
    shop.close()

    assert len(check_every_invariant(shop).sales) >= 30


def first_sale(seed: int, product: str, *, up_front: bool) -> int:
    """The number of the first sale of run ``seed`` that sells ``product`` so."""
    return next(
        number
        for number in range(1000)
        if Sale(seed, number).product == product and Sale(seed, number).up_front == up_front
    )


@pytest.mark.parametrize("asyncio", [False, True], ids=["sync", "asyncio"])
def test_sales_a_killed_till_left_in_flight_end_without_their_host(
    open_shop: Callable[..., Shop], asyncio: bool
) -> None:
    """Killed with the switch's approval on its way back, before the journal heard of it: the
    host never told its customer anything. Recovery's retry gets the voucher back; a single-
    messaging one ends DONE flagged with its reference, and reported; a dual-messaging one
    paid up front is reversed, never confirmed. The providers' books agree."""
    seed = 404
    shop = open_shop(seed=seed, sales=0, asyncio=asyncio)
    single = first_sale(seed, "SINGLE1", up_front=False)
    dual = first_sale(seed, "DUAL1", up_front=True)
    for number in (single, dual):
        shop.kills_itself("sell", "provision-reply:1", start=number, count=1)
        shop.recovers()
    shop.heals_and_settles()
    shop.close()

    evidence = check_every_invariant(shop)
    ids = {number: tid for tid, number in shop.tally.started.items()}
    single_tx, dual_tx = evidence.sales[ids[single]], evidence.sales[ids[dual]]
    assert shop.tally.resumed[single_tx.id] == ["PROVISIONING"]
    assert shop.tally.resumed[dual_tx.id] == ["PROVISIONING"]
    assert single_tx.state is State.DONE and single_tx.reconciliation is not None
    assert shop.switch.voucher_active(single_tx.id)
    assert single_tx.id in {finding.transaction_id for finding in evidence.findings}
    assert dual_tx.state is State.DECLINED and dual_tx.reconciliation is None
    assert evidence.ledger[dual_tx.id] == ["reversed"]
    assert [r.operation for r in evidence.about[dual_tx.id]] == [
        Operation.PROVISION,
        Operation.RETRY,
        Operation.REVERSE,
    ]


def confirmations_received(shop: Shop, sale_id: str) -> list[Received]:
    return [
        r
        for r in shop.recorder.received
        if r.operation is Operation.CONFIRM and r.request_id == sale_id and r.final
    ]


def state_in_the_journal(shop: Shop, sale_id: str) -> State:
    with shop.store.journal() as journal:
        entry = journal.get(sale_id)
    assert entry is not None, sale_id
    return entry.transaction.state


@pytest.mark.parametrize("asyncio", [False, True], ids=["sync", "asyncio"])
def test_a_till_killed_right_after_a_sale_owed_its_confirmation_leaves_it_in_the_queue(
    open_shop: Callable[..., Shop], asyncio: bool
) -> None:
    """With the journal and the queue written in one commit (as the composition root wires
    them on one database), a till killed the moment a sale paid up front moved to CONFIRMING,
    before its confirmation went out, left the confirmation in the queue: ``voucher queue
    drain`` alone, with no recovery, delivers it and the sale ends DONE. Written one after the
    other (stores in separate databases), a till killed between the two leaves the queue
    empty and the sale CONFIRMING: drain finds nothing, and recovery queues and sends it."""
    seed = 505
    first, second = [
        number
        for number in range(1000)
        if Sale(seed, number).product == "DUAL1" and Sale(seed, number).up_front
    ][:2]
    shop = open_shop(seed=seed, sales=0, asyncio=asyncio, together=True)
    shop.kills_itself("sell", "enqueued:1", start=first, count=1)
    together = Sale(seed, first).id
    assert state_in_the_journal(shop, together) is State.CONFIRMING
    assert not confirmations_received(shop, together)
    shop.store.drain_alone(shop.url)
    assert state_in_the_journal(shop, together) is State.DONE
    assert len(confirmations_received(shop, together)) == 1

    shop.together = False
    shop.kills_itself("sell", "journaled:2", start=second, count=1)
    apart = Sale(seed, second).id
    assert state_in_the_journal(shop, apart) is State.CONFIRMING
    shop.store.drain_alone(shop.url)
    assert state_in_the_journal(shop, apart) is State.CONFIRMING
    assert not confirmations_received(shop, apart)
    the_queue_is_empty(shop)
    shop.recovers()
    assert state_in_the_journal(shop, apart) is State.DONE
    assert len(confirmations_received(shop, apart)) == 1

    shop.heals_and_settles()
    shop.close()
    check_every_invariant(shop)
