"""A sale you can watch: spans, metrics and log lines, read back from OpenTelemetry's SDK.

The SDK's in-memory exporters stand in for a collector; the switch is the simulator, so the
retries, parked advices and flags below are the simulator's scripted faults.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from voucher_adapters.bootstrap import Application, Settings, build
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, SeededIds, cash, demo_request
from voucher_adapters.simulator import Fault, FaultKind, Operation, SwitchSimulator
from voucher_adapters.telemetry import Telemetry
from voucher_core import DriverSettings, ProviderProfile, State
from voucher_core.drivers import Trace
from voucher_core.policy import Messaging

START = datetime(2026, 1, 1, tzinfo=UTC)


def _value(point: Any) -> Any:
    """A sum's value, or how many measurements a histogram holds."""
    return point.count if hasattr(point, "count") else point.value


class Watched:
    """A till built with telemetry on in-memory exporters."""

    def __init__(self, *, observer: Any = None) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[self.reader])
        self.switch = SwitchSimulator()
        self.ids = SeededIds(7)
        self.app: Application = build(
            Settings(
                simulator=self.switch,
                username=DEMO_CLIENT_ID,
                clock=SimulatedClock(START),
                driver=DriverSettings(
                    profile=ProviderProfile(messaging=Messaging.DUAL),
                    new_id=SeededIds(1),
                    observer=observer,
                ),
                telemetry=Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider),
            )
        )

    def sell(self) -> Any:
        return self.app.driver.sell(demo_request(id=self.ids(), time=START), tenders=cash(1000))

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Each metric's points: (attributes, value), where a histogram's value is its count."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = [
                        (dict(point.attributes or {}), _value(point))
                        for point in metric.data.data_points
                    ]
        return found


@pytest.fixture
def watched() -> Iterator[Watched]:
    till = Watched()
    yield till
    till.app.close()


def test_each_exchange_is_a_span_with_the_sale_status_outcome_and_latency(
    watched: Watched,
) -> None:
    watched.switch.faults.script(Operation.PROVISION, Fault(FaultKind.DELAY, delay=2.5))
    tx = watched.sell()
    assert tx.state is State.DONE
    spans = watched.finished()
    assert [span.name for span in spans] == ["provisionVoucher", "confirmVoucher"]
    provision, confirm = spans
    assert provision.attributes is not None and confirm.attributes is not None
    assert provision.attributes["voucher.sale_id"] == tx.id
    assert provision.attributes["voucher.operation"] == "provisionVoucher"
    assert provision.attributes["http.response.status_code"] == 201
    assert provision.attributes["voucher.outcome"] == "approved"
    assert provision.attributes["voucher.retries"] == 0
    assert confirm.attributes["voucher.sale_id"] == tx.id
    assert confirm.attributes["voucher.outcome"] == "acknowledged"
    # The span lasts as long as the exchange: the simulated switch took 2.5 s to answer.
    assert provision.start_time is not None and provision.end_time is not None
    assert provision.end_time - provision.start_time == pytest.approx(2.5e9, rel=1e-3)
    assert provision.status.status_code is StatusCode.UNSET


def test_a_retried_sale_counts_its_retries_and_an_unanswered_exchange_is_an_error(
    watched: Watched,
) -> None:
    watched.switch.faults.script(Operation.PROVISION, FaultKind.UNAVAILABLE)
    tx = watched.sell()
    assert tx.state is State.DONE
    provision, retry, _confirm = watched.finished()
    assert provision.status.status_code is StatusCode.ERROR
    assert provision.attributes is not None and retry.attributes is not None
    assert provision.attributes["voucher.outcome"] == "unknown"
    assert retry.name == "retryProvisionVoucher"
    assert retry.attributes["voucher.retries"] == 1
    assert watched.metrics()["voucher.retries"] == [({}, 1)]


def test_metrics_count_sales_by_outcome_latency_advices_and_flags(watched: Watched) -> None:
    watched.sell()
    watched.switch.faults.script(Operation.CONFIRM, FaultKind.DECLINE)
    flagged = watched.sell()
    assert flagged.reconciliation is not None
    got = watched.metrics()
    assert got["voucher.sales"] == [({"voucher.outcome": "approved", "voucher.state": "DONE"}, 2)]
    assert got["voucher.sales.flagged"] == [({"voucher.outcome": "approved"}, 1)]
    assert got["voucher.advices.parked"] == [({"voucher.advice": "confirmation"}, 1)]
    # Each advice was stored and settled (acknowledged or parked): none is left queued.
    assert got["voucher.advices.queued"] == [({"voucher.advice": "confirmation"}, 0)]
    durations: dict[str, int] = {}
    for attributes, count in got["voucher.exchange.duration"]:
        operation = attributes["voucher.operation"]
        durations[operation] = durations.get(operation, 0) + count
    assert durations == {"provisionVoucher": 2, "confirmVoucher": 2}


def test_telemetry_sits_beside_the_hosts_own_observer() -> None:
    seen: list[Trace] = []
    till = Watched(observer=seen.append)
    try:
        till.sell()
    finally:
        till.app.close()
    assert seen  # the host's observer still hears every trace
    assert till.metrics()["voucher.sales"][0][1] == 1


def test_retries_reversals_parked_advices_flags_and_recovery_are_logged_with_the_sale_id(
    watched: Watched, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voucher_core")
    watched.switch.faults.script(Operation.PROVISION, FaultKind.UNAVAILABLE)
    retried = watched.sell()
    watched.switch.faults.script(Operation.CONFIRM, FaultKind.DECLINE)
    parked = watched.sell()
    waiting = watched.app.driver.sell(demo_request(id=watched.ids(), time=START))
    watched.app.driver.cancel(waiting)

    def lines(sale_id: str) -> list[str]:
        return [
            record.getMessage()
            for record in caplog.records
            if getattr(record, "sale_id", None) == sale_id and record.levelno == logging.INFO
        ]

    assert any("retry 1" in line for line in lines(retried.id))
    assert any("parked" in line for line in lines(parked.id))
    assert any("flagged for reconciliation" in line for line in lines(parked.id))
    assert any("reversal" in line and "CANCELLED" in line for line in lines(waiting.id))
