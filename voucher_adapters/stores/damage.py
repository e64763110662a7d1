"""Journal rows that cannot be read back, reported by id and skipped.

A row whose snapshot is not valid JSON, is not a snapshot this code can restore, or names
another transaction than its row, is *damaged*. One such row must not stop the healthy ones
from being listed or resumed, so the durable journals skip it in ``entries()``,
``unfinished()`` and ``get()`` (which answers None for it), log a warning naming it once, and
list it in their ``damaged`` property, where a command looks after reading to learn of it
and say so in its exit status. The row itself is left as it is, for a person to restore.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterable

import attrs

from voucher_core.ports import JournalEntry
from voucher_core.snapshot import restore

__all__ = ["DamageLog", "DamagedEntry"]


@attrs.frozen
class DamagedEntry:
    """A journal row that could not be read: its transaction id and why."""

    transaction_id: str
    reason: str


class DamageLog:
    """The damaged rows one journal object has met, each once, in the order met; a row read
    healthy later (restored by hand, or recorded again) leaves the list. Thread-safe."""

    def __init__(self, logger: logging.Logger, where: str = "") -> None:
        self._log = logger
        self.where = where
        self._rows: dict[str, str] = {}
        self._lock = threading.Lock()

    def entries(self, rows: Iterable[tuple[object, object, object]]) -> list[JournalEntry]:
        """The readable ones of ``(id, snapshot text, decision deadline)`` rows, in order."""
        entries: list[JournalEntry] = []
        for transaction_id, text, deadline in rows:
            entry = self.entry(transaction_id, text, deadline)
            if entry is not None:
                entries.append(entry)
        return entries

    def entry(self, transaction_id: object, text: object, deadline: object) -> JournalEntry | None:
        """One row read back, or None (logged and listed) if it is damaged."""
        tid = str(transaction_id)
        try:
            entry = _read(tid, text, deadline)
        except Exception as error:  # whatever a damaged row makes the decoder raise
            self._damaged(tid, _reason(error))
            return None
        if self._rows:
            with self._lock:
                self._rows.pop(tid, None)
        return entry

    def forget(self, transaction_id: str) -> None:
        """The row was recorded again, whole."""
        if self._rows:
            with self._lock:
                self._rows.pop(transaction_id, None)

    @property
    def damaged(self) -> list[DamagedEntry]:
        with self._lock:
            return [DamagedEntry(tid, reason) for tid, reason in self._rows.items()]

    def _damaged(self, transaction_id: str, reason: str) -> None:
        with self._lock:
            known = self._rows.get(transaction_id) == reason
            self._rows[transaction_id] = reason
        if not known:
            where = f" in {self.where}" if self.where else ""
            self._log.warning(
                "journal row of transaction %s%s is damaged and skipped: %s",
                transaction_id,
                where,
                reason,
            )


def _read(transaction_id: str, text: object, deadline: object) -> JournalEntry:
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode()
    if not isinstance(text, str):
        raise ValueError(f"the snapshot is {type(text).__name__}, not text")
    if deadline is not None and (
        isinstance(deadline, bool)
        or not isinstance(deadline, int | float)
        or not math.isfinite(deadline)
    ):
        raise ValueError(f"the decision deadline {deadline!r} is not a number of seconds")
    tx = restore(json.loads(text))
    if tx.id != transaction_id:
        raise ValueError(f"the snapshot is of another transaction, {tx.id}")
    return JournalEntry(tx, None if deadline is None else float(deadline))


def _reason(error: BaseException) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"the snapshot is not valid JSON ({error.msg} at character {error.pos})"
    if isinstance(error, RecursionError):
        return "the snapshot is nested too deeply to read"
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]
