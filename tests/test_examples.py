"""The host-framework examples under examples/, run the way a newcomer would run them.

The plain script runs as a subprocess. The Flask app is driven through its test client and the
FastAPI app over httpx's ASGI transport inside its own lifespan, each through a sale, a
confirmation and a cancellation, with the in-process simulator behind them so a test can
script faults and read what the provider holds. Flask and FastAPI come with the
``[examples]`` extra; without them those tests are skipped.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from voucher_adapters.simulator import FaultKind, Operation, SwitchSimulator
from voucher_core import BackoffPolicy, DecisionPolicy, DriverSettings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Repeats come quickly, so the background forwarder is seen delivering within a test.
QUICK = DriverSettings(backoff=BackoffPolicy(initial=0.05, ceiling=0.2))


def load(name: str, *, needs: str) -> ModuleType:
    """Import examples/<name>.py by its path, or skip if its framework is not installed."""
    pytest.importorskip(needs, reason=f"{needs} is not installed (pip install '.[examples]')")
    spec = importlib.util.spec_from_file_location(f"voucher_example_{name}", EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


# -- the plain script ----------------------------------------------------------------------------


def run_script(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "plain_script.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TMPDIR": str(tmp)},  # where a temporary journal goes
    )


def test_the_plain_script_sells_and_confirms_a_voucher(tmp_path: Path) -> None:
    db = tmp_path / "till.db"
    done = run_script("--db", str(db), tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"journal and advice queue: {db}"
    assert "after the provision: PROVISIONED" in lines
    assert "host: the customer paid 10.00 cash -> confirm" in lines
    assert "final state: DONE" in lines and "outcome: approved" in lines
    assert any(line.startswith("voucher serial: ") for line in lines)
    assert db.exists()


def test_the_plain_script_cancels_on_request_in_a_temporary_file(tmp_path: Path) -> None:
    done = run_script("--cancel", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"journal and advice queue: {tmp_path.resolve()}/voucher-")
    assert "host: the customer walked away -> cancel" in done.stdout
    assert "final state: DECLINED\noutcome: declined\n" in done.stdout
    assert "voucher serial" not in done.stdout


def test_the_plain_script_talks_http_to_a_real_server(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="the simulator server needs the [server] extra")
    from voucher_adapters.simulator.server import RunningServer, create_app  # noqa: PLC0415

    switch = SwitchSimulator()
    with RunningServer(create_app(switch)) as server:
        done = run_script("--url", server.url, "--db", str(tmp_path / "http.db"), tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "final state: DONE" in done.stdout
    (entry,) = switch.ledger()
    assert entry.state == "confirmed"


# -- Flask ---------------------------------------------------------------------------------------


@pytest.fixture
def flask_example() -> ModuleType:
    return load("flask_app.py", needs="flask")


@pytest.fixture
def flask_apps(flask_example: ModuleType, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Builds Flask apps on one SQLite file; closes their background work afterwards."""
    built: list[Any] = []

    def build(simulator: SwitchSimulator, **options: Any) -> Any:
        options.setdefault("settings", QUICK)
        app = flask_example.create_app(
            db_path=str(tmp_path / "voucher.db"),
            simulator=simulator,
            forward_interval=0.05,
            **options,
        )
        built.append(app)
        return app

    yield build
    for app in built:
        app.extensions["voucher"].close()


def test_flask_sells_confirms_and_the_forwarder_delivers(
    flask_apps: Callable[..., Any],
) -> None:
    switch = SwitchSimulator()
    switch.faults.script(Operation.CONFIRM, FaultKind.UNAVAILABLE, times=1)
    app = flask_apps(switch)
    client = app.test_client()

    sold = client.post("/sales", json={"product": "AIRTIME10", "amount": 1500})
    assert sold.status_code == 201
    sale = sold.get_json()
    assert sale["state"] == "PROVISIONED" and sale["outcome"] is None and "voucher" not in sale

    confirmed = client.post(
        f"/sales/{sale['id']}/confirm", json={"tenders": [{"type": "CASH", "amount": 1500}]}
    )
    assert confirmed.status_code == 200
    # The first delivery met a 503: the outcome is decided, the advice waits in the queue.
    body = confirmed.get_json()
    assert body["state"] == "CONFIRMING" and body["outcome"] == "approved" and body["voucher"]

    def delivered() -> bool:
        return bool(client.get(f"/sales/{sale['id']}").get_json()["state"] == "DONE")

    assert wait_for(delivered), "the forwarder thread did not deliver the confirmation"
    assert switch.pump() == 1 and switch.voucher_active(sale["id"])
    assert client.post(f"/sales/{sale['id']}/cancel").status_code == 409  # decided already


def test_flask_cancels_and_refuses_unknown_sales(flask_apps: Callable[..., Any]) -> None:
    switch = SwitchSimulator()
    client = flask_apps(switch).test_client()
    sale = client.post("/sales", json={"amount": 1000}).get_json()
    cancelled = client.post(f"/sales/{sale['id']}/cancel")
    assert cancelled.get_json()["state"] == "DECLINED"
    assert cancelled.get_json()["outcome"] == "declined"
    switch.pump()
    assert not switch.voucher_active(sale["id"])
    assert client.get("/sales/00000000-0000-4000-8000-000000000000").status_code == 404
    assert client.post("/sales", json={"amount": -5}).status_code == 400


def test_flask_refuses_a_product_id_electrum_cannot_carry_with_a_400_in_json(
    flask_apps: Callable[..., Any],
) -> None:
    client = flask_apps(SwitchSimulator()).test_client()
    refused = client.post("/sales", json={"product": "no such product!", "amount": 1000})
    assert refused.status_code == 400
    assert "productId must match" in refused.get_json()["error"]
    missing = client.get("/sales/00000000-0000-4000-8000-000000000000")
    assert missing.get_json() == {"error": "no sale 00000000-0000-4000-8000-000000000000"}


def test_flask_expires_a_sale_the_host_forgot(flask_apps: Callable[..., Any]) -> None:
    settings = DriverSettings(decision=DecisionPolicy(limit=0.1))
    client = flask_apps(SwitchSimulator(), settings=settings, expire_interval=0.05).test_client()
    sale = client.post("/sales", json={"amount": 1000}).get_json()

    def expired() -> bool:
        return bool(client.get(f"/sales/{sale['id']}").get_json()["state"] == "DECLINED")

    assert wait_for(expired), "the sale was not reversed after its decision limit"
    assert client.post(f"/sales/{sale['id']}/confirm").status_code == 409


def test_flask_recovers_a_waiting_sale_after_a_restart(flask_apps: Callable[..., Any]) -> None:
    switch = SwitchSimulator()
    first = flask_apps(switch)
    sale = first.test_client().post("/sales", json={"amount": 1000}).get_json()
    first.extensions["voucher"].close()  # the process stops; the journal stays

    second = flask_apps(switch).test_client()  # start-up runs driver.recover()
    confirmed = second.post(f"/sales/{sale['id']}/confirm")
    assert confirmed.get_json()["state"] == "DONE"


# -- FastAPI -------------------------------------------------------------------------------------


@pytest.fixture
def fastapi_example() -> ModuleType:
    return load("fastapi_app.py", needs="fastapi")


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan (as a server runs it) and a client talking ASGI to it, on this loop."""
    async with app.router.lifespan_context(app):  # recover, then the forwarder task starts
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://till") as client:
            yield client
    # Leaving it stopped the forwarder and closed the stores.


async def await_state(client: httpx.AsyncClient, sale_id: str, state: str) -> bool:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if (await client.get(f"/sales/{sale_id}")).json()["state"] == state:
            return True
        await asyncio.sleep(0.02)  # the forwarder runs on this same loop meanwhile
    return False


def test_fastapi_sells_confirms_cancels_and_the_forwarder_delivers(
    fastapi_example: ModuleType, tmp_path: Path
) -> None:
    switch = SwitchSimulator()
    switch.faults.script(Operation.CONFIRM, FaultKind.SERVER_ERROR, times=2)
    app = fastapi_example.create_app(
        db_path=str(tmp_path / "voucher.db"),
        simulator=switch,
        settings=QUICK,
        forward_interval=0.05,
    )

    async def scenario() -> tuple[str, str]:
        async with serving(app) as client:
            sold = await client.post("/sales", json={"product": "AIRTIME10", "amount": 1000})
            assert sold.status_code == 201
            sale = sold.json()
            assert sale["state"] == "PROVISIONED" and sale["outcome"] is None

            confirmed = (await client.post(f"/sales/{sale['id']}/confirm")).json()  # cash
            # The first delivery met a 500: the outcome is decided, the advice is queued.
            assert confirmed["state"] == "CONFIRMING" and confirmed["outcome"] == "approved"
            assert await await_state(client, sale["id"], "DONE"), "not delivered"

            other = (await client.post("/sales", json={"amount": 500})).json()
            cancelled = (await client.post(f"/sales/{other['id']}/cancel")).json()
            assert cancelled["state"] == "DECLINED" and cancelled["outcome"] == "declined"
            assert (await client.post(f"/sales/{other['id']}/confirm")).status_code == 409
            unknown = await client.get("/sales/00000000-0000-4000-8000-000000000000")
            assert unknown.status_code == 404
            assert (await client.post("/sales", json={"amount": 0})).status_code == 422
            bad = await client.post("/sales", json={"product": "no such product!", "amount": 1})
            assert bad.status_code == 400 and "productId must match" in bad.json()["detail"]
            return sale["id"], other["id"]

    confirmed_id, cancelled_id = asyncio.run(scenario())
    switch.pump()
    assert switch.voucher_active(confirmed_id) and not switch.voucher_active(cancelled_id)


def test_fastapi_expires_a_sale_the_host_forgot(
    fastapi_example: ModuleType, tmp_path: Path
) -> None:
    app = fastapi_example.create_app(
        db_path=str(tmp_path / "voucher.db"),
        simulator=SwitchSimulator(),
        settings=DriverSettings(decision=DecisionPolicy(limit=0.1)),
        forward_interval=0.05,
    )

    async def scenario() -> None:
        async with serving(app) as client:
            sale = (await client.post("/sales", json={"amount": 1000})).json()
            assert await await_state(client, sale["id"], "DECLINED"), "not expired"
            assert (await client.post(f"/sales/{sale['id']}/confirm")).status_code == 409

    asyncio.run(scenario())


def test_fastapi_recovers_a_waiting_sale_after_a_restart(
    fastapi_example: ModuleType, tmp_path: Path
) -> None:
    switch = SwitchSimulator()
    db = str(tmp_path / "voucher.db")

    async def scenario() -> None:
        first = fastapi_example.create_app(db_path=db, simulator=switch)
        async with serving(first) as client:
            sale = (await client.post("/sales", json={"amount": 1000})).json()
        second = fastapi_example.create_app(db_path=db, simulator=switch)
        async with serving(second) as client:  # start-up runs driver.recover()
            confirmed = await client.post(f"/sales/{sale['id']}/confirm")
            assert confirmed.json()["state"] == "DONE"

    asyncio.run(scenario())
