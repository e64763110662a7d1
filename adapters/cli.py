"""The ``voucher`` command: simulate the seed flows, stress the library, draw the diagram."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from adapters.chaos import run_chaos
from adapters.scenarios import SCENARIOS, TimelineEntry, run_scenario
from voucher_core.diagram import FORMATS, render

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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="voucher",
        description="Voucher sales through the Electrum switch as explicit state machines.",
    )
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

    diagram = commands.add_parser(
        "diagram",
        help="print the state diagram generated from the transition table",
        description="Print the transaction state diagram, generated from the transition table.",
    )
    diagram.add_argument("--format", choices=sorted(FORMATS), default="mermaid")
    return parser


def _print_entry(entry: TimelineEntry) -> None:
    print(f"  {entry.actor:<18} {entry.text}")


def _simulate(args: argparse.Namespace) -> int:
    if args.chaos:
        summary = run_chaos(args.count if args.count is not None else 1000, args.seed)
        if args.json:
            print(json.dumps(summary.as_json(), sort_keys=False))
        else:
            print(f"chaos run: {summary.count} sales, seed {args.seed}")
            for state, n in summary.final_states.items():
                print(f"  {state:<13} {n}")
            print(f"  flagged for reconciliation: {summary.reconciliation}")
            print(f"  ledger mismatches: {summary.mismatches}")
            for tid in summary.mismatched_ids:
                print(f"    {tid}")
        return 0 if summary.mismatches == 0 else 1

    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    for index, name in enumerate(names):
        scenario = SCENARIOS[name]
        if args.json:
            result = run_scenario(scenario, seed=args.seed)
            print(json.dumps(result.as_json()))
            continue
        if index:
            print()
        print(f"== {name}: {scenario.title}")
        result = run_scenario(scenario, seed=args.seed, on_entry=_print_entry)
        active = "yes" if result.provider_voucher_active else "no"
        print(
            f"  => {result.final_state}, customer {result.outcome}; provider voucher active: "
            f"{active}; reconciliation: {'yes' if result.reconciliation else 'no'}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            if args.count is not None and not args.chaos:
                parser.error("--count applies only to --chaos")
            return _simulate(args)
        print(render(args.format), end="")
    except BrokenPipeError:
        # The reader went away (``voucher ... | head``): stop quietly, as Unix tools do.
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
