"""A journal that fails some of its writes, the way a full disk or a locked database does.

Wrap any journal to see what a host and the driver make of storage failures: each write fails
with probability ``rate`` (drawn from ``draw``, so a seeded run repeats exactly), and a failure
lasts for ``burst`` writes in a row, as a disk stays full for a while. Reads always work. A
failed write stores nothing and raises :class:`~voucher_adapters.errors.StorageError`, as the
SQLite and PostgreSQL journals do.

    journal = FailingJournal(InMemoryJournal(), rate=0.01, draw=random.Random(7).random)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from voucher_adapters.errors import StorageError
from voucher_core.errors import InvalidArgument
from voucher_core.ports import JournalEntry, TransactionJournal
from voucher_core.transaction import Transaction

__all__ = ["FailingJournal"]


class FailingJournal:
    """A :class:`~voucher_core.ports.TransactionJournal` over ``inner`` whose writes fail now
    and then. ``failures`` counts the writes it failed."""

    def __init__(
        self,
        inner: TransactionJournal,
        *,
        rate: float,
        draw: Callable[[], float],
        burst: int = 1,
        where: str = "journal (failing on purpose)",
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise InvalidArgument(f"rate must be between 0 and 1, got {rate!r}")
        if burst < 1:
            raise InvalidArgument(f"burst must be at least 1, got {burst}")
        self.inner = inner
        self.rate = rate
        self.burst = burst
        self.where = where
        self.failures = 0
        self._draw = draw
        self._left = 0  # writes still to fail in the current burst

    def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None:
        if self._left == 0 and self.rate and self._draw() < self.rate:
            self._left = self.burst
        if self._left:
            self._left -= 1
            self.failures += 1
            raise StorageError(self.where, f"record transaction {tx.id}", "the disk is full")
        self.inner.record(tx, decision_deadline=decision_deadline)

    def get(self, transaction_id: str) -> JournalEntry | None:
        return self.inner.get(transaction_id)

    def unfinished(self) -> Sequence[JournalEntry]:
        return self.inner.unfinished()

    def entries(self) -> Sequence[JournalEntry]:
        return self.inner.entries()
