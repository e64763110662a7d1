"""Which sales a person must look at, what happened to each, and what to do about it.

The library settles every sale by itself except in three situations, where the switch and the
till disagree or a human decision was missed:

conflict
    The advice got a final answer saying the switch holds the opposite outcome
    (``VOUCHER_ALREADY_CONFIRMED`` to a reversal, ``VOUCHER_ALREADY_REVERSED`` or an unknown
    provision to a confirmation). The advice has left the queue; money may be wrong.
rejected
    The advice got a final refusal that is not a conflict (a 4xx such as a format or
    authentication error). It is parked, not lost: fix the cause and re-queue it.
host timeout
    The host never confirmed or cancelled a dual-messaging sale, so the library reversed it.
    Nothing is wrong with the money, but the till may have shown the voucher.

:func:`report` turns journal entries and parked advices into one item per problem.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import JournalEntry
from voucher_core.transaction import Transaction

__all__ = ["Finding", "Issue", "report"]


class Issue(enum.StrEnum):
    CONFLICT = "conflict"
    REJECTED = "rejected"
    HOST_TIMEOUT = "host timeout"


@attrs.frozen
class Finding:
    transaction_id: str
    state: str
    outcome: str | None
    issue: Issue
    happened: str
    action: str
    advice_id: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.transaction_id,
            "state": self.state,
            "outcome": self.outcome,
            "issue": self.issue.value,
            "happened": self.happened,
            "action": self.action,
            "adviceId": self.advice_id,
        }


def _finding(tx: Transaction, issue: Issue, happened: str, action: str) -> Finding:
    advice_id = tx.advice.id if tx.advice is not None else None
    outcome = tx.outcome.value if tx.outcome is not None else None
    return Finding(tx.id, tx.state.value, outcome, issue, happened, action, advice_id)


def _flagged(tx: Transaction, parked: set[str]) -> Finding:
    reason = tx.reconciliation or ""
    kind, _, detail = reason.partition(": ")
    confirmation = isinstance(tx.advice, TenderAdvice)
    if kind == "conflict" and confirmation:
        return _finding(
            tx,
            Issue.CONFLICT,
            f"The customer was approved and given the voucher, but the switch refused the "
            f"confirmation as final: {detail}.",
            "Ask Electrum support, quoting the provision id, to reinstate and confirm the "
            "voucher; if they cannot, refund the customer.",
        )
    if kind == "conflict":
        return _finding(
            tx,
            Issue.CONFLICT,
            f"The customer was declined, but the switch holds the voucher confirmed: {detail}.",
            "Ask Electrum support, quoting the provision id, to reverse it; otherwise the "
            "provider will settle it: hand the voucher to the customer or recover the cost.",
        )
    what = "confirmation" if confirmation else "reversal"
    where = "parked in the advice queue" if tx.advice and tx.advice.id in parked else "parked"
    return _finding(
        tx,
        Issue.REJECTED,
        f"The switch refused the {what} with a final error: {detail}. It is {where}.",
        f"Fix the cause (credentials, message format, configuration), then re-queue the "
        f"advice (voucher queue requeue {tx.advice.id if tx.advice else '?'}); it will be "
        f"delivered as it was first sent.",
    )


def report(
    entries: Iterable[JournalEntry], parked: Iterable[BasicReversal | TenderAdvice] = ()
) -> list[Finding]:
    """One finding per sale that needs a person, in journal order."""
    parked_ids = {advice.id for advice in parked}
    findings: list[Finding] = []
    for entry in entries:
        tx = entry.transaction
        if tx.reconciliation is not None:
            findings.append(_flagged(tx, parked_ids))
        elif tx.host_timed_out:
            findings.append(
                _finding(
                    tx,
                    Issue.HOST_TIMEOUT,
                    "The host neither confirmed nor cancelled within the decision limit, so "
                    "the sale was reversed and the customer declined.",
                    "Check the till's record of this sale: the customer must not have left "
                    "with the voucher (it will not work); if they paid, refund them.",
                )
            )
    return findings
