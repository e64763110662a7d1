"""`voucher provision`: real sales against any server that speaks the SUV protocol.

One sale prints its timeline (or a JSON summary). With ``count`` above one it becomes a
small load and smoke tool: ``concurrency`` sales in flight through the asyncio driver, a
progress line every few seconds (done, rate, errors; redrawn in place on a terminal), then a
summary: throughput, latency (min, mean, p50, p95, p99, max), exchanges per operation and per
status, retries, sales flagged for reconciliation.

Without ``--db``/``--dsn`` the advice queue is in memory: an advice still undeliverable when
the command gives up is printed in full (as JSON) so an operator can deliver it by other
means, and the command exits non-zero. With them, the sales are journalled and their advices
stay queued in that store for ``voucher queue drain`` or ``voucher recover``, and the
journal's owner is claimed for as long as the command runs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from voucher_adapters.bootstrap import DEFAULT_SCHEMA, Settings, build, build_async
from voucher_adapters.cli.switch_access import SwitchAccess
from voucher_adapters.cli.timeline import Timeline, TimelineEntry
from voucher_adapters.demo import DEMO_CLIENT_ID, DEMO_PASSWORD, cash, demo_request
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.http import BasicAuth, OAuth2ClientCredentials
from voucher_core import (
    DriverSettings,
    ProviderProfile,
    RetryPolicy,
    State,
    Transaction,
)
from voucher_core.messages import ProvisionRequest
from voucher_core.policy import Messaging
from voucher_core.ports import Operation
from voucher_core.transaction import random_id
from voucher_core.wire import to_json

__all__ = [
    "DEMO_PASSWORD",
    "LoadSummary",
    "Progress",
    "SaleOptions",
    "SaleResult",
    "run_load",
    "run_sale",
]


@attrs.frozen(kw_only=True)
class SaleOptions:
    url: str
    product: str
    amount: int
    messaging: Messaging = Messaging.DUAL
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    terminal_id: str = "TILL0001"
    timeout: float = 60.0
    drain_timeout: float = 30.0
    db: str | None = None
    dsn: str | None = None
    schema: str = DEFAULT_SCHEMA  # the PostgreSQL schema of ``dsn``
    access: SwitchAccess = attrs.field(factory=SwitchAccess)  # TLS; OAuth2 instead of Basic

    @property
    def client_id(self) -> str:
        if self.access.oauth2 is not None:
            return self.access.oauth2.client_id
        return self.username if self.username is not None else DEMO_CLIENT_ID

    def auth(self) -> BasicAuth | OAuth2ClientCredentials:
        """OAuth2 when the access says so; else the given credentials, or the demo ones (user
        ``voucher-demo``, password ``demo``)."""
        oauth2 = self.access.oauth2_auth()
        if isinstance(oauth2, OAuth2ClientCredentials):
            return oauth2
        if self.username is None:
            return BasicAuth(DEMO_CLIENT_ID, DEMO_PASSWORD)
        return BasicAuth(self.username, self.password or "")

    def profile(self) -> ProviderProfile:
        return ProviderProfile(messaging=self.messaging)

    def settings(self, **more: Any) -> Settings:
        """The application these options describe; ``more`` adds to the driver's settings
        (``observer``) or the application's (``exchange_observer``, ``max_connections``).
        With a ``db`` or ``dsn`` the journal's owner is claimed, as for any driving process."""
        exchange_observer = more.pop("exchange_observer", None)
        max_connections = more.pop("max_connections", 100)
        return Settings(
            url=self.url,
            auth=self.auth(),
            verify=self.access.verify,
            cert=self.access.cert,
            exchange_observer=exchange_observer,
            max_connections=max_connections,
            db=self.db,
            dsn=self.dsn,
            schema=self.schema,
            driver=DriverSettings(
                policy=RetryPolicy(timeout=self.timeout), profile=self.profile(), **more
            ),
        )

    def request(self, now: datetime) -> ProvisionRequest:
        return demo_request(
            id=random_id(),
            time=now,
            product_id=self.product,
            amount=self.amount,
            client_id=self.client_id,
            terminal_id=self.terminal_id,
        )


@attrs.frozen
class SaleResult:
    transaction: Transaction
    operations: list[str]
    undelivered: list[bytes]

    def as_json(self) -> dict[str, object]:
        tx = self.transaction
        return {
            "id": tx.id,
            "messaging": tx.profile.messaging.value,
            "final_state": tx.state.value,
            "outcome": tx.outcome.value if tx.outcome is not None else None,
            "operations": self.operations,
            "reconciliation": tx.reconciliation is not None,
        }


def run_sale(
    options: SaleOptions, on_entry: Callable[[TimelineEntry], None] | None = None
) -> SaleResult:
    """Sell one voucher; in dual messaging, confirm it at once with a cash tender."""
    timeline = Timeline(on_entry)
    settings = options.settings(observer=timeline.on_trace, exchange_observer=timeline.on_exchange)
    with build(settings) as app:
        driver = app.driver
        request = options.request(app.clock.now())
        timeline.note("POS", f"sells {options.product} for {options.amount} minor units")
        tx = driver.sell(request)
        if tx.state is State.PROVISIONED:
            timeline.note("host", "customer paid: confirm with one cash tender")
            driver.confirm(tx, cash(options.amount))
        driver.drain(timeout=options.drain_timeout)
        left = [to_json(q.advice) for q in app.queue.pending()]
    return SaleResult(tx, timeline.operations, left)


@attrs.frozen
class LoadSummary:
    """What a load run did: each sale's final state and latency (until the customer's outcome
    was known), and every exchange it made, by operation and by status."""

    count: int
    final_states: dict[str, int]
    reconciliation: int
    undelivered: list[bytes]
    seconds: float
    latencies: list[float]
    operations: dict[str, int] = attrs.field(factory=dict)
    statuses: dict[str, int] = attrs.field(factory=dict)
    failed: int = 0
    errors: int = 0

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def retries(self) -> int:
        return self.operations.get(Operation.RETRY.value, 0)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        if len(self.latencies) == 1:
            return self.latencies[0]
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return cuts[min(max(int(q) - 1, 0), 98)]

    def as_json(self) -> dict[str, object]:
        latencies = self.latencies

        def ms(seconds: float) -> float:
            return round(seconds * 1000, 1)

        return {
            "count": self.count,
            "final_states": self.final_states,
            "failed": self.failed,
            "reconciliation": self.reconciliation,
            "undelivered": len(self.undelivered),
            "seconds": round(self.seconds, 3),
            "sales_per_second": round(self.throughput, 1),
            "latency_ms": {
                "min": ms(min(latencies, default=0.0)),
                "mean": ms(statistics.fmean(latencies) if latencies else 0.0),
                "p50": ms(self.percentile(50)),
                "p90": ms(self.percentile(90)),
                "p95": ms(self.percentile(95)),
                "p99": ms(self.percentile(99)),
                "max": ms(max(latencies, default=0.0)),
            },
            "operations": self.operations,
            "statuses": self.statuses,
            "retries": self.retries,
            "errors": self.errors,
        }


@attrs.frozen
class Progress:
    """Where a load run stands, as a progress line reads it."""

    done: int
    total: int
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


NO_ANSWER = "no answer"


class _Tally:
    """Every exchange of a load run, counted by operation and status; an exchange without a
    final answer (none at all, or a 5xx) counts as an error."""

    def __init__(self) -> None:
        self.operations: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.errors = 0

    def on_exchange(self, exchange: Exchange) -> None:
        self.operations[exchange.operation.value] += 1
        status = exchange.status
        self.statuses[NO_ANSWER if status is None else str(status)] += 1
        if status is None or status >= 500:
            self.errors += 1


async def _load(
    options: SaleOptions,
    count: int,
    concurrency: int,
    progress: Callable[[Progress], None] | None,
    every: float,
) -> LoadSummary:
    latencies: list[float] = []
    sales: list[Transaction] = []
    failures: list[BaseException] = []
    tally = _Tally()
    started = time.perf_counter()

    def now() -> Progress:
        done = len(sales) + len(failures)
        errors = tally.errors + len(failures)
        return Progress(done, count, time.perf_counter() - started, errors)

    async def report() -> None:
        assert progress is not None
        while True:
            await asyncio.sleep(every)
            progress(now())

    settings = options.settings(max_connections=concurrency, exchange_observer=tally.on_exchange)
    async with await build_async(settings) as app:
        driver, clock = app.driver, app.clock
        pending = iter(range(count))

        async def worker() -> None:
            for _ in pending:
                begun = time.perf_counter()
                try:
                    tx = await driver.sell(options.request(clock.now()))
                    if tx.state is State.PROVISIONED:
                        await driver.confirm(tx, cash(options.amount))
                except Exception as error:  # counted and shown; the run goes on
                    failures.append(error)
                    continue
                latencies.append(time.perf_counter() - begun)
                sales.append(tx)

        reporter = asyncio.create_task(report()) if progress is not None else None
        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            await driver.drain(timeout=options.drain_timeout)
        finally:
            if reporter is not None:
                reporter.cancel()
        left = [to_json(q.advice) for q in await app.queue.pending()]
    seconds = time.perf_counter() - started
    if progress is not None:
        progress(now())
    if failures and not sales:
        raise failures[0]  # nothing worked: say why, as one sale would
    states = Counter(tx.state.value for tx in sales)
    return LoadSummary(
        count=count,
        final_states={state.value: states.get(state.value, 0) for state in State},
        reconciliation=sum(tx.reconciliation is not None for tx in sales),
        undelivered=left,
        seconds=seconds,
        latencies=latencies,
        operations=dict(tally.operations),
        statuses=dict(sorted(tally.statuses.items())),
        failed=len(failures),
        errors=tally.errors + len(failures),
    )


def run_load(
    options: SaleOptions,
    count: int,
    concurrency: int,
    progress: Callable[[Progress], None] | None = None,
    *,
    every: float = 5.0,
) -> LoadSummary:
    """Sell ``count`` vouchers with ``concurrency`` in flight; ``progress`` is told where the
    run stands every ``every`` seconds and once at the end."""
    return asyncio.run(_load(options, count, concurrency, progress, every))
