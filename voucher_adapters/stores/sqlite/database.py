"""One SQLite file shared by the advice queue and the journal: opening it, its schema, and
transactions that either commit before they report success or report nothing as done.

Every connection runs in WAL mode with ``synchronous=FULL`` unless told otherwise, so a
committed write survives a killed process and a power cut. Work is handed in as
:class:`Step` objects; :meth:`Database.transact` runs several in one transaction (each in
its own savepoint, so one failing step does not undo the others) and commits once: the
async twins use that for group commit.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from voucher_adapters.errors import StorageError
from voucher_adapters.stores.sqlite.errors import describe
from voucher_core.errors import InvalidArgument

__all__ = ["SCHEMA_VERSION", "Database", "Failure", "Step", "read_boot_id"]

T = TypeVar("T")

SCHEMA_VERSION = 2
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
OPEN = "open the database"

# MIGRATIONS[n] takes a database from schema version n to n + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE advice (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('confirmation', 'reversal')),
            request_id TEXT NOT NULL,
            body BLOB NOT NULL,
            due REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            leased_at REAL,
            lease_until REAL,
            state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'parked')),
            park_reason TEXT,
            enqueued_at TEXT NOT NULL
        )""",
        "CREATE INDEX advice_by_due ON advice (state, due)",
        """CREATE TABLE journal (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            terminal INTEGER NOT NULL,
            snapshot TEXT NOT NULL,
            decision_deadline REAL,
            recorded_at TEXT NOT NULL
        )""",
        "CREATE INDEX journal_unfinished ON journal (seq) WHERE terminal = 0",
    ),
    # 2: which driving process a transaction belongs to (None: the only one).
    ("ALTER TABLE journal ADD COLUMN owner TEXT",),
)
assert len(MIGRATIONS) == SCHEMA_VERSION


@dataclass(frozen=True)
class Step(Generic[T]):
    """One unit of work: ``run`` gets the connection inside an open transaction.

    ``run`` acts only through the connection and may be called twice: when a step of a
    group fails, the whole group is rolled back and run again with a savepoint per step.
    """

    operation: str  # for messages: "store advice 1f..", "record transaction 9a.."
    run: Callable[[sqlite3.Connection], T]
    write: bool = True


@dataclass(frozen=True)
class Failure:
    """What :meth:`Database.transact` gives back for a step that did not happen."""

    error: BaseException


def read_boot_id() -> str | None:
    """This boot of the machine (Linux), or None where the system does not say."""
    try:
        with open(BOOT_ID_FILE, encoding="ascii") as file:
            return file.read().strip() or None
    except (OSError, ValueError):
        return None


def wall_time() -> str:
    """For operators reading the tables; never used to decide anything."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Database:
    """A connection to one file, usable from any thread (calls are serialised by a lock)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        read_only: bool = False,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS:
            raise InvalidArgument(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        if busy_timeout < 0:
            raise InvalidArgument("busy_timeout may not be negative")
        self.path = os.path.abspath(os.fspath(path))
        self.busy_timeout = busy_timeout
        self.commits = 0  # write transactions committed
        self.writes = 0  # write steps committed (several per commit under group commit)
        self.reset_on_open = 0  # queued advices whose times were reset after a reboot
        self.read_only = read_only
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = (
            self._open_read_only() if read_only else self._open(synchronous.upper())
        )

    def error(self, operation: str, cause: BaseException) -> StorageError:
        error = StorageError(self.path, operation, describe(cause, busy_timeout=self.busy_timeout))
        error.__cause__ = cause
        return error

    # -- opening --------------------------------------------------------------------------------

    def _open(self, synchronous: str) -> sqlite3.Connection:
        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            missing = FileNotFoundError(2, "No such directory", folder)
            raise StorageError(
                self.path, OPEN, f"the directory {folder} does not exist"
            ) from missing
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # transactions are explicit: BEGIN ... COMMIT
                check_same_thread=False,  # guarded by self._lock instead
            )
        except sqlite3.Error as exc:
            raise self.error(OPEN, exc) from exc
        try:
            self._configure(conn, synchronous)
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self) -> sqlite3.Connection:
        """For an operator who only reads: nothing is written, not even the schema's upkeep,
        so a database in a folder this process cannot write to can still be listed.

        SQLite reads a write-ahead-logged file through its ``-shm`` index, which it must be
        able to create beside the file. Where it cannot (a read-only folder or mount) and no
        write-ahead log holds unmerged writes, the file is read as immutable: no lock is
        taken, which is safe as nothing can write to that folder either. A log that does hold
        writes cannot be read without its index, so the error says to copy both elsewhere.
        """
        if not os.path.isfile(self.path):
            raise StorageError(self.path, OPEN, "there is no database file here")
        conn = self._connect_uri("mode=ro")
        try:
            version = self._read_version(conn)
        except sqlite3.Error as exc:
            conn.close()
            folder = os.path.dirname(self.path)
            if os.access(folder, os.W_OK):
                raise self.error(OPEN, exc) from exc
            wal = self.path + "-wal"
            if os.path.exists(wal) and os.path.getsize(wal) > 0:
                reason = (
                    f"the folder {folder} is read-only and {os.path.basename(wal)} holds writes "
                    "not yet merged into the file; copy the file with its -wal to a writable "
                    "folder and read the copy"
                )
                raise StorageError(self.path, OPEN, reason) from None
            conn = self._connect_uri("mode=ro&immutable=1")
            try:
                version = self._read_version(conn)
            except sqlite3.Error as again:
                conn.close()
                raise self.error(OPEN, again) from again
            except BaseException:
                conn.close()
                raise
        if version != SCHEMA_VERSION:
            conn.close()
            if version > SCHEMA_VERSION:
                reason = (
                    f"the database has schema version {version}, written by a newer "
                    f"voucher-core; this one reads up to version {SCHEMA_VERSION}"
                )
            else:
                reason = (
                    f"the database has schema version {version} and needs migrating to "
                    f"{SCHEMA_VERSION}, which only a command that writes to it does"
                )
            raise StorageError(self.path, OPEN, reason)
        return conn

    def _connect_uri(self, query: str) -> sqlite3.Connection:
        uri = f"file:{urllib.parse.quote(self.path)}?{query}"
        try:
            return sqlite3.connect(
                uri,
                uri=True,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self.error(OPEN, exc) from exc

    def _read_version(self, conn: sqlite3.Connection) -> int:
        conn.execute(f"PRAGMA busy_timeout = {round(self.busy_timeout * 1000)}")
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            reason = "the database file is damaged (restore it from a backup): " + "; ".join(
                problems[:3]
            )
            raise StorageError(self.path, OPEN, reason)
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def _configure(self, conn: sqlite3.Connection, synchronous: str) -> None:
        try:
            conn.execute(f"PRAGMA busy_timeout = {round(self.busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
        except sqlite3.Error as exc:
            raise self.error(OPEN, exc) from exc
        if str(mode).lower() != "wal":
            reason = f"the database cannot use write-ahead logging (journal mode stays {mode})"
            raise StorageError(self.path, OPEN, reason)
        if problems != ["ok"]:
            reason = "the database file is damaged (restore it from a backup): " + "; ".join(
                problems[:3]
            )
            raise StorageError(self.path, OPEN, reason)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Bring the schema up to date; after a reboot, make stored monotonic times moot."""
        boot = read_boot_id()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > SCHEMA_VERSION:
                    reason = (
                        f"the database has schema version {version}, written by a newer "
                        f"voucher-core; this one reads up to version {SCHEMA_VERSION}"
                    )
                    raise StorageError(self.path, OPEN, reason)
                for migration in MIGRATIONS[version:]:
                    for statement in migration:
                        conn.execute(statement)
                if version != SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._check_boot(conn, boot)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self.error(OPEN, exc) from exc

    def _check_boot(self, conn: sqlite3.Connection, boot: str | None) -> None:
        # Monotonic clocks restart at boot: due times and leases from before mean nothing now.
        if boot is not None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'boot_id'").fetchone()
            if row is not None and row[0] != boot:
                self.reset_on_open = conn.execute(
                    "UPDATE advice SET due = 0, lease_owner = NULL, leased_at = NULL, "
                    "lease_until = NULL WHERE state = 'queued'"
                ).rowcount
            _put_meta(conn, "boot_id", boot)
        # Also a write probe: a read-only file or directory fails here, at open.
        _put_meta(conn, "opened_at", wall_time())

    # -- running work ---------------------------------------------------------------------------

    def run(self, step: Step[T]) -> T:
        """Run one step in its own transaction; raise if it did not commit."""
        [outcome] = self.transact([step])
        if isinstance(outcome, Failure):
            raise outcome.error
        result: T = outcome
        return result

    def transact(self, steps: Sequence[Step[Any]]) -> list[Any]:
        """Run ``steps`` in one transaction and commit once.

        Returns each step's result, or a :class:`Failure` for a step that is not stored: it
        raised (its savepoint is rolled back, the others stand), or the transaction as a
        whole could not begin or commit (then every step fails).
        """
        with self._lock:
            conn = self._conn
            if conn is None:
                return self._fail_all(steps, sqlite3.ProgrammingError("closed"))
            write = any(step.write for step in steps)
            together = self._together(conn, steps, write)
            if together is not None:
                return together
            # Some step failed: run them again one savepoint each, so only it fails.
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                return self._fail_all(steps, exc)
            try:
                outcomes = [self._step(conn, step) for step in steps]
                stored = sum(
                    1
                    for step, outcome in zip(steps, outcomes, strict=True)
                    if step.write and not isinstance(outcome, Failure)
                )
                conn.execute("COMMIT" if stored else "ROLLBACK")
            except _Aborted as aborted:  # SQLite rolled the whole transaction back itself
                return self._fail_all(steps, aborted.cause)
            except sqlite3.Error as exc:
                self._rollback(conn)
                return self._fail_all(steps, exc)
            except BaseException:
                self._rollback(conn)
                raise
            if stored:
                self.commits += 1
                self.writes += stored
            return outcomes

    def _together(
        self, conn: sqlite3.Connection, steps: Sequence[Step[Any]], write: bool
    ) -> list[Any] | None:
        """The common case, without a savepoint per step: run every step and commit once.
        None if any step raised; then nothing is stored and the caller goes step by step."""
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            return self._fail_all(steps, exc)
        try:
            outcomes = [step.run(conn) for step in steps]
        except Exception:
            self._rollback(conn)
            return None
        except BaseException:
            self._rollback(conn)
            raise
        try:
            conn.execute("COMMIT" if write else "ROLLBACK")
        except sqlite3.Error as exc:
            self._rollback(conn)
            return self._fail_all(steps, exc)
        if write:
            self.commits += 1
            self.writes += sum(1 for step in steps if step.write)
        return outcomes

    def _step(self, conn: sqlite3.Connection, step: Step[Any]) -> Any:
        conn.execute("SAVEPOINT step")
        try:
            result = step.run(conn)
        except Exception as exc:
            if not conn.in_transaction:
                raise _Aborted(exc) from exc
            conn.execute("ROLLBACK TO step")
            conn.execute("RELEASE step")
            if isinstance(exc, sqlite3.Error):
                return Failure(self.error(step.operation, exc))
            return Failure(exc)
        conn.execute("RELEASE step")
        return result

    def _fail_all(self, steps: Sequence[Step[Any]], cause: BaseException) -> list[Any]:
        return [Failure(self.error(step.operation, cause)) for step in steps]

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite rolls back on its own when it cannot; the error is reported either way.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    # -- inspection and closing -----------------------------------------------------------------

    def pragma(self, name: str) -> object:
        """Read a setting back from this connection (``journal_mode``, ``synchronous``...)."""
        if not name.replace("_", "").isalpha():
            raise InvalidArgument(f"not a pragma name: {name!r}")
        step = Step(f"read {name}", lambda c: c.execute(f"PRAGMA {name}").fetchone()[0], False)
        return self.run(step)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    @property
    def closed(self) -> bool:
        return self._conn is None


class _Aborted(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _put_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
