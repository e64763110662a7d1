"""An asyncio FastAPI app that sells vouchers through voucher-core: the twin of flask_app.py.

    pip install 'voucher-core[http,examples]' uvicorn
    uvicorn examples.fastapi_app:app                      # the in-process simulator
    VOUCHER_SWITCH_URL=https://switch.example/suv/v1 VOUCHER_USERNAME=my-client-id \\
    VOUCHER_PASSWORD=secret VOUCHER_DB=/var/lib/till/voucher.db uvicorn examples.fastapi_app:app

Same routes as the Flask example: ``POST /sales``, ``POST /sales/{id}/confirm``,
``POST /sales/{id}/cancel``, ``GET /sales/{id}``.

What runs where:

* The journal and the advice queue share one SQLite file (``VOUCHER_DB``, default
  ``./voucher.db``). The async stores run SQLite on a worker thread and commit concurrent
  sales together, so the event loop never blocks on the disk.
* The lifespan builds the driver, its transport and its stores in one call
  (:func:`voucher_adapters.bootstrap.build_async`), calls ``await driver.recover()``, and
  starts :func:`~voucher_adapters.forwarder.forward_forever` as a task
  (``application.forwarder()``); on shutdown the application stops the task, which finishes
  its round, then closes the transport and the stores.
* Here the forwarder also expires host decisions (``expire=True``, its default). Everything
  runs on one event loop, and the library moves a sale from "waiting" to "confirming" or
  "reversing" without awaiting in between, so an expiry and a confirm can never both act on
  one sale: whichever comes second finds it decided and is refused.
* Sales run concurrently: an ``AsyncDriver`` is made for many sales in flight at once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from voucher_adapters.bootstrap import AsyncApplication, Settings, build_async
from voucher_adapters.demo import DEMO_CLIENT_ID, cash, demo_request
from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.stores.sqlite import StorageError
from voucher_core import DriverSettings, MessageError, State, Transaction
from voucher_core.messages import LedgerAmount, Tender
from voucher_core.transaction import random_id

CURRENCY = "710"  # ISO 4217 numeric: South African rand


class SaleIn(BaseModel):
    product: str = "AIRTIME10"
    amount: int = Field(gt=0, description="minor units (cents)")


class TenderIn(BaseModel):
    type: str = "CASH"
    amount: int = Field(ge=0)


class ConfirmIn(BaseModel):
    tenders: list[TenderIn] = Field(default_factory=list)


class SaleOut(BaseModel):
    id: str
    state: str
    outcome: str | None  # what to tell the customer; None while the host decides
    needs_reconciliation: bool
    voucher: dict[str, str | None] | None = None


def sale_out(tx: Transaction) -> SaleOut:
    voucher = tx.response.voucher if tx.response is not None else None
    shown = None
    if tx.outcome == "approved" and voucher is not None:
        shown = {"serial_number": voucher.serial_number, "code": voucher.code}
    return SaleOut(
        id=tx.id,
        state=tx.state.value,
        outcome=tx.outcome.value if tx.outcome is not None else None,
        needs_reconciliation=tx.reconciliation is not None,
        voucher=shown,
    )


class VoucherService:
    """The library as this app uses it, built and torn down by the lifespan."""

    def __init__(self, application: AsyncApplication, *, username: str) -> None:
        self.application = application
        self.driver = application.driver
        assert application.journal is not None  # built with a db: the journal is in it
        self.journal = application.journal
        self.username = username

    async def sell(self, product: str, amount: int) -> Transaction:
        # A real host fills in the originator, client and merchant Electrum issued to it.
        sale = demo_request(
            id=random_id(),
            time=self.driver.clock.now(),
            product_id=product,
            amount=amount,
            client_id=self.username,
        )
        return await self.driver.sell(sale)

    async def decide(self, sale_id: str) -> Transaction:
        """The sale still waiting for the host, or an HTTP error saying why not."""
        # The driver tracks every sale in flight, including those recover() resumed.
        for tx in self.driver.in_flight():
            if tx.id == sale_id and tx.state is State.PROVISIONED:
                return tx
        entry = await self.journal.get(sale_id)
        if entry is None:
            raise HTTPException(404, f"no sale {sale_id}")
        # Decided already, or the forwarder expired it: the journal says how it ended.
        raise HTTPException(409, f"sale {sale_id} is {entry.transaction.state}, not waiting")


router = APIRouter()


def service_of(request: Request) -> VoucherService:
    service: VoucherService = request.app.state.voucher
    return service


async def storage_failed(request: Request, error: Exception) -> JSONResponse:
    # The journal could not write: the sale stopped where it was journaled last, and
    # recovery carries it on. Hand the customer nothing for it now.
    return JSONResponse({"error": str(error)}, status_code=503)


@router.post("/sales", status_code=201)
async def sell(sale: SaleIn, request: Request) -> SaleOut:
    try:
        tx = await service_of(request).sell(sale.product, sale.amount)
    except MessageError as error:  # no valid request: a product id Electrum cannot carry...
        # Nothing was sent or journaled, so the sale simply did not start.
        raise HTTPException(400, str(error)) from None
    return sale_out(tx)


@router.post("/sales/{sale_id}/confirm")
async def confirm(sale_id: str, request: Request, body: ConfirmIn | None = None) -> SaleOut:
    # Dual messaging: the customer paid, so confirm with what they tendered.
    service = service_of(request)
    tx = await service.decide(sale_id)
    tenders: tuple[Tender, ...]
    if body is not None and body.tenders:
        tenders = tuple(
            Tender(tender_type=t.type, amount=LedgerAmount(amount=t.amount, currency=CURRENCY))
            for t in body.tenders
        )
    else:  # one cash tender for the amount asked
        wanted = tx.request.amounts.request_amount if tx.request.amounts else None
        tenders = cash(wanted.amount if wanted is not None else 0)
    await service.driver.confirm(tx, tenders)  # stored in the queue, tried once at once
    return sale_out(tx)


@router.post("/sales/{sale_id}/cancel")
async def cancel(sale_id: str, request: Request) -> SaleOut:
    # Dual messaging: the customer did not pay, so reverse the voucher.
    service = service_of(request)
    tx = await service.decide(sale_id)
    await service.driver.cancel(tx)
    return sale_out(tx)


@router.get("/sales/{sale_id}")
async def show(sale_id: str, request: Request) -> SaleOut:
    entry = await service_of(request).journal.get(sale_id)
    if entry is None:
        raise HTTPException(404, f"no sale {sale_id}")
    return sale_out(entry.transaction)


def create_app(
    *,
    db_path: str | None = None,
    switch_url: str | None = None,
    simulator: SwitchSimulator | None = None,
    settings: DriverSettings | None = None,
    forward_interval: float = 1.0,
) -> FastAPI:
    """The app; arguments left out come from the environment (see the module docstring)."""
    path = os.path.abspath(db_path or os.environ.get("VOUCHER_DB", "./voucher.db"))
    url = switch_url or os.environ.get("VOUCHER_SWITCH_URL")
    username = os.environ.get("VOUCHER_USERNAME", DEMO_CLIENT_ID)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        driver = settings if settings is not None else DriverSettings()
        voucher_settings: Settings
        if url:
            from voucher_adapters.transports.http import BasicAuth  # noqa: PLC0415  ([http] extra)

            password = os.environ.get("VOUCHER_PASSWORD", "demo")
            auth = BasicAuth(username, password)
            voucher_settings = Settings(url=url, auth=auth, db=path, driver=driver)
        else:
            # One event loop, one thread: the simulator (a fresh one if none is given) needs
            # no lock here.
            voucher_settings = Settings(
                simulator=simulator, username=username, db=path, driver=driver
            )
        # Opening a SQLite file checks it, which blocks: build_async does it off the event
        # loop, and claims the journal for this process. Leaving the block stops the
        # forwarder (it finishes the round it is in), then closes the transport and stores.
        async with await build_async(voucher_settings) as application:
            # Before serving: settle what a crash left in doubt, and put sales that wait for
            # their host back on the clock.
            await application.driver.recover()
            application.forwarder(interval=forward_interval, expire=True)
            app.state.voucher = VoucherService(application, username=username)
            yield

    app = FastAPI(title="voucher-core example", lifespan=lifespan)
    app.include_router(router)
    app.add_exception_handler(StorageError, storage_failed)
    return app


app = create_app()  # for `uvicorn examples.fastapi_app:app`; nothing opens before startup
