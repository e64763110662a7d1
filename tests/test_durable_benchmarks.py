"""The durable benchmarks still run and print their ``BENCH`` lines (a handful of sales each,
no figures checked): ``make bench`` is not run by the suite, and a change to a port or to the
simulator's signature would otherwise break it unseen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pg import PG_DSN, require_postgres

ROOT = Path(__file__).resolve().parent.parent


def bench(script: str, *argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *argv],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_sqlite_benchmark_prints_its_bench_line() -> None:
    out = bench("bench_durable.py", "--count", "20", "--rounds", "1", "--in-flight", "5")
    [line] = [line for line in out.splitlines() if line.startswith("BENCH durable ")]
    assert "seq_commits_per_sale=4.00" in line, line
    assert "concurrent_tps=" in line and "seq_of_raw=" in line, line


def test_the_postgres_benchmark_prints_its_bench_line() -> None:
    require_postgres()
    out = bench(
        "bench_postgres.py", "--count", "10", "--rounds", "1", env={"VOUCHER_BENCH_PG_DSN": PG_DSN}
    )
    [line] = [line for line in out.splitlines() if line.startswith("BENCH postgres ")]
    assert "tps_16=" in line, line
