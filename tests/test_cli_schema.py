"""``--schema``: every ``voucher`` command that takes ``--dsn`` works in the PostgreSQL schema
it is told, so that two tills' journals can share one database."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

import pytest
from cli_stores import fresh_database, voucher
from test_cli_http import free_port, serving

from voucher_adapters.cli.main import build_parser, main
from voucher_adapters.stores.postgres import PostgresAdviceQueue, PostgresJournal

CLOSED = "http://127.0.0.1:1/suv/v1"

# Every command that takes --dsn, with what else it needs to parse.
DSN_COMMANDS = [
    ["queue", "list"],
    ["queue", "stats"],
    ["queue", "requeue", "x"],
    ["queue", "drain", "--url", CLOSED],
    ["journal", "list"],
    ["recover", "--url", CLOSED],
    ["reconcile"],
    ["provision", "--url", CLOSED, "--product", "AIRTIME10", "--amount", "1"],
    ["simulate", "--scenario", "dual-success"],
]


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for deeper, subsub in _subparsers(sub):
                    yield f"{name} {deeper}", subsub


def test_every_command_taking_a_dsn_takes_a_schema() -> None:
    def options(parser: argparse.ArgumentParser) -> set[str]:
        return {o for a in parser._actions for o in a.option_strings}

    with_dsn = {name for name, sub in _subparsers(build_parser()) if "--dsn" in options(sub)}
    with_schema = {name for name, sub in _subparsers(build_parser()) if "--schema" in options(sub)}
    assert with_dsn == with_schema
    assert {" ".join(c[:2]) if c[0] in {"queue", "journal"} else c[0] for c in DSN_COMMANDS} | {
        "db migrate"
    } == with_dsn


@pytest.mark.parametrize("command", DSN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_schema_without_a_dsn_is_a_usage_error(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--schema", "till_two"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].endswith("error: --schema needs --dsn")
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["Till", "till-two", "1till", "a" * 64, "voucher; drop", ""])
def test_a_schema_name_the_stores_would_refuse_is_a_usage_error(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["journal", "list", "--dsn", "postgresql://127.0.0.1:1/none", "--schema", name])
    assert exit_.value.code == 2
    assert "schema must be a plain lower-case SQL name" in capsys.readouterr().err


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as dsn:
        yield dsn


def _journal_ids(dsn: str, *schema: str) -> set[str]:
    listed = voucher("journal", "list", "--json", "--dsn", dsn, *schema)
    assert listed.returncode == 0, listed.stderr
    return {json.loads(line)["id"] for line in listed.stdout.splitlines()}


def test_a_sale_journaled_in_a_schema_is_listed_there_and_not_in_the_default_one(
    database: str,
) -> None:
    made = voucher("db", "migrate", "--dsn", database, "--schema", "till_two")
    assert made.returncode == 0, made.stderr
    sold = voucher(
        "simulate",
        "--scenario",
        "dual-success",
        "--json",
        "--dsn",
        database,
        "--schema",
        "till_two",
    )
    assert sold.returncode == 0, sold.stderr
    assert json.loads(sold.stdout)["final_state"] == "DONE"
    [sale] = _journal_ids(database, "--schema", "till_two")
    assert _journal_ids(database) == set()  # the default schema, "voucher", has none
    with PostgresJournal(database, schema="till_two", timeout=5.0) as journal:
        assert [e.transaction.id for e in journal.entries()] == [sale]


def test_queue_drain_delivers_the_advice_queued_in_its_schema(database: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}/suv/v1"
    where = ["--dsn", database, "--schema", "till_two"]
    sold = voucher(
        "provision",
        *("--url", closed, "--product", "AIRTIME10", "--amount", "1000"),
        *("--timeout", "0.5", "--drain-timeout", "1", "--json", *where),
    )
    assert sold.returncode == 0, sold.stderr  # the reversal waits in the schema
    assert "--schema till_two" in sold.stderr and "(schema till_two)" in sold.stderr
    stats = voucher("queue", "stats", "--json", *where)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["queued"] == 1
    elsewhere = voucher("queue", "stats", "--json", "--dsn", database)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert json.loads(elsewhere.stdout)["queued"] == 0
    with serving() as (url, _):
        drained = voucher("queue", "drain", *where, "--url", url, "--timeout", "5")
    assert drained.returncode == 0, drained.stdout + drained.stderr
    with PostgresAdviceQueue(database, schema="till_two", timeout=5.0) as queue:
        assert queue.pending() == [] and queue.parked() == []
