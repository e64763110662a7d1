"""An advice queue in a dict: for tests, simulations and hosts that accept losing it on exit.

It honours the whole :class:`~voucher_core.ports.AdviceQueue` contract except durability:
idempotent enqueue, one taker per advice (a taken advice is invisible until it is
acknowledged, parked or put back, or until its lease of ``lease`` seconds runs out, as when
its taker died), and parked advices kept for inspection and re-queueing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import ParkedAdvice, QueuedAdvice

__all__ = ["AsyncInMemoryAdviceQueue", "InMemoryAdviceQueue", "ParkedAdvice"]


@attrs.define
class _Entry:
    queued: QueuedAdvice
    due: float
    taken: bool = False
    leased_until: float = 0.0


class InMemoryAdviceQueue:
    def __init__(self, *, lease: float = 150.0) -> None:
        self.lease = lease
        self._entries: dict[str, _Entry] = {}
        self._parked: dict[str, ParkedAdvice] = {}
        self.enqueued_total = 0

    def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        if advice.id not in self._entries and advice.id not in self._parked:
            self._entries[advice.id] = _Entry(QueuedAdvice(advice), due)
            self.enqueued_total += 1
        if not take:
            return None
        taken = self.take_due(due, limit=1, advice_id=advice.id)
        return taken[0] if taken else None

    def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> Sequence[QueuedAdvice]:
        if advice_id is not None:
            entry = self._entries.get(advice_id)
            candidates = [entry] if entry is not None else []
        else:
            candidates = sorted(self._entries.values(), key=lambda e: e.due)
        taken: list[QueuedAdvice] = []
        for entry in candidates:
            if len(taken) >= limit:
                break
            if (entry.taken and entry.leased_until > now) or entry.due > now:
                continue
            entry.taken = True
            entry.leased_until = now + self.lease
            entry.queued = attrs.evolve(entry.queued, attempts=entry.queued.attempts + 1)
            taken.append(entry.queued)
        return taken

    def acknowledge(self, advice_id: str) -> None:
        self._entries.pop(advice_id, None)

    def repeat_later(self, advice_id: str, *, due: float) -> None:
        entry = self._entries.get(advice_id)
        if entry is not None:
            entry.due = due
            entry.taken = False

    def park(self, advice_id: str, *, reason: str) -> None:
        entry = self._entries.pop(advice_id, None)
        if entry is not None:
            self._parked[advice_id] = ParkedAdvice(entry.queued, reason)

    # -- inspection -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def pending(self) -> list[QueuedAdvice]:
        return [entry.queued for entry in self._entries.values()]

    def parked(self) -> list[ParkedAdvice]:
        return list(self._parked.values())

    def release(self, advice_ids: Iterable[str]) -> list[str]:
        """End the leases of these advices, whoever took them: they are due at once (as on
        the durable queues, for a taker known to be gone). Returns the ids whose lease ended."""
        freed: list[str] = []
        for advice_id in dict.fromkeys(advice_ids):
            entry = self._entries.get(advice_id)
            if entry is not None and entry.taken:
                entry.taken = False
                entry.leased_until = 0.0
                freed.append(advice_id)
        return freed

    def requeue(self, advice_id: str, *, due: float) -> bool:
        """Put a parked advice back in line. Returns whether there was one to put back."""
        parked = self._parked.pop(advice_id, None)
        if parked is None:
            return False
        self._entries[advice_id] = _Entry(parked.queued, due)
        return True

    def stats(self) -> dict[str, int | float | None]:
        """Counts for operators: queued, leased (taken and not yet settled), parked."""
        leased = sum(1 for entry in self._entries.values() if entry.taken)
        dues = [entry.due for entry in self._entries.values() if not entry.taken]
        return {
            "queued": len(self._entries) - leased,
            "leased": leased,
            "parked": len(self._parked),
            "oldest_due": min(dues) if dues else None,
        }

    def next_due(self) -> float | None:
        """When the next advice can be taken: its due time, or when a taker's lease ends."""
        dues = [
            max(entry.due, entry.leased_until) if entry.taken else entry.due
            for entry in self._entries.values()
        ]
        return min(dues) if dues else None


class AsyncInMemoryAdviceQueue:
    """The same queue behind the async port; ``sync`` is the shared underlying queue."""

    def __init__(self, sync: InMemoryAdviceQueue | None = None) -> None:
        self.sync = sync if sync is not None else InMemoryAdviceQueue()

    async def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        return self.sync.enqueue(advice, due=due, take=take)

    async def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> Sequence[QueuedAdvice]:
        return self.sync.take_due(now, limit=limit, advice_id=advice_id)

    async def acknowledge(self, advice_id: str) -> None:
        self.sync.acknowledge(advice_id)

    async def repeat_later(self, advice_id: str, *, due: float) -> None:
        self.sync.repeat_later(advice_id, due=due)

    async def park(self, advice_id: str, *, reason: str) -> None:
        self.sync.park(advice_id, reason=reason)

    async def release(self, advice_ids: Iterable[str]) -> list[str]:
        return self.sync.release(advice_ids)

    async def pending(self) -> list[QueuedAdvice]:
        return self.sync.pending()

    async def next_due(self) -> float | None:
        return self.sync.next_due()
