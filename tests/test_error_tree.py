"""One error tree: every exception class the library defines is a ``VoucherError``.

A host catches the library's errors by documented names: ``VoucherError`` for all of them,
``MessageError`` for a message that breaks the interface's rules, ``StorageError`` and
``OwnerBusy`` for the stores, the same classes whichever backend raised them. The walk below
imports every module of both packages (skipping those whose optional extra is missing) and
checks each exception class it defines.
"""

from __future__ import annotations

import importlib
import os
import pickle
import pkgutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import attrs
import pytest
from pg import fresh_schema, require_postgres

from voucher_adapters import errors as adapter_errors
from voucher_adapters.stores import postgres, sqlite
from voucher_adapters.stores.postgres import PostgresJournal, migrate
from voucher_adapters.stores.sqlite import SqliteJournal
from voucher_adapters.testing import FlowMismatch
from voucher_core import errors as core_errors
from voucher_core import messages, wire
from voucher_core.errors import MessageError, VoucherError

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("voucher_core", "voucher_adapters")

# Exception classes that do not derive from VoucherError yet, each in a file outside the change
# that built this tree. Each is an expected failure: when one is fixed, it shows as XPASS;
# then take it out of this list.
NOT_YET: dict[str, str] = {}


def library_modules() -> Iterator[ModuleType]:
    """Every module of both packages that imports here (an extra may be missing)."""
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        yield package
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if info.name.rpartition(".")[2] == "__main__":  # importing it would run it
                continue
            try:
                module = importlib.import_module(info.name)
            except ImportError as error:
                if (error.name or "").partition(".")[0] in PACKAGES:
                    raise  # our own module is broken: that is a failure, not a missing extra
                continue
            yield module


def exception_classes() -> list[type[BaseException]]:
    """Every public exception class defined (not merely imported) in the library's modules.

    Private ones (a leading underscore) are control flow inside one module and never reach a
    caller, such as the SQLite database's ``_Aborted``."""
    found: dict[str, type[BaseException]] = {}
    for module in library_modules():
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[qualified(value)] = value
    return [found[name] for name in sorted(found)]


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def case(cls: type[BaseException]) -> Any:
    name = qualified(cls)
    marks = [pytest.mark.xfail(reason=NOT_YET[name], strict=False)] if name in NOT_YET else []
    return pytest.param(cls, id=name, marks=marks)


CLASSES = exception_classes()


def test_the_walk_finds_the_errors_of_both_sides() -> None:
    names = {qualified(cls) for cls in CLASSES}
    assert {
        "voucher_core.errors.VoucherError",
        "voucher_core.errors.MessageError",
        "voucher_core.errors.WireFormatError",
        "voucher_adapters.errors.StorageError",
        "voucher_adapters.errors.OwnerBusy",
        "voucher_adapters.testing.flow.FlowMismatch",
    } <= names
    assert not set(NOT_YET) - names, "NOT_YET names a class that no longer exists"


@pytest.mark.parametrize("cls", [case(cls) for cls in CLASSES])
def test_every_exception_class_is_a_voucher_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, VoucherError), f"{qualified(cls)} is not a VoucherError"


def test_the_cores_errors_are_defined_in_voucher_core_errors() -> None:
    elsewhere = [
        qualified(cls)
        for cls in CLASSES
        if cls.__module__.partition(".")[0] == "voucher_core"
        and cls.__module__ != "voucher_core.errors"
        and qualified(cls) not in NOT_YET
    ]
    assert elsewhere == []
    assert set(core_errors.__all__) >= {
        cls.__name__ for cls in CLASSES if cls.__module__ == "voucher_core.errors"
    }


def test_every_storage_error_is_defined_in_voucher_adapters_errors() -> None:
    storage = [cls for cls in CLASSES if issubclass(cls, adapter_errors.StorageError)]
    assert {qualified(cls) for cls in storage} == {
        "voucher_adapters.errors.StorageError",
        "voucher_adapters.errors.OwnerBusy",
    }


def test_the_testing_kits_mismatch_is_still_an_assertion_error() -> None:
    assert issubclass(FlowMismatch, AssertionError) and issubclass(FlowMismatch, VoucherError)


# -- the stores: one StorageError, one OwnerBusy --------------------------------------------------


def test_both_backends_export_the_very_same_classes() -> None:
    assert sqlite.StorageError is postgres.StorageError is adapter_errors.StorageError
    assert sqlite.OwnerBusy is postgres.OwnerBusy is adapter_errors.OwnerBusy
    assert issubclass(adapter_errors.OwnerBusy, adapter_errors.StorageError)


def test_a_storage_error_reads_and_pickles_as_before() -> None:
    error = adapter_errors.StorageError("/var/lib/till/voucher.db", "store advice 1f", "full")
    assert str(error) == "cannot store advice 1f: /var/lib/till/voucher.db: full"
    assert error.where == error.path == error.dsn == "/var/lib/till/voucher.db"
    assert (error.operation, error.reason) == ("store advice 1f", "full")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is adapter_errors.StorageError and str(again) == str(error)
    busy = pickle.loads(pickle.dumps(adapter_errors.OwnerBusy("db", "resume", "held")))
    assert type(busy) is adapter_errors.OwnerBusy and busy.where == "db"


HOLDER = textwrap.dedent(
    """
    import os, sys
    kind, where = sys.argv[1], sys.argv[2]
    if kind == "sqlite":
        from voucher_adapters.stores.sqlite import SqliteJournal
        journal = SqliteJournal(where, owner="lane-1")
    else:
        from voucher_adapters.stores.postgres import PostgresJournal
        journal = PostgresJournal(os.environ["VOUCHER_TEST_PG_DSN"], schema=where, owner="lane-1")
    journal.unfinished()
    print("held", flush=True)
    sys.stdin.read()
    """
)


def owner_busy_from(kind: str, where: str, dsn: str = "") -> BaseException:
    """The error a journal meets when a live child process holds the owner ``lane-1``."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, kind, where],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "VOUCHER_TEST_PG_DSN": dsn},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        if kind == "sqlite":
            journal: Any = SqliteJournal(where, owner="lane-1")
        else:
            journal = PostgresJournal(dsn, schema=where, owner="lane-1", timeout=0.5)
        try:
            with pytest.raises(VoucherError) as caught:
                journal.unfinished()
        finally:
            journal.close()
        return caught.value
    finally:
        child.kill()
        child.wait(timeout=10)


def test_a_sqlite_and_a_postgres_owner_busy_are_one_class(tmp_path: Path) -> None:
    on_sqlite = owner_busy_from("sqlite", str(tmp_path / "pos.db"))
    dsn = require_postgres()
    with fresh_schema() as schema:
        migrate(dsn, schema=schema)
        on_postgres = owner_busy_from("postgres", schema, dsn)
    assert type(on_sqlite) is type(on_postgres) is adapter_errors.OwnerBusy
    for error in (on_sqlite, on_postgres):
        assert isinstance(error, adapter_errors.StorageError)
        assert str(error).startswith("cannot resume the sales of owner 'lane-1'")
        assert "another live process" in str(error)


# -- messages: MessageError, still the built-in errors they were -------------------------------


def test_the_message_errors_are_public_where_messages_are() -> None:
    assert messages.MessageError is MessageError
    assert messages.InvalidFieldValueError is core_errors.InvalidFieldValueError
    assert messages.InvalidFieldTypeError is core_errors.InvalidFieldTypeError
    assert wire.WireFormatError is core_errors.WireFormatError
    assert wire.FieldError is core_errors.FieldError


def test_a_bad_field_value_is_a_message_error_and_a_value_error() -> None:
    with pytest.raises(MessageError) as caught:
        messages.LedgerAmount(amount=1000, currency="ZAR")
    assert isinstance(caught.value, ValueError) and not isinstance(caught.value, TypeError)
    assert str(caught.value).startswith("currency must match [0-9]{3}")


def test_a_field_of_the_wrong_type_is_a_message_error_and_a_type_error() -> None:
    amount, text = messages.LedgerAmount(amount=1000, currency="710"), cast(Any, "1000")
    with pytest.raises(MessageError) as caught:
        attrs.evolve(amount, amount=text)
    assert isinstance(caught.value, TypeError) and not isinstance(caught.value, ValueError)
    assert str(caught.value) == "amount must be an integer, got str"


def test_a_document_that_is_not_the_message_is_a_message_error_and_a_value_error() -> None:
    with pytest.raises(MessageError) as caught:
        wire.from_json(messages.LedgerAmount, b'{"amount": 1}')
    assert isinstance(caught.value, wire.WireFormatError) and isinstance(caught.value, ValueError)
    assert caught.value.errors == (wire.FieldError("currency", wire.MAY_NOT_BE_NULL),)
