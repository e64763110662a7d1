"""OpenTelemetry for sales: a span per exchange with the switch, and the metrics to alert on.

Install the ``[otel]`` extra (``opentelemetry-api``). Without an OpenTelemetry SDK configured
by the host, the API's no-op providers make every call here do nothing; with one, spans and
metrics go wherever the host's SDK exports them. :class:`Telemetry` is two observers, wired
like any other (``bootstrap.Settings`` does it for ``telemetry=``):

* :meth:`Telemetry.on_exchange` (a transport's exchange observer) makes one span per
  exchange, named after the operation, from when the request left to when its reply was read
  (the exchange's ``latency``), with the sale's id, the HTTP status, what the reply meant and
  the sale's retries so far; and records the latency in ``voucher.exchange.duration``.
* :meth:`Telemetry.on_trace` (the driver's trace observer) counts sales by outcome, advices
  queued and parked, and sales flagged for reconciliation.

Neither raises into a sale: the transport and the driver log an observer's failure and go on.
Attributes carry ids, operations, statuses and outcomes, never a body, a code or a PIN.

Metrics (names follow OpenTelemetry's conventions; units in brackets):

=================================  =============  ===========================================
``voucher.sales``                  counter        sales ended, by ``voucher.outcome``
                                                  (approved, declined) and ``voucher.state``
``voucher.sales.flagged``          counter        sales ended needing reconciliation
``voucher.exchange.duration``      histogram [s]  exchange latency, by ``voucher.operation``
                                                  and ``http.response.status_code``
``voucher.advices.queued``         up-down        advices stored and not yet settled
``voucher.advices.parked``         counter        advices refused for good and parked
``voucher.retries``                counter        retryProvisionVoucher requests sent
=================================  =============  ===========================================
"""

from __future__ import annotations

import time
from collections import OrderedDict

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from voucher_adapters.transports.exchange import Exchange
from voucher_core.drivers import AdviceQueued, AdviceSettled, SaleEnded, Trace
from voucher_core.ports import LookupReply, Operation
from voucher_core.replies import Rejected, RepeatLater

__all__ = ["INSTRUMENTATION", "Telemetry"]

INSTRUMENTATION = "voucher_core"
# Sales whose retries are being counted; a sale that never ends here (its process stopped
# watching it) is forgotten once this many newer ones are counted.
_RETRIES_KEPT = 10_000


def _meaning(reply: object) -> str:
    """What a reply meant, in one lower-case word: approved, declined, unknown, acknowledged,
    conflict, rejected, repeat_later, or lookup."""
    if isinstance(reply, LookupReply):
        return "lookup"
    if isinstance(reply, RepeatLater):
        return "repeat_later"
    return type(reply).__name__.lower()


class Telemetry:
    """Spans and metrics for the exchanges and sales of one process.

    ``tracer_provider`` and ``meter_provider`` default to OpenTelemetry's global ones (set by
    the host's SDK, or no-ops).
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
        meter = metrics.get_meter(INSTRUMENTATION, meter_provider=meter_provider)
        self.sales = meter.create_counter(
            "voucher.sales", unit="{sale}", description="Sales ended, by outcome"
        )
        self.flagged = meter.create_counter(
            "voucher.sales.flagged",
            unit="{sale}",
            description="Sales ended with a flag for reconciliation",
        )
        self.latency = meter.create_histogram(
            "voucher.exchange.duration",
            unit="s",
            description="From a request's sending to its reply's reading, or to giving up",
        )
        self.queued = meter.create_up_down_counter(
            "voucher.advices.queued",
            unit="{advice}",
            description="Advices stored for delivery and not yet settled",
        )
        self.parked = meter.create_counter(
            "voucher.advices.parked",
            unit="{advice}",
            description="Advices refused for good and parked",
        )
        self.retries = meter.create_counter(
            "voucher.retries", unit="{request}", description="Provision retries sent"
        )
        self._retries_of: OrderedDict[str, int] = OrderedDict()

    def on_exchange(self, exchange: Exchange) -> None:
        """A transport's exchange observer: one span and one latency measurement."""
        operation = exchange.operation
        sale_id = exchange.request_id
        retries = self._retries_of.get(sale_id, 0)
        if operation is Operation.RETRY:
            retries += 1
            self._retries_of[sale_id] = retries
            self._retries_of.move_to_end(sale_id)
            if len(self._retries_of) > _RETRIES_KEPT:
                self._retries_of.popitem(last=False)
            self.retries.add(1)
        end = time.time_ns()
        attributes: dict[str, str | int] = {
            "voucher.operation": operation.value,
            "voucher.sale_id": sale_id,
            "voucher.message_id": exchange.message_id,
            "voucher.outcome": _meaning(exchange.reply),
            "voucher.retries": retries,
        }
        if exchange.status is not None:
            attributes["http.response.status_code"] = exchange.status
        span = self.tracer.start_span(
            operation.value,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=end - int(exchange.latency * 1e9),
        )
        if exchange.status is None or exchange.status >= 500:
            span.set_status(Status(StatusCode.ERROR, "no final answer from the switch"))
        span.end(end_time=end)
        measured: dict[str, str | int] = {"voucher.operation": operation.value}
        if exchange.status is not None:
            measured["http.response.status_code"] = exchange.status
        self.latency.record(exchange.latency, measured)

    def on_trace(self, item: Trace) -> None:
        """The driver's trace observer: sales, advices and flags."""
        if isinstance(item, AdviceQueued):
            self.queued.add(1, {"voucher.advice": item.kind.value})
        elif isinstance(item, AdviceSettled):
            if isinstance(item.reply, RepeatLater):
                return
            self.queued.add(-1, {"voucher.advice": item.kind.value})
            if isinstance(item.reply, Rejected):
                self.parked.add(1, {"voucher.advice": item.kind.value})
        elif isinstance(item, SaleEnded):
            self._retries_of.pop(item.transaction_id, None)
            outcome = item.outcome.value if item.outcome is not None else "none"
            self.sales.add(1, {"voucher.outcome": outcome, "voucher.state": item.state.value})
            if item.reconciliation is not None:
                self.flagged.add(1, {"voucher.outcome": outcome})
