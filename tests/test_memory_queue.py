"""The in-memory advice queue honours the AdviceQueue contract (all of it but durability)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from voucher_adapters.demo import SeededIds, cash
from voucher_adapters.stores.memory import (
    AsyncInMemoryAdviceQueue,
    InMemoryAdviceQueue,
    ParkedAdvice,
)
from voucher_core.messages import BasicReversal, ReversalReason, TenderAdvice, ThirdPartyIdentifier
from voucher_core.ports import AdviceQueue, AsyncAdviceQueue, QueuedAdvice
from voucher_core.replies import AdviceKind

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
ids = SeededIds(42)
REFS = (ThirdPartyIdentifier(institution_id="999001", transaction_identifier="till-1"),)


def confirmation() -> TenderAdvice:
    return TenderAdvice(
        id=ids(), request_id=ids(), time=WHEN, third_party_identifiers=REFS, tenders=cash(1000)
    )


def reversal() -> BasicReversal:
    return BasicReversal(
        id=ids(),
        request_id=ids(),
        time=WHEN,
        third_party_identifiers=REFS,
        reversal_reason=ReversalReason.TIMEOUT,
    )


def taken_ids(taken: object) -> list[str]:
    assert isinstance(taken, list | tuple)
    return [q.id for q in taken]


def test_it_offers_every_method_of_both_ports() -> None:
    sync: AdviceQueue = InMemoryAdviceQueue()
    twin: AsyncAdviceQueue = AsyncInMemoryAdviceQueue()
    for name in ("enqueue", "take_due", "acknowledge", "repeat_later", "park"):
        assert callable(getattr(sync, name))
        assert inspect.iscoroutinefunction(getattr(twin, name))


def test_an_enqueued_advice_is_pending_and_due_at_its_time() -> None:
    queue = InMemoryAdviceQueue()
    advice = confirmation()
    queue.enqueue(advice, due=5.0)
    assert len(queue) == 1
    assert queue.pending() == [QueuedAdvice(advice, 0)]
    assert queue.next_due() == 5.0
    assert queue.take_due(4.999) == []
    [taken] = queue.take_due(5.0)
    assert taken.advice is advice
    assert taken.kind is AdviceKind.CONFIRMATION
    assert taken.request_id == advice.request_id


def test_enqueue_is_idempotent_on_the_advice_id() -> None:
    queue = InMemoryAdviceQueue()
    advice = confirmation()
    queue.enqueue(advice, due=1.0)
    queue.enqueue(advice, due=100.0)
    assert len(queue) == 1
    assert queue.enqueued_total == 1
    # The first enqueue's due time stands.
    assert queue.next_due() == 1.0


def test_enqueue_again_does_not_reset_a_taken_advice() -> None:
    queue = InMemoryAdviceQueue()
    advice = confirmation()
    queue.enqueue(advice, due=0.0)
    [taken] = queue.take_due(0.0)
    queue.enqueue(advice, due=0.0)
    assert queue.take_due(10.0) == []
    assert queue.pending() == [taken]
    assert taken.attempts == 1


def test_enqueue_of_a_parked_advice_leaves_it_parked() -> None:
    queue = InMemoryAdviceQueue()
    advice = reversal()
    queue.enqueue(advice, due=0.0)
    queue.take_due(0.0)
    queue.park(advice.id, reason="HTTP 400 FORMAT_ERROR")
    queue.enqueue(advice, due=0.0)
    assert len(queue) == 0
    assert queue.take_due(10.0) == []
    assert [p.queued.id for p in queue.parked()] == [advice.id]
    assert queue.enqueued_total == 1


def test_take_due_hands_out_only_due_advices_earliest_first() -> None:
    queue = InMemoryAdviceQueue()
    late, early, middle, future = confirmation(), reversal(), confirmation(), reversal()
    queue.enqueue(late, due=3.0)
    queue.enqueue(early, due=1.0)
    queue.enqueue(middle, due=2.0)
    queue.enqueue(future, due=50.0)
    assert taken_ids(queue.take_due(3.0)) == [early.id, middle.id, late.id]
    assert queue.next_due() == 50.0


def test_take_due_respects_the_limit() -> None:
    queue = InMemoryAdviceQueue()
    advices = [confirmation() for _ in range(5)]
    for n, advice in enumerate(advices):
        queue.enqueue(advice, due=float(n))
    assert taken_ids(queue.take_due(10.0, limit=2)) == [advices[0].id, advices[1].id]
    assert taken_ids(queue.take_due(10.0, limit=2)) == [advices[2].id, advices[3].id]
    assert taken_ids(queue.take_due(10.0, limit=2)) == [advices[4].id]
    assert queue.take_due(10.0, limit=2) == []
    assert queue.take_due(10.0, limit=0) == []


def test_take_due_by_advice_id_takes_only_that_advice_and_only_when_due() -> None:
    queue = InMemoryAdviceQueue()
    first, second = confirmation(), reversal()
    queue.enqueue(first, due=0.0)
    queue.enqueue(second, due=5.0)
    assert queue.take_due(1.0, advice_id=second.id) == []
    assert taken_ids(queue.take_due(5.0, advice_id=second.id)) == [second.id]
    assert queue.take_due(5.0, advice_id="not-queued") == []
    # The other advice was left alone.
    assert taken_ids(queue.take_due(5.0)) == [first.id]


def test_a_taken_advice_is_not_handed_out_again_until_put_back() -> None:
    queue = InMemoryAdviceQueue(lease=150.0)
    advice = confirmation()
    queue.enqueue(advice, due=0.0)
    assert len(queue.take_due(0.0)) == 1
    assert queue.take_due(149.0) == []
    assert queue.take_due(149.0, advice_id=advice.id) == []
    assert queue.next_due() == 150.0  # when the taker's lease runs out
    assert len(queue) == 1  # still held, just not visible

    queue.repeat_later(advice.id, due=7.0)
    assert queue.next_due() == 7.0
    assert queue.take_due(6.0) == []
    assert taken_ids(queue.take_due(7.0)) == [advice.id]


def test_a_taker_that_never_comes_back_loses_its_lease() -> None:
    queue = InMemoryAdviceQueue(lease=10.0)
    advice = confirmation()
    queue.enqueue(advice, due=0.0)
    assert taken_ids(queue.take_due(0.0)) == [advice.id]
    assert queue.take_due(9.9) == []
    again = queue.take_due(10.0)
    assert taken_ids(again) == [advice.id] and again[0].attempts == 2


def test_attempts_count_each_take() -> None:
    queue = InMemoryAdviceQueue()
    advice = reversal()
    queue.enqueue(advice, due=0.0)
    seen = []
    for n in range(4):
        [taken] = queue.take_due(float(n))
        seen.append(taken.attempts)
        queue.repeat_later(advice.id, due=float(n + 1))
    assert seen == [1, 2, 3, 4]
    assert queue.pending()[0].attempts == 4
    # The advice itself never changes between attempts.
    assert queue.pending()[0].advice is advice


def test_acknowledge_removes_the_advice_for_good() -> None:
    queue = InMemoryAdviceQueue()
    kept, done = confirmation(), confirmation()
    queue.enqueue(kept, due=0.0)
    queue.enqueue(done, due=0.0)
    queue.take_due(0.0)
    queue.acknowledge(done.id)
    assert len(queue) == 1
    assert [q.id for q in queue.pending()] == [kept.id]
    queue.repeat_later(done.id, due=0.0)  # too late: nothing to put back
    assert len(queue) == 1
    queue.acknowledge(done.id)  # a second acknowledgement is harmless
    queue.acknowledge("never-queued")
    assert len(queue) == 1
    assert queue.parked() == []


def test_park_moves_the_advice_aside_with_its_reason_and_requeue_brings_it_back() -> None:
    queue = InMemoryAdviceQueue()
    bad, other = reversal(), confirmation()
    queue.enqueue(bad, due=0.0)
    queue.enqueue(other, due=0.0)
    queue.take_due(0.0)
    queue.park(bad.id, reason="HTTP 400 FORMAT_ERROR: bad field")
    queue.repeat_later(other.id, due=2.0)

    assert [q.id for q in queue.pending()] == [other.id]
    [parked] = queue.parked()
    assert parked == ParkedAdvice(QueuedAdvice(bad, 1), "HTTP 400 FORMAT_ERROR: bad field")
    assert queue.take_due(1000.0, advice_id=bad.id) == []

    assert queue.requeue(bad.id, due=3.0)
    assert queue.parked() == []
    assert len(queue) == 2
    assert not queue.requeue(bad.id, due=3.0)
    assert not queue.requeue("never-parked", due=0.0)
    [taken] = queue.take_due(3.0, advice_id=bad.id)
    assert taken.advice is bad
    assert taken.attempts == 2


def test_park_of_an_unknown_advice_changes_nothing() -> None:
    queue = InMemoryAdviceQueue()
    queue.park("never-queued", reason="whatever")
    assert queue.parked() == []
    assert len(queue) == 0


def test_next_due_is_the_earliest_time_an_advice_can_be_taken() -> None:
    queue = InMemoryAdviceQueue(lease=150.0)
    assert queue.next_due() is None
    a, b = confirmation(), reversal()
    queue.enqueue(a, due=9.0)
    queue.enqueue(b, due=4.0)
    assert queue.next_due() == 4.0
    queue.take_due(4.0)
    assert queue.next_due() == 9.0
    queue.acknowledge(b.id)
    assert queue.next_due() == 9.0
    queue.take_due(9.0)
    assert queue.next_due() == 159.0  # taken: free again when the lease runs out
    queue.acknowledge(a.id)
    assert queue.next_due() is None


@pytest.mark.parametrize("make", [confirmation, reversal])
def test_the_async_twin_shares_the_same_queue(
    make: Callable[[], TenderAdvice | BasicReversal],
) -> None:
    advice = make()
    queue = AsyncInMemoryAdviceQueue()

    async def flow() -> None:
        await queue.enqueue(advice, due=1.0)
        await queue.enqueue(advice, due=1.0)
        assert await queue.take_due(0.5) == []
        [taken] = await queue.take_due(1.0, advice_id=advice.id)
        assert taken.attempts == 1
        await queue.repeat_later(advice.id, due=2.0)
        [taken] = await queue.take_due(2.0, limit=1)
        assert taken.attempts == 2
        await queue.park(advice.id, reason="rejected")
        assert [p.reason for p in queue.sync.parked()] == ["rejected"]
        assert queue.sync.requeue(advice.id, due=3.0)
        await queue.take_due(3.0)
        await queue.acknowledge(advice.id)

    asyncio.run(flow())
    assert len(queue.sync) == 0
    assert queue.sync.parked() == []
    assert queue.sync.enqueued_total == 1


def test_the_async_twin_can_wrap_an_existing_queue() -> None:
    sync = InMemoryAdviceQueue()
    advice = confirmation()
    sync.enqueue(advice, due=0.0)
    wrapped = AsyncInMemoryAdviceQueue(sync)
    assert wrapped.sync is sync
    taken = asyncio.run(wrapped.take_due(0.0))
    assert taken_ids(taken) == [advice.id]
