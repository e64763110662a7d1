"""The chaos run: every failure it injects strikes, the money adds up, and its checks can fail.

The runs here are short; `voucher simulate --chaos --count 100000` is the long one (see
docs/testing.md). Each check is shown to catch the defect it exists for, by running the same
chaos against a library with that defect put back in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import voucher_core.replies
from voucher_adapters.cli.chaos import ChaosEdges, ChaosSummary, run_chaos
from voucher_core.messages import ErrorType
from voucher_core.transaction import Transaction

# Every failure often enough to strike within a few hundred sales.
OFTEN = ChaosEdges(
    storage_failure_rate=0.02,
    observer_failure_rate=0.05,
    restart_rate=0.02,
    recover_rate=0.05,
    second_process_rate=0.01,
)


def _every_edge_struck(summary: ChaosSummary) -> None:
    for name, count in summary.edges.items():
        assert count > 0, f"{name} never happened"


def test_every_failure_strikes_on_a_sqlite_journal_and_the_money_adds_up(tmp_path: Path) -> None:
    summary = run_chaos(400, 5, db=str(tmp_path / "chaos.db"), edges=OFTEN)

    assert summary.mismatches == 0, summary.mismatched_ids
    _every_edge_struck(summary)
    ended = sum(summary.final_states.values())
    assert ended + summary.edges["never_recorded"] == summary.count
    assert summary.final_states["DONE"] > 0 and summary.final_states["DECLINED"] > 0


def test_in_memory_there_is_no_second_process_and_the_rest_strikes() -> None:
    summary = run_chaos(400, 6, edges=OFTEN)

    assert summary.mismatches == 0, summary.mismatched_ids
    assert summary.edges["second_processes_refused"] == 0
    _every_edge_struck(
        ChaosSummary(0, {}, 0, 0, {k: v for k, v in summary.edges.items() if "second" not in k})
    )


def test_without_edges_only_the_network_fails() -> None:
    summary = run_chaos(300, 3, edges=ChaosEdges.none())

    assert summary.mismatches == 0
    quiet = {"storage_failures", "calls_failed", "observer_failures", "restarts", "recoveries"}
    assert {name: summary.edges[name] for name in quiet} == dict.fromkeys(quiet, 0)
    assert summary.edges["never_recorded"] == 0
    assert summary.edges["approvals_without_proof"] > 0  # the switch still misbehaves
    assert summary.edges["duplicate_records"] > 0


# -- the checks can fail --------------------------------------------------------------------


def test_an_approval_taken_without_proof_is_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voucher_core.replies, "_doubt", lambda *_: None)

    summary = run_chaos(300, 1, edges=ChaosEdges.none())

    assert summary.mismatches > 0


def test_a_duplicate_record_taken_for_a_decline_is_a_mismatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(voucher_core.replies, "_ALREADY_USED", ErrorType.INVALID_VOUCHER)

    summary = run_chaos(300, 1, edges=ChaosEdges.none())

    assert summary.mismatches > 0


def test_a_sale_finished_behind_its_host_is_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    def forget_the_host(self: Transaction, **_: Any) -> None:
        return None  # the defect: the sale goes on as if its host were still there

    monkeypatch.setattr(Transaction, "host_gone", forget_the_host)

    summary = run_chaos(400, 5, edges=OFTEN)

    assert summary.mismatches > 0
