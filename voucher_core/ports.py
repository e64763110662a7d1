"""The ports: what the core needs from the outside world, as small protocols.

Adapters implement them (``voucher_adapters.stores.memory`` in-process; HTTP and durable storage
elsewhere). Each port comes as a sync and an async twin with the same method names.

Transport
    Carries one message to the switch and returns the *classified* reply
    (:mod:`voucher_core.replies`). It never raises for a network failure or a bad reply: those
    are replies too (``Unknown`` / ``RepeatLater``). ``timeout`` is the per-attempt limit in
    seconds from the :class:`~voucher_core.policy.RetryPolicy`. ``lookup`` takes a
    :class:`LookupQuery` (a plain string is the provision request's id) and returns the answer
    as a :class:`LookupReply`, parsed on demand.

AdviceQueue
    Store-and-forward storage for confirmations and reversals. ``enqueue`` must have stored the
    advice when it returns (a durable adapter commits first) and is idempotent on the advice
    id. ``take_due`` hands out advices whose time has come, each to one taker at a time, and
    times are the caller's monotonic seconds. An advice leaves the queue only by
    ``acknowledge`` (final, agreeing or conflicting) or moves aside by ``park`` (kept, listed,
    re-queueable); ``repeat_later`` puts it back with a new due time. ``next_due`` says when
    the next advice can be taken, so a driver can drain the queue without polling.

TransactionJournal
    Where every transaction's state is written before anything leaves and after everything
    that moves it. ``record`` must have stored the snapshot when it returns (a durable
    adapter commits first); if it cannot, it raises, and the driver stops that sale there
    rather than hand out a voucher whose confirmation could be forgotten. ``unfinished`` lists
    the non-terminal transactions a restarted process must resume. ``decision_deadline`` is
    the wall-clock time (seconds since the epoch) by which the host must decide on a
    PROVISIONED sale, kept so the limit survives a restart.

JournalQueue
    A journal and an advice queue that live in one database, written together: a state
    change and the advice it queues (or the settling of an advice and the state change its
    reply caused) commit in one transaction, or neither does. So the queue alone always
    shows every advice owed, with no window where only the journal knows of one. It is
    optional: a driver handed one uses it for those pairs of writes, and without it writes
    the journal first and the queue second, as for stores in separate databases (recovery
    then queues an advice the journal owes again).

Clock
    Wall time for message timestamps, monotonic time for deadlines and backoff, and sleeping.
    The core never reads one; drivers are handed one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import attrs

from voucher_core.errors import InvalidArgument
from voucher_core.messages import (
    BasicReversal,
    ErrorDetail,
    ProvisionRequest,
    TenderAdvice,
    VoucherLookupResponse,
)
from voucher_core.messages import _validators as v
from voucher_core.replies import AdviceKind, AdviceReply, ProvisionReply
from voucher_core.transaction import Transaction
from voucher_core.wire import WireFormatError, from_json

__all__ = [
    "AdviceQueue",
    "AsyncAdviceQueue",
    "AsyncJournalQueue",
    "AsyncTransactionJournal",
    "AsyncTransport",
    "Clock",
    "JournalEntry",
    "JournalQueue",
    "LookupQuery",
    "LookupReply",
    "Operation",
    "ParkedAdvice",
    "QueuedAdvice",
    "TransactionJournal",
    "Transport",
]


class Operation(enum.StrEnum):
    """The SUV operations, named by their ``operationId`` (``reset`` is the test server's)."""

    PROVISION = "provisionVoucher"
    RETRY = "retryProvisionVoucher"
    CONFIRM = "confirmVoucher"
    REVERSE = "reverseVoucher"
    LOOKUP = "lookupVoucher"
    RESET = "reset"


@attrs.frozen
class QueuedAdvice:
    """An advice as the queue holds it. ``attempts`` counts sends so far."""

    advice: TenderAdvice | BasicReversal
    attempts: int = 0

    @property
    def id(self) -> str:
        return self.advice.id

    @property
    def request_id(self) -> str:
        return self.advice.request_id

    @property
    def kind(self) -> AdviceKind:
        if isinstance(self.advice, TenderAdvice):
            return AdviceKind.CONFIRMATION
        return AdviceKind.REVERSAL


@attrs.frozen
class ParkedAdvice:
    """An advice set aside after a final rejection, with the reply that caused it."""

    queued: QueuedAdvice
    reason: str


@attrs.frozen(kw_only=True)
class LookupQuery:
    """What ``lookupVoucher`` asks for: a voucher by its provision request's id
    (``provisionRequestId``), by its code (``voucherCode``), by its serial number
    (``voucherSerialNumber``), or by several of these, when the switch must find one voucher
    that matches them all. ``receiver_inst_id`` (``receiverInstId``, the institution that
    issued the voucher) and ``settlement_entity_inst_id`` (``settlementEntityInstId``, the one
    the lookup should go through) only direct the lookup: they name no voucher on their own.

    The code is as good as cash: it is masked in the repr. The serial number is not: it
    identifies the voucher in the vendor's system but cannot redeem it (the swagger's words),
    and it is printed on receipts beside the masked code for that reason.

    >>> LookupQuery(provision_request_id="0f8fad5b-d9cb-469f-a165-70867728950e").params()
    {'provisionRequestId': '0f8fad5b-d9cb-469f-a165-70867728950e'}
    """

    provision_request_id: str | None = attrs.field(
        default=None, validator=v.optional(v.uuid_string)
    )
    voucher_code: str | None = attrs.field(
        default=None, validator=v.optional(v.max_length(40)), repr=v.masked
    )
    voucher_serial_number: str | None = attrs.field(
        default=None, validator=v.optional(v.max_length(40))
    )
    receiver_inst_id: str | None = None
    settlement_entity_inst_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if (
            self.provision_request_id is None
            and self.voucher_code is None
            and self.voucher_serial_number is None
        ):
            raise InvalidArgument(
                "a lookup needs a provision request id, a voucher code or a serial number"
            )
        for value, what in (
            (self.voucher_code, "voucher code needs a code"),
            (self.voucher_serial_number, "serial number needs a serial number"),
            (self.receiver_inst_id, "receiver needs an institution id"),
            (self.settlement_entity_inst_id, "settlement entity needs an institution id"),
        ):
            if value == "":
                raise InvalidArgument(f"a lookup by {what} that is not empty")

    @classmethod
    def of(cls, query: LookupQuery | str) -> LookupQuery:
        """*query* itself, or the query for the provision request with that id."""
        return query if isinstance(query, LookupQuery) else cls(provision_request_id=query)

    def params(self) -> dict[str, str]:
        """The query string's parameters, in the swagger's names."""
        named = (
            ("provisionRequestId", self.provision_request_id),
            ("voucherCode", self.voucher_code),
            ("voucherSerialNumber", self.voucher_serial_number),
            ("receiverInstId", self.receiver_inst_id),
            ("settlementEntityInstId", self.settlement_entity_inst_id),
        )
        return {name: value for name, value in named if value is not None}


@attrs.frozen
class LookupReply:
    """The answer to ``lookupVoucher``: the HTTP status and the raw body, read on demand.

    ``status`` is ``None`` when no answer arrived (``detail`` says why). :attr:`response` is
    the ``VoucherLookupResponse`` of a 2xx, :attr:`error` the ``ErrorDetail`` of anything else;
    both are ``None`` when the body is not one, and neither ever raises.
    """

    status: int | None
    content: bytes
    detail: str = ""

    @property
    def response(self) -> VoucherLookupResponse | None:
        """The voucher found, read tolerantly as every reply is; ``None`` if there is none."""
        if self.status is None or not 200 <= self.status < 300:
            return None
        try:
            return from_json(VoucherLookupResponse, self.content)
        except WireFormatError:
            return None

    @property
    def error(self) -> ErrorDetail | None:
        """Why the lookup failed, when the switch said so in an ``ErrorDetail``."""
        if self.status is None or 200 <= self.status < 300:
            return None
        try:
            return from_json(ErrorDetail, self.content)
        except WireFormatError:
            return None


class Transport(Protocol):
    def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply: ...

    def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply: ...

    def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply: ...

    def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply: ...

    def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply: ...


class AsyncTransport(Protocol):
    async def provision(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply: ...

    async def retry(self, request: ProvisionRequest, *, timeout: float) -> ProvisionReply: ...

    async def confirm(self, advice: TenderAdvice, *, timeout: float) -> AdviceReply: ...

    async def reverse(self, advice: BasicReversal, *, timeout: float) -> AdviceReply: ...

    async def lookup(self, query: LookupQuery | str, *, timeout: float) -> LookupReply: ...


class AdviceQueue(Protocol):
    def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        """Store ``advice`` to be sent from ``due`` on (a no-op if its id is already queued
        or parked). With ``take``, also lease it to the caller in the same step, as
        ``take_due(due, limit=1, advice_id=advice.id)`` would, and return it (``None`` if it
        is not free to take, e.g. another forwarder holds it); else return ``None``."""
        ...

    def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> Sequence[QueuedAdvice]: ...

    def acknowledge(self, advice_id: str) -> None: ...

    def repeat_later(self, advice_id: str, *, due: float) -> None: ...

    def park(self, advice_id: str, *, reason: str) -> None: ...

    def next_due(self) -> float | None:
        """When ``take_due`` will next hand something out (a due time, or the end of a
        lease), or None when nothing but parked advices is left."""
        ...


class AsyncAdviceQueue(Protocol):
    async def enqueue(
        self, advice: TenderAdvice | BasicReversal, *, due: float, take: bool = False
    ) -> QueuedAdvice | None:
        """As :meth:`AdviceQueue.enqueue`."""
        ...

    async def take_due(
        self, now: float, *, limit: int = 100, advice_id: str | None = None
    ) -> Sequence[QueuedAdvice]: ...

    async def acknowledge(self, advice_id: str) -> None: ...

    async def repeat_later(self, advice_id: str, *, due: float) -> None: ...

    async def park(self, advice_id: str, *, reason: str) -> None: ...

    async def next_due(self) -> float | None:
        """As :meth:`AdviceQueue.next_due`."""
        ...


@attrs.frozen
class JournalEntry:
    """A transaction as the journal holds it."""

    transaction: Transaction
    decision_deadline: float | None = None


class TransactionJournal(Protocol):
    def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None: ...

    def get(self, transaction_id: str) -> JournalEntry | None: ...

    def unfinished(self) -> Sequence[JournalEntry]: ...

    def entries(self) -> Sequence[JournalEntry]: ...


class AsyncTransactionJournal(Protocol):
    async def record(self, tx: Transaction, *, decision_deadline: float | None = None) -> None: ...

    async def get(self, transaction_id: str) -> JournalEntry | None: ...

    async def unfinished(self) -> Sequence[JournalEntry]: ...

    async def entries(self) -> Sequence[JournalEntry]: ...


class JournalQueue(Protocol):
    """The journal and the queue of one database, written in one commit (see the module)."""

    def record_and_enqueue(
        self, tx: Transaction, advice: TenderAdvice | BasicReversal, *, due: float, take: bool
    ) -> QueuedAdvice | None:
        """``record(tx)`` and ``enqueue(advice, due=due, take=take)`` in one commit; returns
        what ``enqueue`` returns. If it raises, neither is stored."""
        ...

    def record_and_settle(
        self, tx: Transaction, advice_id: str, *, park_reason: str | None = None
    ) -> None:
        """``record(tx)`` and the final settling of an advice in one commit: acknowledged
        (removed), or parked with ``park_reason``. A settle fenced off because another
        holder took the advice over changes nothing in the queue, and the record still
        stands. If it raises, neither is stored."""
        ...


class AsyncJournalQueue(Protocol):
    async def record_and_enqueue(
        self, tx: Transaction, advice: TenderAdvice | BasicReversal, *, due: float, take: bool
    ) -> QueuedAdvice | None:
        """As :meth:`JournalQueue.record_and_enqueue`."""
        ...

    async def record_and_settle(
        self, tx: Transaction, advice_id: str, *, park_reason: str | None = None
    ) -> None:
        """As :meth:`JournalQueue.record_and_settle`."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall time, for the ``time`` field of messages."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines and backoff."""
        ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...
