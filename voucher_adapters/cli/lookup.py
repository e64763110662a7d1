"""``voucher lookup``: ask a switch what it knows about a voucher.

A lookup is informative only: it moves no money and changes no sale. It names the voucher by
its provision request's id, by its code, by its serial number, or by several (then one voucher
must match them all), and may direct it to the institution that issued the voucher or the one
that settles it. The voucher code and PIN are as good as cash, so they are masked in what is
printed unless ``--show-code`` asks for them; the serial number cannot redeem the voucher and
is shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from voucher_core.errors import InvalidArgument, MessageError
from voucher_core.ports import LookupQuery, LookupReply
from voucher_core.wire import to_wire

__all__ = ["add_lookup_command", "lookup_query", "print_lookup", "run_lookup"]

_MASK = "***"


def add_lookup_command(
    commands: Any, positive_float: Callable[[str], float], password_env: str
) -> None:
    lookup = commands.add_parser(
        "lookup",
        help="look a voucher up on a server that speaks the SUV protocol",
        description="Ask URL (this project's simulator or a real switch) what it knows about a "
        "voucher, by the provision request's id, by the voucher's code or serial number, or "
        "by several at once. "
        "Exits 0 when the voucher is found, 1 when it is not or no answer came.",
    )
    lookup.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8080/suv/v1")
    lookup.add_argument("--provision-id", metavar="UUID", help="the provision request's id")
    lookup.add_argument("--voucher-code", metavar="CODE", help="the voucher's code")
    lookup.add_argument("--serial-number", metavar="SERIAL", help="the voucher's serial number")
    lookup.add_argument(
        "--receiver-inst-id",
        metavar="ID",
        help="the institution that issued the voucher, to direct the lookup to",
    )
    lookup.add_argument(
        "--settlement-entity-inst-id",
        metavar="ID",
        help="the institution the lookup should go through",
    )
    lookup.add_argument(
        "--username", help="Basic auth user, the sale's client.id (default: voucher-demo)"
    )
    lookup.add_argument(
        "--password",
        help=f"Basic auth password (default: ${password_env}; with no --username: demo)",
    )
    lookup.add_argument(
        "--timeout", type=positive_float, default=60.0, help="seconds to wait (default 60)"
    )
    lookup.add_argument(
        "--show-code", action="store_true", help="print the voucher's code and PIN unmasked"
    )
    lookup.add_argument("--json", action="store_true", help="machine-readable output")


_OPTIONS = (
    ("provisionRequestId", "--provision-id"),
    ("voucherCode", "--voucher-code"),
    ("voucherSerialNumber", "--serial-number"),
    ("receiverInstId", "--receiver-inst-id"),
    ("settlementEntityInstId", "--settlement-entity-inst-id"),
)


def lookup_query(args: argparse.Namespace, parser: argparse.ArgumentParser) -> LookupQuery:
    """The query the arguments name; a usage error (exit 2) if they name none or a bad one."""
    if args.provision_id is None and args.voucher_code is None and args.serial_number is None:
        parser.error("lookup needs --provision-id, --voucher-code or --serial-number")
    try:
        return LookupQuery(
            provision_request_id=args.provision_id,
            voucher_code=args.voucher_code,
            voucher_serial_number=args.serial_number,
            receiver_inst_id=args.receiver_inst_id,
            settlement_entity_inst_id=args.settlement_entity_inst_id,
        )
    except (InvalidArgument, MessageError) as error:
        reason = str(error)
        for param, option in _OPTIONS:
            reason = reason.replace(param, option)
        parser.error(reason)


def _masked(found: dict[str, Any]) -> dict[str, Any]:
    voucher = dict(found.get("voucher", {}))
    if "code" in voucher:
        voucher["code"] = _MASK
    if "pin" in voucher:
        voucher["pin"] = _MASK
    return {**found, "voucher": voucher}


def print_lookup(reply: LookupReply, *, show_code: bool, as_json: bool) -> int:
    """Print what the switch answered; the exit status: 0 found, 1 anything else."""
    if reply.status is None:
        print(f"voucher lookup: no answer: {reply.detail}", file=sys.stderr)
        return 1
    response = reply.response
    if response is None:
        error = reply.error
        if error is not None:
            why = f"{error.error_type}: {error.error_message}"
        elif 200 <= reply.status < 300:
            why = "the answer is not a VoucherLookupResponse"
        else:
            why = "no ErrorDetail in the answer"
        print(f"voucher lookup: {reply.status} {why}", file=sys.stderr)
        return 1
    found = to_wire(response)
    if not show_code:
        found = _masked(found)
    if as_json:
        print(json.dumps(found, sort_keys=False))
        return 0
    voucher = found["voucher"]
    print(f"voucher found ({reply.status})")
    for label, value in (
        ("code", voucher.get("code")),
        ("serial number", voucher.get("serialNumber")),
        ("expiry date", voucher.get("expiryDate")),
        ("product", found.get("product", {}).get("productId")),
        ("receiver", found.get("receiver", {}).get("name")),
        ("settlement entity", found.get("settlementEntity", {}).get("name")),
    ):
        if value is not None:
            print(f"  {label:<18} {value}")
    return 0


def run_lookup(args: argparse.Namespace, query: LookupQuery) -> int:
    """Send the lookup over HTTP with the arguments' credentials and print the answer."""
    from voucher_adapters.transports.http import BasicAuth, HttpTransport  # noqa: PLC0415

    transport = HttpTransport(args.url, auth=BasicAuth(args.username, args.password))
    try:
        reply = transport.lookup(query, timeout=args.timeout)
    finally:
        transport.close()
    return print_lookup(reply, show_code=args.show_code, as_json=args.json)
