"""A synchronous Flask app that sells vouchers through voucher-core.

    pip install 'voucher-core[http,examples]'
    flask --app examples/flask_app.py run                 # the in-process simulator
    VOUCHER_SWITCH_URL=https://switch.example/suv/v1 \\
    VOUCHER_USERNAME=my-client-id VOUCHER_PASSWORD=secret \\
    VOUCHER_DB=/var/lib/till/voucher.db flask --app examples/flask_app.py run

    curl -X POST localhost:5000/sales -H 'content-type: application/json' \\
         -d '{"product": "AIRTIME10", "amount": 1000}'
    curl -X POST localhost:5000/sales/ID/confirm -H 'content-type: application/json' \\
         -d '{"tenders": [{"type": "CASH", "amount": 1000}]}'
    curl -X POST localhost:5000/sales/ID/cancel
    curl localhost:5000/sales/ID

Routes: ``POST /sales`` provisions (dual messaging stops at PROVISIONED: the host must
decide), ``POST /sales/<id>/confirm`` with the tenders taken, ``POST /sales/<id>/cancel``,
``GET /sales/<id>`` (read from the journal, so it survives restarts).

What runs where:

* The journal and the advice queue share one SQLite file (``VOUCHER_DB``, default
  ``./voucher.db``). Keep it on a disk that survives a restart: it is what recovery reads.
* Serve it from one process (threads are fine). A second process on the same file would
  resume the same sales, so it is refused with ``OwnerBusy`` when it builds its driver; a
  server with several worker processes gives each its own journal ``owner`` instead.
* ``create_app`` builds the driver, its transport and its stores in one call
  (:func:`voucher_adapters.bootstrap.build`), calls ``driver.recover()`` before serving, then
  starts a :class:`~voucher_adapters.forwarder.ForwarderThread` that delivers queued
  confirmations and reversals in the background. ``VoucherService.close()`` stops it and
  closes the rest (registered with ``atexit``, since Flask has no shutdown hook of its own).
* Host decisions are expired on a schedule by a small thread of this app, under the same lock
  as ``confirm`` and ``cancel``, not by the forwarder's ``expire=True``: requests arrive on
  several threads, and a confirm that lands exactly at the deadline must not race the expiry
  of the same sale. The lock makes "decide" and "expire" take turns.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, abort, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from voucher_adapters.bootstrap import Settings, build
from voucher_adapters.demo import DEMO_CLIENT_ID, cash, demo_request
from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.stores.sqlite import StorageError
from voucher_adapters.transports.in_process import InMemoryTransport
from voucher_core import DriverSettings, MessageError, State, Transaction
from voucher_core.messages import (
    BasicReversal,
    LedgerAmount,
    ProvisionRequest,
    Tender,
    TenderAdvice,
)
from voucher_core.ports import LookupQuery, LookupReply
from voucher_core.replies import AdviceReply, ProvisionReply
from voucher_core.transaction import random_id

T = TypeVar("T")
log = logging.getLogger("voucher_example")
CURRENCY = "710"  # ISO 4217 numeric: South African rand


class OneCallAtATime:
    """The in-process simulator is not thread-safe (a real switch is): this wrapper lets one
    thread at a time reach it, as the forwarder thread and request threads both send."""

    def __init__(self, inner: InMemoryTransport) -> None:
        self.inner = inner
        self._lock = threading.Lock()

    def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(*args, **kwargs)

    def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return self._call(self.inner.provision, request, timeout=timeout)

    def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply:
        return self._call(self.inner.retry, request, timeout=timeout)

    def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply:
        return self._call(self.inner.confirm, advice, timeout=timeout)

    def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply:
        return self._call(self.inner.reverse, advice, timeout=timeout)

    def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply:
        return self._call(self.inner.lookup, query, timeout=timeout)


class VoucherService:
    """The library as this app uses it: one driver, its stores and its background work."""

    def __init__(
        self,
        settings: Settings,
        *,
        username: str,
        forward_interval: float = 1.0,
        expire_interval: float = 5.0,
    ) -> None:
        self.username = username
        # The driver with its transport, journal and queue. Building it claims the journal
        # for this process: a second process on the same file gets OwnerBusy here.
        self.application = build(settings)
        self.driver = self.application.driver
        self.clock = self.application.clock
        assert self.application.journal is not None  # a sync application always has one
        self.journal = self.application.journal
        # A Driver's host calls (sell, confirm, cancel, expire_decisions) must not run on two
        # threads at once. A till sells one voucher at a time anyway; for many concurrent
        # sales in one process, see examples/fastapi_app.py.
        self.decisions = threading.Lock()
        self.forward_interval = forward_interval
        self.expire_interval = expire_interval
        self._stop = threading.Event()
        self._expiry = threading.Thread(target=self._expire_on_schedule, daemon=True)
        self._closed = False

    def start(self) -> None:
        with self.decisions:
            # Before serving: retry or reverse provisions a crash left in doubt, queue their
            # advices again, and put sales that wait for their host back on the clock.
            self.driver.recover()
        # The forwarder only delivers advices, which is safe next to the host's calls.
        self.application.forwarder(interval=self.forward_interval, expire=False)
        self._expiry.start()

    def close(self) -> None:
        """Stop the background work (each finishes its round) and close the file."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._expiry.is_alive():
            self._expiry.join()
        # The forwarder first, then the transport, the queue and the journal.
        self.application.close()

    def _expire_on_schedule(self) -> None:
        while not self._stop.wait(self.expire_interval):
            try:
                with self.decisions:
                    self.driver.expire_decisions()
            except Exception as error:  # keep going: the sale stays journaled as it was
                log.warning("expiring host decisions failed this round: %s", error)

    # -- what the routes call -------------------------------------------------------------------

    def sell(self, product: str, amount: int) -> Transaction:
        # A real host fills in the originator, client and merchant Electrum issued to it.
        sale = demo_request(
            id=random_id(),
            time=self.clock.now(),
            product_id=product,
            amount=amount,
            client_id=self.username,
        )
        with self.decisions:
            return self.driver.sell(sale)

    def confirm(self, sale_id: str, tenders: tuple[Tender, ...] | None) -> Transaction:
        with self.decisions:
            tx = self._waiting(sale_id)
            if tenders is None:  # one cash tender for the amount asked
                wanted = tx.request.amounts.request_amount if tx.request.amounts else None
                tenders = cash(wanted.amount if wanted is not None else 0)
            self.driver.confirm(tx, tenders)  # stored in the queue, then tried once at once
        return tx

    def cancel(self, sale_id: str) -> Transaction:
        with self.decisions:
            tx = self._waiting(sale_id)
            self.driver.cancel(tx)
        return tx

    def _waiting(self, sale_id: str) -> Transaction:
        """The sale still waiting for the host, or an HTTP error saying why not."""
        # The driver tracks every sale in flight, including those recover() resumed.
        for tx in self.driver.in_flight():
            if tx.id == sale_id and tx.state is State.PROVISIONED:
                return tx
        entry = self.journal.get(sale_id)
        if entry is None:
            abort(404, description=f"no sale {sale_id}")
        # Decided already, or expired: the journal says how it ended.
        abort(409, description=f"sale {sale_id} is {entry.transaction.state}, not waiting")


def sale_json(tx: Transaction) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": tx.id,
        "state": tx.state.value,
        # What to tell the customer: "approved", "declined", or None while the host decides.
        "outcome": tx.outcome.value if tx.outcome is not None else None,
        "needs_reconciliation": tx.reconciliation is not None,
    }
    voucher = tx.response.voucher if tx.response is not None else None
    if tx.outcome == "approved" and voucher is not None:
        body["voucher"] = {"serial_number": voucher.serial_number, "code": voucher.code}
    return body


def read_tenders(data: dict[str, Any]) -> tuple[Tender, ...] | None:
    """``{"tenders": [{"type": "CASH", "amount": 1000}, ...]}``; none given: cash in full."""
    given = data.get("tenders")
    if not given:
        return None
    return tuple(
        Tender(
            tender_type=str(item.get("type", "CASH")),
            amount=LedgerAmount(amount=int(item["amount"]), currency=CURRENCY),
        )
        for item in given
    )


def create_app(
    *,
    db_path: str | None = None,
    switch_url: str | None = None,
    simulator: SwitchSimulator | None = None,
    settings: DriverSettings | None = None,
    forward_interval: float = 1.0,
    expire_interval: float = 5.0,
) -> Flask:
    """The app; arguments left out come from the environment (see the module docstring)."""
    db = os.path.abspath(db_path or os.environ.get("VOUCHER_DB", "./voucher.db"))
    switch_url = switch_url or os.environ.get("VOUCHER_SWITCH_URL")
    username = os.environ.get("VOUCHER_USERNAME", DEMO_CLIENT_ID)
    driver = settings if settings is not None else DriverSettings()
    voucher_settings: Settings
    if switch_url:
        from voucher_adapters.transports.http import BasicAuth  # noqa: PLC0415  ([http] extra)

        password = os.environ.get("VOUCHER_PASSWORD", "demo")
        auth = BasicAuth(username, password)
        voucher_settings = Settings(url=switch_url, auth=auth, db=db, driver=driver)
    else:
        # The simulator in this process, wrapped so that one thread at a time reaches it.
        switch = simulator if simulator is not None else SwitchSimulator()
        transport = OneCallAtATime(InMemoryTransport(switch, username=username))
        voucher_settings = Settings(transport=transport, db=db, driver=driver)

    service = VoucherService(
        voucher_settings,
        username=username,
        forward_interval=forward_interval,
        expire_interval=expire_interval,
    )
    service.start()
    atexit.register(service.close)

    app = Flask(__name__)
    app.extensions["voucher"] = service

    @app.errorhandler(StorageError)
    def storage_failed(error: StorageError) -> ResponseReturnValue:
        # The journal could not write: the sale stopped where it was journaled last, and
        # recovery carries it on. Hand the customer nothing for it now.
        return jsonify(error=str(error)), 503

    @app.errorhandler(HTTPException)
    def refused(error: HTTPException) -> ResponseReturnValue:
        # The API speaks JSON, its refusals too: {"error": "..."} with the status.
        return jsonify(error=error.description), error.code or 500

    @app.post("/sales")
    def sell() -> ResponseReturnValue:
        data = request.get_json(silent=True) or {}
        product = str(data.get("product", "AIRTIME10"))
        amount = data.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            abort(400, description="amount must be a positive number of minor units")
        try:
            tx = service.sell(product, amount)
        except MessageError as error:  # no valid request: a product id Electrum cannot carry...
            # Nothing was sent or journaled, so the sale simply did not start.
            abort(400, description=str(error))
        return jsonify(sale_json(tx)), 201

    @app.post("/sales/<sale_id>/confirm")
    def confirm(sale_id: str) -> ResponseReturnValue:
        # Dual messaging: the customer paid, so confirm with what they tendered.
        try:
            tenders = read_tenders(request.get_json(silent=True) or {})
        except (KeyError, TypeError, ValueError) as error:
            abort(400, description=f"malformed tenders: {error}")
        tx = service.confirm(sale_id, tenders)
        return jsonify(sale_json(tx))

    @app.post("/sales/<sale_id>/cancel")
    def cancel(sale_id: str) -> ResponseReturnValue:
        # Dual messaging: the customer did not pay, so reverse the voucher.
        tx = service.cancel(sale_id)
        return jsonify(sale_json(tx))

    @app.get("/sales/<sale_id>")
    def show(sale_id: str) -> ResponseReturnValue:
        entry = service.journal.get(sale_id)
        if entry is None:
            abort(404, description=f"no sale {sale_id}")
        return jsonify(sale_json(entry.transaction))

    return app
