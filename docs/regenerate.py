"""Rewrite the generated parts of docs/ from the code (run by `make diagram`)."""

from __future__ import annotations

import re
from pathlib import Path

from voucher_adapters.cli.scenarios import SCENARIOS, run_scenario
from voucher_adapters.cli.sequence_diagram import to_sequence_diagram
from voucher_core.diagram import to_dot, to_mermaid

DOCS = Path(__file__).resolve().parent

# Which test in tests/test_flows.py proves each flow (names without their test_ prefix).
PROOF = {
    "dual-success": "successful_voucher_provision_dual_messaging",
    "single-success": "successful_voucher_provision_single_messaging_is_complete_on_the_response",
    "timeout-then-success": "error_or_timeout_at_originating_system_retry_returns_the_voucher",
    "timeout-retries-fail": "error_or_timeout_at_originating_system_retries_fail_then_reversal",
    "upstream-declined": "error_upstream_transaction_failed_hard_decline_sends_nothing_more",
    "upstream-unknown-then-success": "error_upstream_unknown_transaction_outcome_retry_succeeds",
    "upstream-retries-fail": "error_upstream_retries_fail_then_reversal",
    "no-retry-provider": "netcare_and_stellr_do_not_support_retries_so_a_timeout_goes_to_reversal",
    "no-advice-provider": "stellr_does_not_support_advices_so_electrum_consumes_them",
    "cancelled-after-provision": "customer_cancels_after_provision_so_the_voucher_is_reversed",
}


def flows_page() -> str:
    """docs/flows.md: one generated sequence diagram per seed flow."""
    fence = "`" * 3
    parts = [
        "# The seed flows, step by step\n",
        "Each diagram below is what `voucher simulate --scenario NAME --format mermaid` prints: "
        "the library's real run against the switch simulator, with every message and reply, "
        "the switch's store-and-forward legs, and the state changes as notes. `make diagram` "
        "regenerates this page and `tests/test_diagram.py` fails when it drifts from the code. "
        "Beside each is the test in `tests/test_flows.py` that proves the flow, in-process and "
        "over HTTP.\n",
    ]
    for name, scenario in SCENARIOS.items():
        result = run_scenario(scenario)
        diagram = to_sequence_diagram(f"{name}: {scenario.title}", result.timeline)
        parts.append(f"## {name}\n")
        parts.append(
            f"{scenario.title[0].upper()}{scenario.title[1:]}. Proved by `test_{PROOF[name]}`.\n"
        )
        parts.append(f"{fence}mermaid\n{diagram}{fence}\n")
    return "\n".join(parts)


def main() -> None:
    mermaid = to_mermaid()
    (DOCS / "state-diagram.mmd").write_text(mermaid)
    (DOCS / "state-diagram.dot").write_text(to_dot())
    page = DOCS / "state-machine.md"
    fence = "`" * 3
    block = re.compile(rf"{fence}mermaid\n.*?{fence}", flags=re.S)
    page.write_text(block.sub(lambda _: f"{fence}mermaid\n{mermaid}{fence}", page.read_text(), 1))
    (DOCS / "flows.md").write_text(flows_page())


if __name__ == "__main__":
    main()
