"""Which sales a person must look at, what happened to each, and what to do about it.

The library settles every sale by itself except where the switch and the till may disagree,
a human decision was missed, or nobody can tell what happened:

conflict
    The advice got a final answer saying the switch holds the opposite outcome
    (``VOUCHER_ALREADY_CONFIRMED`` to a reversal, ``VOUCHER_ALREADY_REVERSED`` or an unknown
    provision to a confirmation). The advice has left the queue; money may be wrong.
rejected
    The advice got a final refusal that is not a conflict (a 4xx such as a format or
    authentication error). It is parked, not lost: fix the cause and re-queue it.
unattended
    A single-messaging voucher was issued after the sale's host was gone (recovery finished
    the sale with nobody at the till), so nobody was given it. The flag names the voucher by
    its serial number and references, never its code.
flagged
    Any other reconciliation flag: the flag's text says what happened.
host timeout
    The host never confirmed or cancelled a dual-messaging sale, so the library reversed it.
    Nothing is wrong with the money, but the till may have shown the voucher.
in doubt
    A sale stopped before its outcome was settled (PROVISIONING, RETRYING, or PROVISIONED
    waiting for its host) and no live process is driving it: the switch may hold a voucher
    nobody was given. ``voucher recover`` settles it.
damaged
    The journal row of a sale cannot be read back; it was skipped, so nothing resumes it.

:func:`report` turns journal entries, parked advices and damaged rows into one finding per
problem, each with the sale's time, terminal, product and amount.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping

import attrs

from voucher_core.messages import BasicReversal, TenderAdvice
from voucher_core.ports import JournalEntry
from voucher_core.table import State
from voucher_core.transaction import Transaction

__all__ = ["Finding", "Issue", "report"]


class Issue(enum.StrEnum):
    CONFLICT = "conflict"
    REJECTED = "rejected"
    UNATTENDED = "unattended"
    FLAGGED = "flagged"
    HOST_TIMEOUT = "host timeout"
    IN_DOUBT = "in doubt"
    DAMAGED = "damaged"


# The states of a sale whose outcome is not settled yet: the switch may hold a voucher.
_UNSETTLED = (State.PROVISIONING, State.RETRYING, State.PROVISIONED)


@attrs.frozen
class Finding:
    """One sale a person must look at: the issue, what happened, what to do, and how to find
    the sale at the till (``time``, ``terminal``, ``product``, ``amount`` in minor units of
    ``currency``, all from the provision request; None where unknown, as for a damaged row).
    ``flag`` is the sale's reconciliation flag as recorded, ``owner`` the journal owner of an
    unfinished sale (None: recorded without one)."""

    transaction_id: str
    state: str | None
    outcome: str | None
    issue: Issue
    happened: str
    action: str
    advice_id: str | None = None
    time: str | None = None
    terminal: str | None = None
    product: str | None = None
    amount: int | None = None
    currency: str | None = None
    flag: str | None = None
    owner: str | None = None

    @property
    def sale(self) -> str:
        """How a person finds the sale at the till, in one line."""
        if self.time is None:
            return "unknown (the journal row cannot be read)"
        parts = [self.time, f"terminal {self.terminal or '?'}", f"product {self.product or '?'}"]
        if self.amount is not None:
            currency = f" (currency {self.currency})" if self.currency else ""
            parts.append(f"amount {self.amount}{currency}")
        else:
            parts.append("amount ?")
        return ", ".join(parts)

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.transaction_id,
            "state": self.state,
            "outcome": self.outcome,
            "issue": self.issue.value,
            "happened": self.happened,
            "action": self.action,
            "adviceId": self.advice_id,
            "time": self.time,
            "terminal": self.terminal,
            "product": self.product,
            "amount": self.amount,
            "currency": self.currency,
            "flag": self.flag,
            "owner": self.owner,
        }


# -- what to do, one text per issue (docs/operations.md quotes each, as printed) -------------

CONFLICT_CONFIRMATION = (
    "Ask Electrum support, quoting the provision id, to reinstate and confirm the voucher; if "
    "they cannot, refund the customer."
)
CONFLICT_REVERSAL = (
    "Ask Electrum support, quoting the provision id, to reverse it; otherwise the provider will "
    "settle it: hand the voucher to the customer or recover the cost."
)
UNATTENDED = (
    "Find the customer from the till's record of this sale (time, terminal, amount): if they "
    "paid, hand them the voucher (the provider finds it by the serial number or reference in "
    "the flag); if not, ask Electrum support, quoting the provision id, to reverse it."
)
REJECTED = (
    "Fix the cause (credentials, message format, configuration), then re-queue the advice "
    "(`voucher queue requeue {advice}`); it will be delivered as it was first sent."
)
FLAGGED = (
    "Compare the till's record of this sale with the switch's (look it up by the provision "
    "id) and settle any difference with Electrum support."
)
HOST_TIMEOUT = (
    "Check the till's record of this sale: the customer must not have left with the voucher "
    "(it will not work); if they paid, refund them."
)
IN_DOUBT = (
    "Run `voucher recover{owner}` once you are sure the till's process is gone for good: it "
    "settles the sale with the switch (a provision in doubt is retried, then reversed; a sale "
    "waiting for its host is reversed). Hand nothing over for it until then."
)
DAMAGED = (
    "Restore the row from a backup of the database, then run `voucher recover` and `voucher "
    "reconcile` again; until then, look the sale up at the switch by this id to learn whether "
    "a voucher was issued, and settle it by hand."
)


def _finding(
    tx: Transaction, issue: Issue, happened: str, action: str, owner: str | None = None
) -> Finding:
    request = tx.request
    amounts = request.amounts
    amount = amounts.request_amount if amounts is not None else None
    return Finding(
        tx.id,
        tx.state.value,
        tx.outcome.value if tx.outcome is not None else None,
        issue,
        happened,
        action,
        tx.advice.id if tx.advice is not None else None,
        time=request.time.isoformat(sep=" ", timespec="seconds"),
        terminal=request.originator.terminal_id,
        product=request.product.product_id if request.product is not None else None,
        amount=amount.amount if amount is not None else None,
        currency=amount.currency if amount is not None else None,
        flag=tx.reconciliation,
        owner=owner,
    )


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
            CONFLICT_CONFIRMATION,
        )
    if kind == "conflict":
        return _finding(
            tx,
            Issue.CONFLICT,
            f"The customer was declined, but the switch holds the voucher confirmed: {detail}.",
            CONFLICT_REVERSAL,
        )
    if kind == "unattended":
        return _finding(
            tx,
            Issue.UNATTENDED,
            "The switch issued the voucher after the till's process had stopped (recovery "
            "finished the sale), so nobody was given it.",
            UNATTENDED,
        )
    if kind != "rejected":
        return _finding(tx, Issue.FLAGGED, f"The sale was flagged: {reason}.", FLAGGED)
    what = "confirmation" if confirmation else "reversal"
    where = "parked in the advice queue" if tx.advice and tx.advice.id in parked else "parked"
    return _finding(
        tx,
        Issue.REJECTED,
        f"The switch refused the {what} with a final error: {detail}. It is {where}.",
        REJECTED.format(advice=tx.advice.id if tx.advice else "?"),
    )


def _in_doubt(tx: Transaction, owner: str | None) -> Finding:
    if tx.state is State.PROVISIONED:
        happened = (
            "The switch approved the voucher and the sale was waiting for its host to confirm "
            "or cancel it, but no live process is driving it: nobody will decide."
        )
    else:
        happened = (
            "The provision went out (or was about to) and no answer was recorded, and no live "
            "process is driving the sale: the switch may hold a voucher nobody was given."
        )
    hint = f" --owner {owner}" if owner is not None else ""
    return _finding(tx, Issue.IN_DOUBT, happened, IN_DOUBT.format(owner=hint), owner)


def _damaged(transaction_id: str, reason: str) -> Finding:
    return Finding(
        transaction_id,
        None,
        None,
        Issue.DAMAGED,
        f"The journal row of this sale cannot be read back ({reason}); it was skipped, so "
        "nothing resumes the sale and this report cannot judge it.",
        DAMAGED,
    )


def report(
    entries: Iterable[JournalEntry],
    parked: Iterable[BasicReversal | TenderAdvice] = (),
    *,
    in_flight: Collection[str] = (),
    owners: Mapping[str, str | None] | None = None,
    damaged: Iterable[tuple[str, str]] = (),
) -> list[Finding]:
    """One finding per sale that needs a person, in journal order, then the damaged rows.

    ``parked``: the advices parked in the queue. Every unfinished sale whose outcome is not
    settled (PROVISIONING, RETRYING, PROVISIONED) is *in doubt* unless its id is in
    ``in_flight``, the sales a live process is driving right now. ``owners`` maps a sale's
    id to its journal owner, named in what to do. ``damaged``: ``(transaction id, reason)``
    of journal rows that could not be read.
    """
    parked_ids = {advice.id for advice in parked}
    owner_of = owners if owners is not None else {}
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
                    HOST_TIMEOUT,
                )
            )
        elif tx.state in _UNSETTLED and tx.id not in in_flight:
            findings.append(_in_doubt(tx, owner_of.get(tx.id)))
    findings += [_damaged(transaction_id, reason) for transaction_id, reason in damaged]
    return findings
