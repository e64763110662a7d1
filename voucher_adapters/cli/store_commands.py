"""The ``voucher`` subcommands that work on the durable store: queue, journal, recover,
reconcile. Parsing lives here; the work is in :mod:`voucher_adapters.cli.store_operations`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from voucher_adapters.bootstrap import DEFAULT_DB, DEFAULT_SCHEMA
from voucher_adapters.cli.switch_access import access, add_access_options
from voucher_adapters.demo import DEMO_CLIENT_ID, DEMO_PASSWORD
from voucher_core.errors import InvalidArgument

__all__ = [
    "PASSWORD_ENV",
    "STORE_COMMANDS",
    "add_db_option",
    "add_schema_option",
    "add_store_commands",
    "check_schema_option",
    "credentials",
    "run_store_command",
    "schema_name",
    "schema_of",
]

STORE_COMMANDS = frozenset({"queue", "journal", "recover", "reconcile", "db"})
# Where the switch password is read from when --password is not given: a password on the
# command line shows in the process list to every user of the machine.
PASSWORD_ENV = "VOUCHER_PASSWORD"


def credentials(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[str, str]:
    """The Basic auth user and password: the demo pair when no ``--username`` is given;
    otherwise ``--password``, or else the ``VOUCHER_PASSWORD`` environment variable. A user
    without a password is refused here rather than sent to the switch with an empty one."""
    if args.username is None:
        if args.password is not None:
            parser.error("--password needs --username")
        return DEMO_CLIENT_ID, DEMO_PASSWORD
    password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV)
    if not password:
        parser.error(f"--username {args.username} needs --password or {PASSWORD_ENV} set")
    return args.username, password


def add_db_option(parser: argparse.ArgumentParser, *, required_default: bool = True) -> None:
    """``--db PATH`` (SQLite) or ``--dsn postgresql://...``: where the durable store is."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        default=DEFAULT_DB if required_default else None,
        metavar="PATH",
        help=f"the SQLite file holding the journal and advice queue (default {DEFAULT_DB})"
        if required_default
        else "keep the journal and advice queue in this SQLite file",
    )
    where.add_argument(
        "--dsn",
        metavar="postgresql://...",
        help="keep the journal and advice queue in this PostgreSQL database instead",
    )
    add_schema_option(parser)


def schema_name(text: str) -> str:
    """``--schema``'s value, checked by the rule the PostgreSQL stores quote it by."""
    from voucher_adapters.stores.schema_name import check_schema_name  # noqa: PLC0415

    try:
        check_schema_name(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_schema_option(parser: argparse.ArgumentParser) -> None:
    """``--schema NAME``: which PostgreSQL schema of ``--dsn`` holds the stores."""
    parser.add_argument(
        "--schema",
        type=schema_name,
        default=None,
        metavar="NAME",
        help=f"with --dsn: the PostgreSQL schema holding them (default {DEFAULT_SCHEMA})",
    )
    parser.set_defaults(schema_parser=parser)  # whose usage a misplaced --schema is told


def check_schema_option(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse ``--schema`` without ``--dsn``: a SQLite file or memory has no schema."""
    if getattr(args, "schema", None) is not None and getattr(args, "dsn", None) is None:
        getattr(args, "schema_parser", parser).error("--schema needs --dsn")


def schema_of(args: argparse.Namespace) -> str:
    """The schema the command works in: ``--schema``, else the stores' default."""
    schema: str | None = getattr(args, "schema", None)
    return DEFAULT_SCHEMA if schema is None else schema


def _add_remote(parser: argparse.ArgumentParser, seconds: Callable[[str], float]) -> None:
    parser.add_argument("--url", required=True, help="the switch's SUV base URL")
    parser.add_argument("--username", help="Basic auth user (default: voucher-demo)")
    parser.add_argument(
        "--password",
        help=f"Basic auth password (default: ${PASSWORD_ENV}; with no --username: demo)",
    )
    parser.add_argument("--timeout", type=seconds, default=60.0, help="seconds per attempt")
    parser.add_argument(
        "--drain-timeout",
        type=seconds,
        default=30.0,
        help="seconds to keep repeating advices the switch does not take (default 30)",
    )
    add_access_options(parser)


def add_store_commands(commands: Any, seconds: Callable[[str], float]) -> None:
    """Add queue, journal, recover and reconcile to the ``voucher`` subparsers."""
    queue = commands.add_parser(
        "queue",
        help="inspect and operate the durable advice queue",
        description="The advice queue: confirmations and reversals waiting for delivery.",
    )
    actions = queue.add_subparsers(dest="action", metavar="ACTION", parser_class=type(queue))
    actions.required = True
    for name, text in (("list", "every queued and parked advice"), ("stats", "counts")):
        sub = actions.add_parser(name, help=text)
        add_db_option(sub)
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    requeue = actions.add_parser("requeue", help="put a parked advice back in line")
    requeue.add_argument("advice_id", metavar="ID", help="the advice's id")
    add_db_option(requeue)
    drain = actions.add_parser("drain", help="deliver every queued advice to the switch now")
    add_db_option(drain)
    _add_remote(drain, seconds)

    journal = commands.add_parser("journal", help="read the transaction journal")
    jactions = journal.add_subparsers(dest="action", metavar="ACTION", parser_class=type(queue))
    jactions.required = True
    jlist = jactions.add_parser("list", help="every transaction: id, state, outcome, flag")
    add_db_option(jlist)
    jlist.add_argument("--json", action="store_true", help="one JSON object per line")

    recover = commands.add_parser(
        "recover",
        help="resume every unfinished sale after a crash, then drain the queue",
        description="Resume every unfinished transaction in the journal (a provision in "
        "doubt is retried or reversed, a sale still waiting for its host is reversed), then "
        "deliver the queue.",
    )
    add_db_option(recover)
    recover.add_argument(
        "--owner",
        metavar="NAME",
        default=None,
        help="resume the sales of the driving process of this name (the journal's owner), "
        "for a process that shares the journal with others and will not come back; "
        "default: the sales recorded without an owner",
    )
    _add_remote(recover, seconds)

    db = commands.add_parser("db", help="manage the PostgreSQL schema")
    dactions = db.add_subparsers(dest="action", metavar="ACTION", parser_class=type(queue))
    dactions.required = True
    migrate = dactions.add_parser(
        "migrate", help="create or migrate the schema (idempotent; safe to run concurrently)"
    )
    migrate.add_argument("--dsn", required=True, metavar="postgresql://...")
    add_schema_option(migrate)

    reconcile = commands.add_parser(
        "reconcile",
        help="the sales a person must look at, and what to do about each",
    )
    add_db_option(reconcile)
    reconcile.add_argument("--json", action="store_true", help="one JSON object per line")


def run_store_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from voucher_adapters.cli import store_operations as operations  # noqa: PLC0415  (keeps sqlite out of other commands)

    if args.command == "db":
        return operations.migrate_schema(args.dsn, schema=schema_of(args))

    store = operations.Store(
        db=args.db, dsn=args.dsn, schema=schema_of(args), owner=getattr(args, "owner", None)
    )
    if args.command in {"queue", "recover"} and getattr(args, "url", None) is not None:
        switch_access = access(args, parser)
        username, password = credentials(args, parser) if switch_access.oauth2 is None else ("", "")
        remote = operations.Remote(
            url=args.url,
            username=username,
            password=password,
            timeout=args.timeout,
            drain_timeout=args.drain_timeout,
            access=switch_access,
        )
        if args.command == "recover":
            return operations.recover(store, remote)
        return operations.drain(store, remote)
    if args.command == "queue":
        if args.action == "list":
            return operations.queue_list(store, as_json=args.json)
        if args.action == "stats":
            return operations.queue_stats(store, as_json=args.json)
        return operations.queue_requeue(store, args.advice_id)
    if args.command == "journal":
        return operations.journal_list(store, as_json=args.json)
    return operations.reconcile(store, as_json=args.json)
