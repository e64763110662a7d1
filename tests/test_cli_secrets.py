"""No password in any output of the `voucher` command.

A PostgreSQL DSN with its password, a base URL with a secret in its user info or its query:
the commands run as subprocesses (against a real simulator on loopback and a real PostgreSQL
database) and neither stdout nor stderr may hold the secret. The hint `voucher provision`
gives for advices left queued names the right option, and the command it prints works.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import httpx
from cli_stores import fresh_database, url_dsn, voucher

from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.simulator.server import RunningServer, create_app
from voucher_adapters.stores.redaction import redact_dsn, redact_url, scrub
from voucher_adapters.stores.sqlite import SqliteJournal

PASSWORD = "Pa55-w0rd-NEVER-SHOWN"
QUERY_SECRET = "Query-S3cret-Value"
USER_SECRET = "UserInfo-S3cret"


def quiet(result_text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result_text, f"{secret!r} was printed:\n{result_text}"


def test_provision_on_a_dsn_with_a_password_never_prints_it_and_hints_the_right_command(
    tmp_path: Path,
) -> None:
    switch = SwitchSimulator(seed=9)
    with fresh_database() as plain, RunningServer(create_app(switch)) as server:
        dsn = url_dsn(plain, password=PASSWORD)
        shown = url_dsn(plain)
        admin = f"{server.url}/testServerAdmin"
        fault = {"operation": "confirmVoucher", "kind": "unavailable", "times": 1000}
        httpx.post(f"{admin}/faults", json=fault, timeout=10).raise_for_status()
        sale = ("provision", "--url", server.url, "--product", "AIRTIME10", "--amount", "1000")
        for extra in ((), ("--json",), ("--count", "2", "--json")):
            result = voucher(*sale, "--dsn", dsn, "--drain-timeout", "1", *extra)
            assert result.returncode == 0, result.stderr
            quiet(result.stdout + result.stderr, PASSWORD)
            hint = f"deliver them with `voucher queue drain --dsn {shown} --url URL`"
            assert hint in result.stderr, result.stderr
            assert f"stay queued in {shown};" in result.stderr
        # The command the hint gives works (PostgreSQL's client finds the password elsewhere;
        # this server trusts the loopback).
        httpx.post(f"{admin}/heal", timeout=10).raise_for_status()
        printed = result.stderr.split("deliver them with `", 1)[1].split("`", 1)[0]
        words = shlex.split(printed.replace("URL", server.url))
        drained = voucher(*words[1:])
        assert drained.returncode == 0, drained.stdout + drained.stderr
        assert "0 advice(s) still waiting" in drained.stdout

        # A store that cannot be reached: the error names it without the password.
        gone = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/nowhere"
        failed = voucher("journal", "list", "--dsn", gone)
        assert (
            failed.returncode == 1 and "postgresql://postgres@127.0.0.1:1/nowhere" in failed.stderr
        )
        quiet(failed.stdout + failed.stderr, PASSWORD)

    # On SQLite the hint names --db, as it did.
    db = str(tmp_path / "pos.db")
    with RunningServer(create_app(SwitchSimulator(seed=9))) as server:
        httpx.post(
            f"{server.url}/testServerAdmin/faults",
            json={"operation": "confirmVoucher", "kind": "unavailable", "times": 1000},
            timeout=10,
        ).raise_for_status()
        result = voucher(
            "provision", "--url", server.url, "--product", "AIRTIME10", "--amount", "1000",
            "--db", db, "--drain-timeout", "1",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"`voucher queue drain --db {db} --url URL`" in result.stderr


URLS = (
    (f"http://127.0.0.1:9/suv/v1?password={QUERY_SECRET}", QUERY_SECRET),
    (f"http://127.0.0.1:9/suv/v1?client=till&token={QUERY_SECRET}#frag", QUERY_SECRET),
    (f"http://till:{USER_SECRET}@127.0.0.1:9/suv/v1", USER_SECRET),
    (f"https://till:{USER_SECRET}@127.0.0.1:9/suv/v1?password={QUERY_SECRET}", QUERY_SECRET),
)


def test_a_base_url_with_a_secret_is_never_echoed(tmp_path: Path) -> None:
    db = str(tmp_path / "pos.db")
    SqliteJournal(db).close()  # a store to work on
    for url, secret in URLS:
        sold = voucher("provision", "--url", url, "--product", "AIRTIME10", "--amount", "1000")
        assert sold.returncode == 2 and sold.stderr.strip() and "Traceback" not in sold.stderr
        quiet(sold.stdout + sold.stderr, secret, USER_SECRET)
        if "?" in url and "@" not in url:
            assert "***" in sold.stderr  # the URL is shown, its query values masked
        for command in (("recover",), ("queue", "drain")):
            result = voucher(*command, "--db", db, "--url", url, "--drain-timeout", "1")
            assert result.returncode == 1 and "Traceback" not in result.stderr
            quiet(result.stdout + result.stderr, secret, USER_SECRET)


def test_redaction_takes_out_every_secret_part() -> None:
    assert redact_url("http://till:pw1234@switch.example/suv/v1?token=abc123&x=1#frag") == (
        "http://till@switch.example/suv/v1?token=***&x=***#***"
    )
    assert redact_url("https://switch.example/suv/v1") == "https://switch.example/suv/v1"
    assert redact_url("http://[::1/suv") == "(a URL that cannot be read)"
    assert redact_dsn("postgresql://u:secret@db:5432/shop?password=x&sslmode=require") == (
        "postgresql://u@db:5432/shop?sslmode=require"
    )
    assert redact_dsn("host=db password='se cret' dbname=shop") == "host=db dbname=shop"
    text = "could not reach http://u:p%40ssw0rd@h/x?key=K3y-value (p@ssw0rd, K3y-value, s3cret)"
    url = "http://u:p%40ssw0rd@h/x?key=K3y-value"
    assert scrub(text, urls=[url], secrets=["s3cret", None, "ab"]) == (
        "could not reach http://u@h/x?key=*** (***, ***, ***)"
    )
    dsn = "postgresql://u:pw-123@db/shop?sslmode=require"
    assert scrub(f"at {dsn}: pw-123 require", dsns=[dsn]) == (
        "at postgresql://u@db/shop?sslmode=require: *** require"
    )
