"""The HTTP commands as a newcomer runs them: `voucher serve` in one process, `voucher
provision` in another, and `voucher simulate --http`, all over real loopback sockets."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

VOUCHER = [sys.executable, "-m", "voucher_adapters.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(
    *args: str, timeout: float = 120.0, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``voucher``; ``env`` sets (or, with None, removes) environment variables."""
    environ = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run(
        [*VOUCHER, *args], capture_output=True, text=True, timeout=timeout, check=False, env=environ
    )


@contextlib.contextmanager
def serving() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    server = subprocess.Popen(
        [*VOUCHER, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert server.poll() is None, server.communicate()[1]
            time.sleep(0.05)
        else:
            pytest.fail("voucher serve did not start listening within 20 s")
        yield f"http://127.0.0.1:{port}/suv/v1", server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with serving() as (url, _):
        yield url


def test_a_dual_messaging_sale_completes_against_voucher_serve(server_url: str) -> None:
    result = run("provision", "--url", server_url, "--product", "AIRTIME10", "--amount", "1500")
    assert result.returncode == 0, result.stderr
    assert "provisionVoucher" in result.stdout and "confirmVoucher" in result.stdout
    assert "PROVISIONED -> CONFIRMING" in result.stdout
    assert "=> DONE, customer approved" in result.stdout
    assert "Traceback" not in result.stderr


def test_provision_json_matches_the_simulate_shape(server_url: str) -> None:
    result = run(
        "provision", "--url", server_url, "--product", "AIRTIME10", "--amount", "500", "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == {
        "id",
        "messaging",
        "final_state",
        "outcome",
        "operations",
        "reconciliation",
    }
    assert summary["final_state"] == "DONE" and summary["outcome"] == "approved"
    assert summary["operations"] == ["provisionVoucher", "confirmVoucher"]
    assert summary["messaging"] == "dual" and summary["reconciliation"] is False


def test_the_username_is_the_client_id_and_single_messaging_needs_no_confirmation(
    server_url: str,
) -> None:
    result = run(
        "provision",
        *("--url", server_url, "--product", "DATA1GB", "--amount", "9900"),
        *("--messaging", "single", "--username", "till-0042", "--password", "s3cret", "--json"),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["operations"] == ["provisionVoucher"] and summary["final_state"] == "DONE"
    assert "s3cret" not in result.stdout + result.stderr


def test_the_password_can_come_from_the_environment_and_is_never_sent_empty(
    server_url: str,
) -> None:
    sale = ("provision", "--url", server_url, "--product", "AIRTIME10", "--amount", "1000")
    for unset in ("", None):
        refused = run(*sale, "--username", "till-0042", env={"VOUCHER_PASSWORD": unset})
        assert refused.returncode == 2, refused.stderr
        assert "--username till-0042 needs --password or VOUCHER_PASSWORD set" in refused.stderr
    given = run(*sale, "--username", "till-0042", "--json", env={"VOUCHER_PASSWORD": "s3cret"})
    assert given.returncode == 0, given.stderr
    summary = json.loads(given.stdout)
    assert summary["final_state"] == "DONE"
    assert "s3cret" not in given.stdout + given.stderr


def test_load_mode_reports_throughput_and_latency_percentiles(server_url: str) -> None:
    result = run(
        "provision",
        *("--url", server_url, "--product", "AIRTIME10", "--amount", "1000"),
        *("--count", "40", "--concurrency", "8", "--json"),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["count"] == 40
    assert summary["final_states"]["DONE"] == 40
    assert summary["undelivered"] == 0 and summary["reconciliation"] == 0
    assert summary["sales_per_second"] > 0
    latency = summary["latency_ms"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p95"]
    assert latency["p95"] <= latency["p99"] <= latency["max"]
    assert latency["min"] <= latency["mean"] <= latency["max"]
    assert summary["operations"] == {"provisionVoucher": 40, "confirmVoucher": 40}
    assert summary["statuses"] == {"201": 40, "202": 40}
    assert summary["retries"] == 0 and summary["errors"] == 0 and summary["failed"] == 0


def test_load_mode_reports_progress_in_whole_lines_without_a_terminal(server_url: str) -> None:
    result = run(
        "provision",
        *("--url", server_url, "--product", "AIRTIME10", "--amount", "1000"),
        *("--count", "60", "--concurrency", "4", "--progress-every", "0.05"),
    )
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines, "no progress was reported"
    assert all(re.fullmatch(r"  \d+/60 sales in [\d.]+ s, [\d.]+/s, \d+ errors", x) for x in lines)
    assert lines[-1].startswith("  60/60 sales") and lines[-1].endswith(", 0 errors")
    # The summary names every figure the JSON carries.
    out = result.stdout
    for figure in ("latency ms: min", "mean", "p95", "p99", "max", "60 provisionVoucher"):
        assert figure in out
    assert "201: 60" in out and "202: 60" in out
    assert "retries: 0  errors: 0" in out and "flagged for reconciliation: 0" in out


def test_an_unreachable_switch_ends_declined_and_hands_over_the_undelivered_reversal() -> None:
    closed = f"http://127.0.0.1:{free_port()}/suv/v1"
    result = run(
        "provision",
        *("--url", closed, "--product", "AIRTIME10", "--amount", "1000"),
        *("--timeout", "0.5", "--drain-timeout", "2", "--json"),
        timeout=120,
    )
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["final_state"] == "REVERSING" and summary["outcome"] == "declined"
    assert summary["operations"][:4] == ["provisionVoucher"] + ["retryProvisionVoucher"] * 3
    assert "could not be delivered" in result.stderr
    advice = json.loads(result.stderr.split("deliver it by other means: ", 1)[1])
    assert advice["requestId"] == summary["id"] and advice["reversalReason"] == "TIMEOUT"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--url", "ftp://example.invalid/suv", "--product", "A1", "--amount", "1"),
        ("--url", "http://127.0.0.1:1/suv/v1", "--product", "no spaces!", "--amount", "1"),
        ("--url", "http://127.0.0.1:1/suv/v1", "--product", "A1", "--amount", "0"),
        ("--url", "http://127.0.0.1:1/suv/v1", "--product", "A1"),
        ("--url", "http://127.0.0.1:1", "--product", "A1", "--amount", "1", "--password", "x"),
    ],
)
def test_bad_provision_arguments_are_a_clear_error(args: tuple[str, ...]) -> None:
    result = run("provision", *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip(), "an error must say what was wrong"


def test_serve_stops_cleanly_on_interrupt() -> None:
    with serving() as (_, server):
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=15)
    assert server.returncode == 0
    assert "Traceback" not in stderr
    assert "listening on http://127.0.0.1:" in stderr


def test_simulate_over_http_gives_the_same_outcomes_as_in_process() -> None:
    over_http = run("simulate", "--scenario", "all", "--json", "--http", timeout=180)
    in_process = run("simulate", "--scenario", "all", "--json")
    assert over_http.returncode == 0, over_http.stderr
    lines = [json.loads(line) for line in over_http.stdout.splitlines()]
    assert len(lines) == 10
    assert lines == [json.loads(line) for line in in_process.stdout.splitlines()]


def test_chaos_over_http_leaves_no_mismatch() -> None:
    result = run("simulate", "--chaos", "--count", "40", "--seed", "4", "--json", "--http")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["count"] == 40 and summary["mismatches"] == 0
    ended = summary["final_states"]["DONE"] + summary["final_states"]["DECLINED"]
    assert ended + summary["edges"]["never_recorded"] == 40


def test_recover_resumes_only_the_named_owners_sales(server_url: str, tmp_path: Path) -> None:
    """Two lanes share one journal; `voucher recover` without --owner leaves lane-1's sale
    alone (lane-1 may still be driving it), `--owner lane-1` takes it over."""
    from sqlite_samples import Samples  # noqa: PLC0415

    from voucher_adapters.stores.sqlite import SqliteJournal  # noqa: PLC0415
    from voucher_core import State  # noqa: PLC0415

    db = str(tmp_path / "voucher.db")
    samples = Samples(7)
    lane_sale, unowned_sale = samples.provisioned(), samples.provisioned()
    with SqliteJournal(db, owner="lane-1") as lane, SqliteJournal(db) as alone:
        lane.record(lane_sale, decision_deadline=0.0)
        alone.record(unowned_sale, decision_deadline=0.0)

    def states() -> dict[str, State]:
        with SqliteJournal(db) as journal:
            return {e.transaction.id: e.transaction.state for e in journal.entries()}

    first = run("recover", "--db", db, "--url", server_url)
    assert first.returncode == 0, first.stderr
    assert "resumed 1 sale(s)" in first.stdout
    assert states() == {lane_sale.id: State.PROVISIONED, unowned_sale.id: State.DECLINED}
    second = run("recover", "--db", db, "--owner", "lane-1", "--url", server_url)
    assert second.returncode == 0, second.stderr
    assert "resumed 1 sale(s)" in second.stdout
    assert states() == {lane_sale.id: State.DECLINED, unowned_sale.id: State.DECLINED}
