"""The ``voucher`` command: simulate the seed flows, stress the library, draw the diagram."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voucher_adapters.cli.chaos import run_chaos
from voucher_adapters.cli.lookup import add_lookup_command, lookup_query, run_lookup
from voucher_adapters.cli.scenarios import SCENARIOS, TimelineEntry, run_scenario
from voucher_adapters.cli.sequence_diagram import to_sequence_diagram
from voucher_adapters.cli.store_commands import (
    PASSWORD_ENV,
    STORE_COMMANDS,
    add_db_option,
    add_store_commands,
    check_schema_option,
    credentials,
    run_store_command,
    schema_of,
)
from voucher_adapters.cli.switch_access import CLIENT_SECRET_ENV, access, add_access_options
from voucher_adapters.stores.redaction import redact_dsn, scrub
from voucher_core import __version__
from voucher_core.diagram import FORMATS, render
from voucher_core.errors import VoucherError
from voucher_core.policy import Messaging

if TYPE_CHECKING:
    from voucher_adapters.cli.provision import Progress

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but argument errors exit 2 with usage and never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0, got {text}")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port between 0 and 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="voucher",
        description="Voucher sales through the Electrum switch as explicit state machines.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    simulate = commands.add_parser(
        "simulate",
        help="run the seed flows or a chaos run against the in-memory switch",
        description="Run the seed message flows, or many faulty sales, against the built-in "
        "switch simulator. No outside service is needed.",
    )
    mode = simulate.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--scenario",
        choices=[*SCENARIOS, "all"],
        metavar="NAME",
        help=f"one of: {', '.join(SCENARIOS)}, or all",
    )
    mode.add_argument("--chaos", action="store_true", help="many sales with random faults")
    simulate.add_argument(
        "--count", type=_positive_int, default=None, help="sales in --chaos (default 1000)"
    )
    simulate.add_argument("--seed", type=_int, default=0, help="random seed (default 0)")
    simulate.add_argument("--json", action="store_true", help="machine-readable output")
    simulate.add_argument(
        "--format",
        choices=["text", "mermaid"],
        default="text",
        help="text timeline (default) or a Mermaid sequence diagram per scenario",
    )
    add_db_option(simulate, required_default=False)
    simulate.add_argument(
        "--http",
        action="store_true",
        help="talk to the simulator over real HTTP on a free loopback port",
    )

    serve = commands.add_parser(
        "serve",
        help="run the switch simulator as an HTTP server",
        description="Serve the switch simulator over HTTP (Electrum SUV paths under /suv/v1, "
        "plus an admin API under /suv/v1/testServerAdmin/) until interrupted.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8080, help="port (default 8080)")
    serve.add_argument("--seed", type=_int, default=0, help="random seed (default 0)")

    provision = commands.add_parser(
        "provision",
        help="sell real vouchers against a server that speaks the SUV protocol",
        description="Run real transactions against URL (this project's simulator or a real "
        "switch). The originator details other than client.id are demo defaults.",
    )
    provision.add_argument(
        "--url", required=True, help="base URL, e.g. http://127.0.0.1:8080/suv/v1"
    )
    provision.add_argument("--product", required=True, help="product id")
    provision.add_argument("--amount", type=_positive_int, required=True, help="minor units")
    provision.add_argument("--messaging", choices=["single", "dual"], default="dual")
    provision.add_argument(
        "--username",
        help="Basic auth user, also the request's client.id (default: voucher-demo)",
    )
    provision.add_argument(
        "--password",
        help=f"Basic auth password (default: ${PASSWORD_ENV}; with no --username: demo)",
    )
    provision.add_argument("--terminal-id", default="TILL0001", help="8-character terminal id")
    provision.add_argument(
        "--timeout", type=_positive_float, default=60.0, help="seconds per attempt (default 60)"
    )
    provision.add_argument(
        "--drain-timeout",
        type=_positive_float,
        default=30.0,
        help="seconds to keep repeating undelivered advices before giving up (default 30)",
    )
    provision.add_argument("--count", type=_positive_int, default=1, help="sales to run")
    provision.add_argument(
        "--concurrency", type=_positive_int, default=1, help="sales in flight with --count"
    )
    provision.add_argument(
        "--progress-every",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="with --count: a progress line on stderr this often (default 5, 0.5 on a terminal)",
    )
    provision.add_argument("--json", action="store_true", help="machine-readable output")
    add_db_option(provision, required_default=False)
    add_access_options(provision)

    add_lookup_command(commands, _positive_float, PASSWORD_ENV)
    add_store_commands(commands, _positive_float)

    diagram = commands.add_parser(
        "diagram",
        help="print the state diagram generated from the transition table",
        description="Print the transaction state diagram, generated from the transition table.",
    )
    diagram.add_argument("--format", choices=[*sorted(FORMATS), "svg"], default="mermaid")
    diagram.add_argument("--output", metavar="FILE", help="write to FILE instead of printing")
    return parser


def _diagram(args: argparse.Namespace) -> int:
    if args.format == "svg":
        if args.output is None:
            print("voucher diagram: --format svg needs --output FILE", file=sys.stderr)
            return 2
        folder = Path(args.output).resolve().parent
        if not folder.is_dir():
            print(
                f"voucher diagram: cannot write {args.output}: No such file or directory",
                file=sys.stderr,
            )
            return 1
        dot = shutil.which("dot")
        if dot is None:
            print(
                "voucher diagram: rendering SVG needs Graphviz's `dot` program, which is not "
                "installed (Debian/Ubuntu: apt-get install graphviz; macOS: brew install "
                "graphviz). Without it, `voucher diagram --format dot` prints the source.",
                file=sys.stderr,
            )
            return 1
        done = subprocess.run(
            [dot, "-Tsvg", "-o", args.output],
            input=render("dot"),
            text=True,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"voucher diagram: dot failed: {done.stderr.strip()}", file=sys.stderr)
            return 1
        return 0
    text = render(args.format)
    if args.output is None:
        print(text, end="")
        return 0
    try:
        Path(args.output).write_text(text)
    except OSError as error:  # a missing or read-only folder, a directory given as FILE...
        print(f"voucher diagram: cannot write {args.output}: {_reason(error)}", file=sys.stderr)
        return 1
    return 0


def _reason(error: OSError) -> str:
    """An OS error in words, without the Python class name or the errno number."""
    return error.strerror or str(error)


def _print_entry(entry: TimelineEntry) -> None:
    print(f"  {entry.actor:<18} {entry.text}")


def _simulate(args: argparse.Namespace) -> int:
    if args.http:
        _need("http", "urllib3", "aiohttp")
        _need("server", "uvicorn")
    if args.chaos:
        count = args.count if args.count is not None else 1000
        summary = run_chaos(
            count, args.seed, http=args.http, db=args.db, dsn=args.dsn, schema=schema_of(args)
        )
        if args.json:
            print(json.dumps(summary.as_json(), sort_keys=False))
        else:
            print(f"chaos run: {summary.count} sales, seed {args.seed}")
            for state, n in summary.final_states.items():
                print(f"  {state:<13} {n}")
            print(f"  flagged for reconciliation: {summary.reconciliation}")
            print("  what went wrong on purpose besides the network:")
            for name, n in summary.edges.items():
                print(f"    {name.replace('_', ' '):<26} {n}")
            print(f"  ledger mismatches: {summary.mismatches}")
            for tid in summary.mismatched_ids:
                print(f"    {tid}")
        return 0 if summary.mismatches == 0 else 1

    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    for index, name in enumerate(names):
        scenario = SCENARIOS[name]
        if args.json:
            result = run_scenario(
                scenario,
                seed=args.seed,
                http=args.http,
                db=args.db,
                dsn=args.dsn,
                schema=schema_of(args),
            )
            print(json.dumps(result.as_json()))
            continue
        if args.format == "mermaid":
            result = run_scenario(
                scenario,
                seed=args.seed,
                http=args.http,
                db=args.db,
                dsn=args.dsn,
                schema=schema_of(args),
            )
            if index:
                print()
            print(to_sequence_diagram(f"{name}: {scenario.title}", result.timeline), end="")
            continue
        if index:
            print()
        print(f"== {name}: {scenario.title}")
        result = run_scenario(
            scenario,
            seed=args.seed,
            on_entry=_print_entry,
            http=args.http,
            db=args.db,
            dsn=args.dsn,
            schema=schema_of(args),
        )
        active = "yes" if result.provider_voucher_active else "no"
        print(
            f"  => {result.final_state}, customer {result.outcome}; provider voucher active: "
            f"{active}; reconciliation: {'yes' if result.reconciliation else 'no'}"
        )
    return 0


class MissingExtra(VoucherError):
    """An optional dependency group is not installed."""


def _need(extra: str, *modules: str) -> None:
    try:
        for module in modules:
            __import__(module)
    except ImportError as error:
        hint = f"pip install 'voucher-core[{extra}]'"
        if extra == "postgres":
            # Plain psycopg also needs a libpq: the system's, or one of psycopg's own builds.
            hint += " 'psycopg[binary]' (or a system libpq)"
        found = f" ({error})" if error.name not in modules else ""
        raise MissingExtra(f"this command needs the [{extra}] extra: {hint}{found}") from None


def _serve(args: argparse.Namespace) -> int:
    _need("server", "uvicorn")
    from voucher_adapters.simulator.server import serve  # noqa: PLC0415  (an optional extra)

    def listening(url: str) -> None:  # once the port is bound: --port 0 shows the one it got
        print(f"voucher simulator listening on {url} (Ctrl-C stops)", file=sys.stderr, flush=True)

    serve(args.host, args.port, seed=args.seed, on_listening=listening)
    return 0


def _provision_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.concurrency > args.count:
        parser.error("--concurrency cannot exceed --count")
    args.access = access(args, parser)
    if args.access.oauth2 is None:
        args.username, args.password = credentials(args, parser)
    return _provision(args)


def _provision(args: argparse.Namespace) -> int:
    _need("http", "urllib3", "aiohttp")
    from voucher_adapters.cli.provision import SaleOptions, run_load, run_sale  # noqa: PLC0415

    try:
        options = SaleOptions(
            url=args.url,
            product=args.product,
            amount=args.amount,
            messaging=Messaging(args.messaging),
            username=args.username,
            password=args.password,
            terminal_id=args.terminal_id,
            timeout=args.timeout,
            drain_timeout=args.drain_timeout,
            db=args.db,
            dsn=args.dsn,
            schema=schema_of(args),
            access=args.access,
        )
        if args.count == 1:
            result = run_sale(options, on_entry=None if args.json else _print_entry)
        else:
            terminal = sys.stderr.isatty()
            summary = run_load(
                options,
                args.count,
                args.concurrency,
                _progress_on_terminal if terminal else _progress_line,
                every=args.progress_every or (0.5 if terminal else 5.0),
            )
    except ValueError as error:  # a malformed URL, terminal id, product id...
        print(f"voucher provision: {_shown(str(error), args)}", file=sys.stderr)
        return 2
    if args.count > 1:
        _print_load(summary.as_json(), args.json)
        return _report_undelivered(
            summary.undelivered, db=args.db, dsn=args.dsn, schema=args.schema
        )
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        tx = result.transaction
        print(
            f"  => {tx.state}, customer {tx.outcome}; reconciliation: "
            f"{'yes: ' + tx.reconciliation if tx.reconciliation else 'no'}"
        )
    return _report_undelivered(result.undelivered, db=args.db, dsn=args.dsn, schema=args.schema)


def _report_undelivered(
    bodies: list[bytes], *, db: str | None, dsn: str | None, schema: str | None = None
) -> int:
    """Say what the command could not deliver. Stored in ``db`` or ``dsn``, it is safe and
    waits for ``voucher queue drain`` (the command to run is printed, with the ``schema`` the
    command was given and the DSN's password left out: PostgreSQL's client reads it from
    ``PGPASSWORD`` or ``~/.pgpass``); held only in memory, it is printed
    in full and the exit is 1."""
    if db is not None or dsn is not None:
        if bodies:
            where = ["--db", db] if db is not None else ["--dsn", redact_dsn(dsn or "")]
            place = where[1]
            if db is None and schema is not None:
                where += ["--schema", schema]
                place += f" (schema {schema})"
            print(
                f"voucher provision: {len(bodies)} advice(s) stay queued in {place}; "
                f"deliver them with `voucher queue drain {shlex.join(where)} --url URL`",
                file=sys.stderr,
            )
        return 0
    for body in bodies:
        print(
            "voucher provision: this advice could not be delivered and is not stored anywhere "
            f"else; deliver it by other means: {body.decode()}",
            file=sys.stderr,
        )
    return 1 if bodies else 0


def _progress_text(progress: Progress) -> str:
    return (
        f"  {progress.done}/{progress.total} sales in {progress.seconds:.1f} s, "
        f"{progress.rate:.1f}/s, {progress.errors} errors"
    )


def _progress_on_terminal(progress: Progress) -> None:
    end = "\n" if progress.done == progress.total else ""
    print(f"\r{_progress_text(progress)}\033[K", end=end, file=sys.stderr, flush=True)


def _progress_line(progress: Progress) -> None:
    """One whole line each time, for a log file, a pipe or a CI job: no carriage returns."""
    print(_progress_text(progress), file=sys.stderr, flush=True)


def _print_load(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    print(
        f"{summary['count']} sales in {summary['seconds']} s: {summary['sales_per_second']} sales/s"
    )
    for state, n in summary["final_states"].items():
        if n:
            print(f"  {state:<13} {n}")
    if summary["failed"]:
        print(f"  {'failed':<13} {summary['failed']}")
    latency = summary["latency_ms"]
    print(
        "  latency ms: "
        + "  ".join(f"{name} {latency[name]}" for name in ("min", "mean", "p50", "p95", "p99"))
        + f"  max {latency['max']}"
    )
    print(
        "  exchanges:  "
        + ", ".join(f"{n} {operation}" for operation, n in summary["operations"].items())
    )
    print(
        "  statuses:   " + ", ".join(f"{status}: {n}" for status, n in summary["statuses"].items())
    )
    print(f"  retries: {summary['retries']}  errors: {summary['errors']}")
    print(f"  flagged for reconciliation: {summary['reconciliation']}")
    print(f"  advices left undelivered: {summary['undelivered']}")


def _shown(text: str, args: argparse.Namespace) -> str:
    """``text`` fit to print: the command's URL and DSN redacted, and no password in it, whether
    it came from the command line or the environment (``args.secrets``, set by :func:`main`)."""
    return scrub(
        text,
        urls=[getattr(args, "url", None)],
        dsns=[getattr(args, "dsn", None)],
        secrets=getattr(args, "secrets", ()),
    )


def _simulate_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.count is not None and not args.chaos:
        parser.error("--count applies only to --chaos")
    if args.format == "mermaid" and (args.chaos or args.json):
        parser.error("--format mermaid applies to --scenario runs without --json")
    return _simulate(args)


def _lookup(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _need("http", "urllib3", "aiohttp")
    query = lookup_query(args, parser)
    args.username, args.password = credentials(args, parser)
    return run_lookup(args, query)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Read before credentials() puts a password (perhaps the demo's) in args.password.
    args.secrets = [
        getattr(args, "password", None),
        os.environ.get(PASSWORD_ENV),
        os.environ.get(CLIENT_SECRET_ENV),
    ]
    check_schema_option(args, parser)
    try:
        if getattr(args, "dsn", None) is not None:
            _need("postgres", "psycopg")
            _need("postgres", "psycopg_pool")
        if args.command == "simulate":
            return _simulate_command(args, parser)
        if args.command == "serve":
            return _serve(args)
        if args.command in STORE_COMMANDS:
            return run_store_command(args, parser)
        if args.command == "lookup":
            return _lookup(args, parser)
        if args.command == "provision":
            return _provision_command(args, parser)
        return _diagram(args)
    except MissingExtra as missing:
        print(f"voucher: {missing}", file=sys.stderr)
        return 2
    except VoucherError as error:  # storage failures, a missing database: say what, no traceback
        print(f"voucher: {_shown(str(error), args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C: what was journaled stays journaled (voucher recover carries it on).
        print("voucher: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``voucher ... | head``): stop quietly, as Unix tools do.
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
