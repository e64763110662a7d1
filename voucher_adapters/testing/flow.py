"""Asserting a sale's message flow, with the whole timeline in the failure message.

A till (or your own code) records what a transport's ``observer`` and a driver's
``DriverSettings.observer`` report, in the order they report it: :class:`Exchange` objects and
traces (:class:`StateChanged`, :class:`AdviceQueued`, ...). :func:`assert_flow` picks out one
transaction's records, compares what was sent and where the sale ended with what the test
expected, and on a mismatch raises an :class:`AssertionError` that shows both and the sale's
timeline, so a failing test says what actually happened.

Operations are named in short words (``provision``, ``retry``, ``confirm``, ``reverse``,
``lookup``); the SUV names (``provisionVoucher``...) are accepted too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from voucher_adapters.cli.timeline import describe_reply
from voucher_adapters.transports.exchange import Exchange, Operation
from voucher_core.drivers import AdviceQueued, AdviceSettled, DecisionAwaited, StateChanged, Trace
from voucher_core.errors import InvalidArgument, VoucherError
from voucher_core.replies import RepeatLater
from voucher_core.table import State
from voucher_core.transaction import Outcome, Transaction

__all__ = [
    "UNCHECKED",
    "FlowMismatch",
    "Record",
    "assert_flow",
    "describe_flow",
    "operation_name",
    "operations_of",
]

Record = Exchange | Trace

SHORT_NAMES: Final[dict[Operation, str]] = {
    Operation.PROVISION: "provision",
    Operation.RETRY: "retry",
    Operation.CONFIRM: "confirm",
    Operation.REVERSE: "reverse",
    Operation.LOOKUP: "lookup",
    Operation.RESET: "reset",
}
_BY_NAME: Final[dict[str, Operation]] = {
    **{short: operation for operation, short in SHORT_NAMES.items()},
    **{operation.value: operation for operation in Operation},
}


class _Unchecked:
    """Marks an expectation the caller left out (``None`` is a real expected outcome)."""

    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED: Final = _Unchecked()


class FlowMismatch(VoucherError, AssertionError):
    """A sale's flow differs from what the test expected; the message shows the timeline.

    An ``AssertionError``, so pytest reports it as a failed assertion, and a
    :class:`~voucher_core.errors.VoucherError`, as every error of the library is."""


def operation_name(operation: Operation | str) -> str:
    """The short word for an operation: ``provision``, ``retry``, ``confirm``..."""
    try:
        return SHORT_NAMES[_BY_NAME[str(operation)]]
    except KeyError:
        known = ", ".join(SHORT_NAMES.values())
        raise InvalidArgument(f"unknown operation {operation!r}; use one of {known}") from None


def _transaction_id(record: Record) -> str:
    if isinstance(record, Exchange):
        return record.request_id
    return record.transaction_id


def _records_of(tx: Transaction | str, records: Iterable[Record]) -> list[Record]:
    tid = tx if isinstance(tx, str) else tx.id
    return [record for record in records if _transaction_id(record) == tid]


def operations_of(tx: Transaction | str, records: Iterable[Record]) -> list[str]:
    """The operations sent for ``tx``, in order, as short words."""
    return [
        SHORT_NAMES[record.operation]
        for record in _records_of(tx, records)
        if isinstance(record, Exchange)
    ]


def _line(record: Record) -> str | None:
    if isinstance(record, Exchange):
        name = SHORT_NAMES[record.operation]
        return f"{name:<10} id={record.message_id[:8]}  -> {describe_reply(record.reply)}"
    if isinstance(record, StateChanged):
        return f"{'state':<10} {record.source} -> {record.dest}"
    if isinstance(record, AdviceQueued):
        return f"{'queue':<10} {record.kind} {record.advice_id[:8]} stored for delivery"
    if isinstance(record, DecisionAwaited):
        return f"{'host':<10} voucher in hand; waiting for the host to confirm or cancel"
    if isinstance(record, AdviceSettled) and not isinstance(record.reply, RepeatLater):
        return f"{'queue':<10} {record.kind} {record.advice_id[:8]} settled"
    return None


def describe_flow(tx: Transaction | str, records: Iterable[Record]) -> str:
    """``tx``'s timeline, one numbered line per message and state change."""
    lines = [line for line in map(_line, _records_of(tx, records)) if line is not None]
    if not lines:
        return "  (nothing was recorded for this sale)"
    return "\n".join(f"  {number:>2}. {line}" for number, line in enumerate(lines, 1))


def _words(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "(none)"


def _outcome(value: Outcome | None) -> str:
    return "none yet" if value is None else value.value


def assert_flow(
    tx: Transaction,
    records: Iterable[Record],
    *,
    operations: Sequence[Operation | str] | None = None,
    final_state: State | str | None = None,
    outcome: Outcome | str | _Unchecked | None = UNCHECKED,
    reconciliation: bool | None = None,
) -> None:
    """Check ``tx``'s messages and where it ended; raise :class:`FlowMismatch` if they differ.

    ``records`` is everything the transport's and the driver's observers reported (other
    sales' records are ignored). Only what is given is checked: ``operations`` (in order),
    ``final_state``, ``outcome`` (``None`` means "not known yet") and ``reconciliation``
    (whether the sale was flagged for a person to look at).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    records = list(records)
    problems: list[str] = []
    if operations is not None:
        expected = [operation_name(operation) for operation in operations]
        actual = operations_of(tx, records)
        if expected != actual:
            problems.append(
                f"  operations   expected: {_words(expected)}\n"
                f"               actual:   {_words(actual)}"
            )
    if final_state is not None and State(final_state) is not tx.state:
        problems.append(
            f"  final state  expected: {State(final_state)}\n               actual:   {tx.state}"
        )
    if not isinstance(outcome, _Unchecked):
        wanted = None if outcome is None else Outcome(outcome)
        if wanted is not tx.outcome:
            problems.append(
                f"  outcome      expected: {_outcome(wanted)}\n"
                f"               actual:   {_outcome(tx.outcome)}"
            )
    if reconciliation is not None and reconciliation != (tx.reconciliation is not None):
        flag = tx.reconciliation or "not flagged"
        problems.append(
            f"  reconciliation expected: {'flagged' if reconciliation else 'not flagged'}\n"
            f"                 actual:   {flag}"
        )
    if problems:
        raise FlowMismatch(
            f"sale {tx.id} did not go as expected:\n"
            + "\n".join(problems)
            + f"\nwhat happened (now {tx.state}, outcome {_outcome(tx.outcome)}):\n"
            + describe_flow(tx, records)
        )
