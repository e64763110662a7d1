"""The ``voucher`` command, in-process and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voucher_adapters.cli.main import main
from voucher_adapters.cli.scenarios import SCENARIOS
from voucher_core.diagram import render
from voucher_core.table import TERMINAL, State

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "scenario",
    "messaging",
    "final_state",
    "outcome",
    "operations",
    "provider_voucher_active",
    "reconciliation",
}
P, R = "provisionVoucher", "retryProvisionVoucher"
C, V = "confirmVoucher", "reverseVoucher"

# scenario: (messaging, final_state, outcome, operations, provider voucher active)
EXPECTED: dict[str, tuple[str, str, str, list[str], bool]] = {
    "dual-success": ("dual", "DONE", "approved", [P, C], True),
    "single-success": ("single", "DONE", "approved", [P], True),
    "timeout-then-success": ("dual", "DONE", "approved", [P, R, C], True),
    "timeout-retries-fail": ("dual", "DECLINED", "declined", [P, R, R, R, V], False),
    "upstream-declined": ("dual", "DECLINED", "declined", [P], False),
    "upstream-unknown-then-success": ("dual", "DONE", "approved", [P, R, C], True),
    "upstream-retries-fail": ("dual", "DECLINED", "declined", [P, R, R, R, V], False),
    "no-retry-provider": ("dual", "DECLINED", "declined", [P, V], False),
    "no-advice-provider": ("dual", "DONE", "approved", [P, C], True),
    "cancelled-after-provision": ("dual", "DECLINED", "declined", [P, V], False),
}


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        assert isinstance(exit_.code, int)
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voucher_adapters.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# -- the seed flows ----------------------------------------------------------------------------


def test_every_scenario_is_covered_by_the_expectations() -> None:
    assert set(EXPECTED) == set(SCENARIOS)


def test_simulate_all_as_json_prints_one_line_per_scenario(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(capsys, "simulate", "--scenario", "all", "--json")
    assert code == 0
    assert err == ""
    results = json_lines(out)
    assert len(results) == 10
    assert [r["scenario"] for r in results] == list(SCENARIOS)
    for result in results:
        assert set(result) == KEYS, result["scenario"]
        assert result["reconciliation"] is False


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_scenario_ends_as_its_seed_flow_says(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, out, _ = run_main(capsys, "simulate", "--scenario", name, "--json")
    assert code == 0
    [result] = json_lines(out)
    messaging, final_state, outcome, operations, active = EXPECTED[name]
    assert result == {
        "scenario": name,
        "messaging": messaging,
        "final_state": final_state,
        "outcome": outcome,
        "operations": operations,
        "provider_voucher_active": active,
        "reconciliation": False,
    }


def test_simulate_all_as_json_in_a_real_process() -> None:
    done = run_process("simulate", "--scenario", "all", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    results = json_lines(done.stdout)
    assert len(results) == 10
    by_name = {r["scenario"]: r for r in results}
    for name, (_, final_state, outcome, operations, active) in EXPECTED.items():
        result = by_name[name]
        assert set(result) == KEYS
        assert (result["final_state"], result["outcome"]) == (final_state, outcome), name
        assert result["operations"] == operations, name
        assert result["provider_voucher_active"] is active, name


def test_the_timeline_shows_what_was_sent_what_came_back_and_each_state_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_main(capsys, "simulate", "--scenario", "timeout-then-success")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("== timeout-then-success: ")

    def at(*words: str) -> int:
        for index, line in enumerate(lines):
            if all(word in line for word in words):
                return index
        raise AssertionError(f"no line with {words} in:\n{out}")

    steps = [
        at("POS -> switch", "provisionVoucher id="),
        at("switch -> POS", "outcome unknown", "no answer within 60 s"),
        at("state", "PROVISIONING -> RETRYING"),
        at("POS -> switch", "retryProvisionVoucher id="),
        at("switch -> POS", "200 ProvisionResponse"),
        at("state", "RETRYING -> PROVISIONED"),
        at("host", "confirm"),
        at("state", "PROVISIONED -> CONFIRMING"),
        at("POS -> switch", "confirmVoucher id="),
        at("switch -> POS", "202 acknowledged"),
        at("state", "CONFIRMING -> DONE"),
        at("switch->provider", "confirmVoucher"),
        at("provider->switch", "confirmed"),
    ]
    assert steps == sorted(steps)
    # The retry carries the provision's own id.
    provision_id = lines[steps[0]].rsplit("id=", 1)[1]
    assert lines[steps[3]].endswith(f"id={provision_id}")
    assert lines[-1].strip() == (
        "=> DONE, customer approved; provider voucher active: yes; reconciliation: no"
    )


def test_the_timeline_of_a_hard_decline_shows_nothing_after_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_main(capsys, "simulate", "--scenario", "upstream-declined")
    assert code == 0
    sent = [line for line in out.splitlines() if "POS -> switch" in line]
    assert len(sent) == 1
    assert "hard decline" in out
    assert "DO_NOT_HONOUR" in out
    assert "PROVISIONING -> DECLINED" in out
    assert out.rstrip().endswith(
        "=> DECLINED, customer declined; provider voucher active: no; reconciliation: no"
    )


def test_simulate_all_as_text_prints_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "simulate", "--scenario", "all")
    assert code == 0
    headers = [line for line in out.splitlines() if line.startswith("== ")]
    assert [h[3:].split(":")[0] for h in headers] == list(SCENARIOS)
    assert out.count("=> ") == 10


# -- chaos ------------------------------------------------------------------------------------


def test_a_chaos_run_ends_every_sale_and_the_money_adds_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(
        capsys, "simulate", "--chaos", "--count", "300", "--seed", "3", "--json"
    )
    assert code == 0
    assert err == ""
    [summary] = json_lines(out)
    assert set(summary) == {"count", "final_states", "mismatches", "reconciliation", "edges"}
    assert summary["count"] == 300
    assert summary["mismatches"] == 0
    states = summary["final_states"]
    assert set(states) == {state.value for state in State}
    assert sum(states.values()) + summary["edges"]["never_recorded"] == 300
    for state in State:
        if state not in TERMINAL:
            assert states[state.value] == 0, state
    assert states["DONE"] > 0
    assert states["DECLINED"] > 0


def test_the_same_seed_gives_the_same_chaos_run(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("simulate", "--chaos", "--count", "300", "--seed", "3", "--json")
    first = run_main(capsys, *argv)
    second = run_main(capsys, *argv)
    assert first == second
    other = run_main(capsys, "simulate", "--chaos", "--count", "300", "--seed", "4", "--json")
    assert other[0] == 0
    assert json.loads(other[1])["final_states"] != json.loads(first[1])["final_states"]


def test_a_chaos_run_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "simulate", "--chaos", "--count", "50", "--seed", "1")
    assert code == 0
    assert out.startswith("chaos run: 50 sales, seed 1\n")
    assert "ledger mismatches: 0" in out
    assert "flagged for reconciliation:" in out


# -- the diagram ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_the_diagram_is_printed_from_the_table(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    code, out, _ = run_main(capsys, "diagram", "--format", fmt)
    assert code == 0
    assert out == render(fmt)
    assert "PROVISIONING" in out


# -- usage errors ---------------------------------------------------------------------------

USAGE_ERRORS = [
    ["simulate", "--scenario", "no-such-flow"],
    ["simulate", "--chaos", "--count", "0"],
    ["simulate", "--chaos", "--count", "-5"],
    ["simulate", "--chaos", "--count", "abc"],
    ["simulate", "--chaos", "--seed", "x"],
    [],
    ["simulate"],
    ["simulate", "--scenario", "all", "--chaos"],
    ["diagram", "--format", "png"],
    ["simulate", "--scenario", "all", "--count", "5"],
    ["frobnicate"],
]


@pytest.mark.parametrize("argv", USAGE_ERRORS, ids=" ".join)
def test_usage_errors_exit_2_with_usage_and_no_traceback(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 2
    assert "usage:" in err
    assert "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize(
    "argv",
    [["simulate", "--chaos", "--count", "abc"], ["diagram", "--format", "png"], []],
    ids=" ".join,
)
def test_usage_errors_in_a_real_process(argv: list[str]) -> None:
    done = run_process(*argv)
    assert done.returncode == 2
    assert "usage:" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_count_without_chaos_is_a_usage_error_even_at_the_default_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_main(capsys, "simulate", "--scenario", "dual-success", "--count", "1000")
    assert code == 2
    assert "usage:" in err
    assert "--count applies only to --chaos" in err
