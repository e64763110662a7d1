"""The PostgreSQL stores behind a transaction pooler: a real PgBouncer in ``pool_mode =
transaction`` between the stores and the server.

Such a pooler refuses the startup ``options`` the stores once set their timeouts with, and
hands each transaction to whichever server session is free. The stores must open through it,
set their timeouts per transaction (``pooling="transaction"``), and take the journal's owner
claim (a session-level lock) on a ``claim_dsn`` that reaches the server directly. Skipped
where PgBouncer is not installed (Debian: ``apt-get install pgbouncer``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg import PG_DSN, drop_schema, require_postgres
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlite_samples import Samples

from voucher_adapters.bootstrap import Settings, build, build_async
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import cash, demo_request
from voucher_adapters.stores.postgres import PostgresAdviceQueue, PostgresJournal, migrate
from voucher_adapters.stores.postgres.schema import connect_kwargs
from voucher_core import State
from voucher_core.transaction import random_id

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
)

pytestmark = pytest.mark.skipif(
    PGBOUNCER is None, reason="PgBouncer is not installed (apt-get install pgbouncer)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pooler() -> Iterator[str]:
    """The DSN of PgBouncer in transaction mode in front of the test server."""
    require_postgres()
    assert PGBOUNCER is not None
    # Not under pytest's tmp folder: as root, PgBouncer runs as postgres, who must read it.
    folder = Path(tempfile.mkdtemp(prefix="voucher-pgbouncer-"))
    folder.chmod(0o755)
    server = conninfo_to_dict(PG_DSN)
    user = str(server.get("user") or "postgres")
    port = free_port()
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.get('host') or '127.0.0.1'} port={server.get('port') or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 50\n"
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer will not run as root
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    dsn = make_conninfo(PG_DSN, host="127.0.0.1", port=str(port))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.Error:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output = process.communicate()[0].decode(errors="replace")
                    pytest.skip(f"PgBouncer did not start here: {output[-300:]}")
                time.sleep(0.1)
        yield dsn
    finally:
        process.terminate()
        process.communicate(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"voucher_test_{os.urandom(8).hex()}"
    yield name
    drop_schema(name)


def test_a_transaction_pooler_refuses_startup_options_and_the_stores_send_none(
    pooler: str,
) -> None:
    with pytest.raises(psycopg.OperationalError, match="options"):
        psycopg.connect(pooler, options="-c lock_timeout=2000", connect_timeout=3).close()
    assert "options" not in connect_kwargs(pooler, 10.0)


def test_the_stores_work_through_a_transaction_pooler_with_the_claim_on_its_own_dsn(
    pooler: str, schema: str
) -> None:
    samples = Samples()
    migrate(pooler, schema=schema)
    journal = PostgresJournal(pooler, schema=schema, pooling="transaction", claim_dsn=PG_DSN)
    queue = PostgresAdviceQueue(pooler, schema=schema, pooling="transaction")
    try:
        transactions = samples.every_state()
        for tx in transactions:
            journal.record(tx, decision_deadline=None)
        assert {e.transaction.id for e in journal.entries()} == {tx.id for tx in transactions}
        journal.claim()  # a session lock, on the direct DSN
        unfinished = {e.transaction.id for e in journal.unfinished()}
        assert unfinished == {tx.id for tx in transactions if not tx.terminal}
        advice = samples.confirmation()
        queue.enqueue(advice, due=0.0)
        [taken] = queue.take_due(1.0, limit=5)
        assert taken.id == advice.id
        queue.acknowledge(advice.id)
        assert queue.stats()["queued"] == 0
    finally:
        queue.close()
        journal.close()


def test_settings_carry_pooling_and_claim_dsn_to_a_driver(pooler: str, schema: str) -> None:
    settings = Settings(dsn=pooler, schema=schema, pooling="transaction", claim_dsn=PG_DSN)
    with build(settings) as app:  # builds, claims on the direct DSN, and recovers nothing
        app.driver.recover()
        assert isinstance(app.journal, PostgresJournal)
        assert app.journal.claim_dsn == PG_DSN
        assert app.journal.database.pooling == "transaction"


def test_a_dual_sale_goes_through_the_pooler_from_provision_to_confirmation(
    pooler: str, schema: str
) -> None:
    """Every write of a sale, the state change and its advice in one statement included,
    goes through the pooler; the journal and the queue agree at the end."""
    clock = SimulatedClock()
    settings = Settings(
        dsn=pooler, schema=schema, pooling="transaction", claim_dsn=PG_DSN, clock=clock
    )
    with build(settings) as app:
        tx = app.driver.sell(demo_request(id=random_id(), time=clock.now()))
        assert tx.state is State.PROVISIONED
        app.driver.confirm(tx, cash(1000))
        assert app.driver.drain() is True
        assert tx.state is State.DONE
        assert app.journal is not None
        entry = app.journal.get(tx.id)
        assert entry is not None and entry.transaction.state is State.DONE
        assert app.queue.stats()["queued"] == 0  # type: ignore[attr-defined]


def test_an_asyncio_dual_sale_goes_through_the_pooler_too(pooler: str, schema: str) -> None:
    settings = Settings(dsn=pooler, schema=schema, pooling="transaction", claim_dsn=PG_DSN)

    async def sell_four() -> list[State]:
        async with await build_async(settings) as app:
            sales = []
            for _ in range(4):  # more runs of each statement than psycopg prepares after
                tx = await app.driver.sell(demo_request(id=random_id(), time=app.clock.now()))
                await app.driver.confirm(tx, cash(1000))
                sales.append(tx)
            assert await app.driver.drain(timeout=30) is True
            return [tx.state for tx in sales]

    assert asyncio.run(sell_four()) == [State.DONE] * 4


def test_session_timeouts_reach_the_server_without_startup_options(schema: str) -> None:
    require_postgres()
    queue = PostgresAdviceQueue(PG_DSN, schema=schema)
    try:

        def plan():  # type: ignore[no-untyped-def]
            _, rows = yield ("SHOW lock_timeout", ())
            return rows[0][0]

        assert queue.database.run("read lock_timeout", plan, write=False) == "10s"
    finally:
        queue.close()


def test_transaction_timeouts_are_set_inside_each_transaction(pooler: str, schema: str) -> None:
    queue = PostgresAdviceQueue(pooler, schema=schema, pooling="transaction")
    try:

        def plan():  # type: ignore[no-untyped-def]
            _, rows = yield ("SHOW statement_timeout", ())
            return rows[0][0]

        assert queue.database.run("read statement_timeout", plan, write=False) == "1min"
    finally:
        queue.close()
