"""Sell one voucher from a plain Python script, the way a till would.

    python examples/plain_script.py                      # against the in-process simulator
    python examples/plain_script.py --cancel             # the customer walks away instead
    python examples/plain_script.py --db sales.db        # keep the journal and queue
    voucher serve --port 8080 &                          # or a real server...
    python examples/plain_script.py --url http://127.0.0.1:8080/suv/v1

It shows the whole life of a dual-messaging sale: provision, the host's decision (confirm
with the tenders, or cancel), delivery of the resulting advice, and the outcome to tell the
customer. The journal and the advice queue live in one SQLite file; without ``--db`` a fresh
temporary file is used (and printed), so every run starts clean.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from voucher_adapters.bootstrap import Settings, build
from voucher_adapters.demo import DEMO_CLIENT_ID, cash, demo_request
from voucher_adapters.simulator import Provider, SwitchSimulator
from voucher_core import DriverSettings, ProviderProfile, RetryPolicy, State, Transaction
from voucher_core.policy import Messaging
from voucher_core.transaction import random_id


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Sell one voucher through voucher-core.")
    parser.add_argument("--url", help="a switch's SUV base URL (default: in-process simulator)")
    parser.add_argument("--username", default=DEMO_CLIENT_ID, help="also the request's client.id")
    parser.add_argument("--password", default="demo")
    parser.add_argument("--db", help="SQLite file for the journal and queue (default: temporary)")
    parser.add_argument("--product", default="AIRTIME10")
    parser.add_argument("--amount", type=int, default=1000, help="in minor units (cents)")
    parser.add_argument("--cancel", action="store_true", help="cancel instead of confirming")
    parser.add_argument("--timeout", type=float, default=60.0, help="per attempt, in seconds")
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    return parser.parse_args(argv)


def settings(args: argparse.Namespace, db: str) -> Settings:
    """The application to build: where the switch is, where the stores live, the driver's
    per-attempt timeout."""
    # One file holds both stores. The journal records every sale before each request
    # leaves; the queue keeps confirmations and reversals until the switch takes them.
    driver = DriverSettings(policy=RetryPolicy(timeout=args.timeout))
    if args.url:
        # The real thing: HTTP with Basic credentials (install the [http] extra).
        from voucher_adapters.transports.http import BasicAuth  # noqa: PLC0415

        auth = BasicAuth(args.username, args.password)
        return Settings(url=args.url, auth=auth, db=db, driver=driver)
    # The simulator, in this process: the same bytes on the "wire", no network.
    dual = ProviderProfile(messaging=Messaging.DUAL)
    switch = SwitchSimulator([Provider("airtimeco", dual, frozenset({args.product}))])
    return Settings(simulator=switch, username=args.username, db=db, driver=driver)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    db = args.db or str(Path(tempfile.mkdtemp(prefix="voucher-")) / "voucher.db")
    print(f"journal and advice queue: {Path(db).resolve()}")

    # The driver with its transport and stores; building it claims the journal for this
    # process. Leaving the block closes the transport, the queue and the journal.
    with build(settings(args, db)) as app:
        driver = app.driver
        # Always first: finish whatever a crash of an earlier run left half done.
        for resumed in driver.recover():
            print(f"recovered sale {resumed.id}: now {resumed.state}")

        request = demo_request(
            id=random_id(),
            time=app.clock.now(),
            product_id=args.product,
            amount=args.amount,
            client_id=args.username,
        )
        print(f"selling {args.product} for {args.amount / 100:.2f}: sale {request.id}")
        tx = driver.sell(request)
        print(f"after the provision: {tx.state}")

        if tx.state is State.PROVISIONED:
            # Dual messaging: the voucher is in hand but worth nothing until confirmed. The
            # host decides now; had it not decided within the limit, the library would
            # reverse the sale (driver.expire_decisions()).
            if args.cancel:
                print("host: the customer walked away -> cancel")
                driver.cancel(tx)
            else:
                print(f"host: the customer paid {args.amount / 100:.2f} cash -> confirm")
                driver.confirm(tx, cash(args.amount))
            # The customer's outcome is known now, before the advice is delivered.
            print(f"after the decision: {tx.state}, outcome {tx.outcome}")

        # Deliver what is queued, waiting until each advice is due; a long-running host
        # would start a forwarder instead (app.forwarder()).
        delivered = driver.drain(timeout=args.drain_timeout)
        report(tx)
        print(f"inspect the journal: voucher journal list --db {db}")
        if not delivered:
            print("an advice is still queued; run again (or `voucher recover`) to deliver it")
            return 1
        return 0


def report(tx: Transaction) -> None:
    print(f"final state: {tx.state}")
    print(f"outcome: {tx.outcome}")
    voucher = tx.response.voucher if tx.response is not None else None
    if tx.outcome == "approved" and voucher is not None:
        # What goes on the customer's slip.
        print(f"voucher serial: {voucher.serial_number}, code: {voucher.code}")
    if tx.reconciliation is not None:
        print(f"needs a person: {tx.reconciliation}")


if __name__ == "__main__":
    sys.exit(main())
