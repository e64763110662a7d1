"""The transaction state machine, as data.

This table is the single source of truth for how a sale moves. :mod:`voucher_core.transaction`
builds its ``transitions`` machine from it, one transition per rule with the rule's guard as
its condition, and :mod:`voucher_core.diagram` draws the state diagram in ``docs/`` from it, so
the picture cannot drift from the code. A few rules need more than a state and an event and
live in the code instead: the WARNING above :data:`TRANSITIONS` lists them.

Each :class:`Rule` reads: in state ``source``, when ``event`` happens and ``guard`` holds, move
to ``dest`` and send ``sends``. Rules for one (source, event) pair are tried in order; their
guards are written so that exactly one applies. A rule whose ``dest`` is ``None`` is an internal
transition: it is accepted and leaves the state where it is (a repeated acknowledgement changes
nothing; the host going away mid-flight is noted on the transaction, see WARNING below).
"""

from __future__ import annotations

import enum

import attrs

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "Event",
    "Guard",
    "Rule",
    "Send",
    "State",
]


class State(enum.StrEnum):
    PROVISIONING = "PROVISIONING"
    RETRYING = "RETRYING"
    PROVISIONED = "PROVISIONED"
    CONFIRMING = "CONFIRMING"
    REVERSING = "REVERSING"
    DONE = "DONE"
    DECLINED = "DECLINED"


TERMINAL = frozenset({State.DONE, State.DECLINED})


class Event(enum.StrEnum):
    """What can happen to a transaction. Values are the trigger names."""

    PROVISION_APPROVED = "provision_approved"
    PROVISION_DECLINED = "provision_declined"
    PROVISION_UNKNOWN = "provision_unknown"
    DELIVERED = "delivered"
    HOST_CONFIRMED = "host_confirmed"
    HOST_CANCELLED = "host_cancelled"
    DECISION_TIMED_OUT = "decision_timed_out"
    ADVICE_ACKNOWLEDGED = "advice_acknowledged"
    ADVICE_REFUSED = "advice_refused"
    HOST_GONE = "host_gone"


class Guard(enum.StrEnum):
    """Conditions a rule may require; each is a condition of the machine, named by its value.

    :mod:`voucher_core.transaction` holds one predicate per guard and hands it to the machine
    as the condition of every transition whose rule names that guard.
    """

    SINGLE_MESSAGING = "single messaging, host there"
    SINGLE_UNATTENDED = "single messaging, host gone"
    RETRY_ALLOWED = "retries supported and left"
    NO_RETRY_LEFT = "no retries supported or left"


class Send(enum.StrEnum):
    """What a rule sends. Advices go through the advice queue, never straight to the wire."""

    NOTHING = ""
    RETRY = "retryProvisionVoucher"
    CONFIRMATION = "TenderAdvice"
    REVERSAL_UNANSWERED = "BasicReversal (TIMEOUT or RESPONSE_NOT_FINAL)"
    REVERSAL_CANCELLED = "BasicReversal (CANCELLED)"


@attrs.frozen
class Rule:
    source: State
    event: Event
    dest: State | None
    guard: Guard | None = None
    sends: Send = Send.NOTHING
    flags_reconciliation: bool = False


# WARNING: these rules are kept in voucher_core.transaction, not in the table below, because
# they need more than a state and an event. Change one there and here together; the diagram
# and docs/state-machine.md show only the table.
#
# * Chained moves. An approval in single messaging is followed at once by ``delivered``, which
#   the core fires itself (Transaction.provision_replied); no driver feeds it. In dual
#   messaging, an approval of a sale whose host is gone (Transaction.unattended) goes straight
#   on to ``host_gone``, which reverses it; otherwise tenders given up front
#   (Transaction.begin(tenders=...)) make the approval go straight on to ``host_confirmed``,
#   exactly as if the host had called Transaction.confirm.
# * Whose host is gone. ``host_gone`` in PROVISIONING or RETRYING changes no state but sets
#   Transaction.unattended, which the guards of ``delivered`` read and the journal keeps; the
#   driver feeds it when recovery resumes a sale in flight and when sell() fails after the
#   request left. Nothing clears it.
# * Send to command. What a rule's ``sends`` becomes is code: RETRY counts the retry and sends
#   the original request again (SendRetry, Transaction._command); CONFIRMATION is the
#   TenderAdvice that Transaction.confirm builds before it fires the event, so a bad tender
#   leaves the state alone; both reversals queue a BasicReversal (QueueAdvice), built once.
# * The reversal's reason. REVERSAL_CANCELLED carries CANCELLED; REVERSAL_UNANSWERED carries
#   RESPONSE_NOT_FINAL when the first attempt's answer was not final, TIMEOUT otherwise.
# * What ``flags_reconciliation`` writes is code: "conflict: ..." or "rejected: ..." from the
#   reply (Transaction.advice_replied), or "unattended: ..." with the voucher's reference, never
#   its code (Transaction.provision_replied, on ``delivered`` to a sale whose host is gone).
# * Replies that are no event: a RepeatLater advice reply never reaches the machine, and
#   Transaction.interrupted feeds ``provision_unknown`` only in PROVISIONING or RETRYING.

_P, _R, _PD = State.PROVISIONING, State.RETRYING, State.PROVISIONED
_C, _V, _D, _X = State.CONFIRMING, State.REVERSING, State.DONE, State.DECLINED

TRANSITIONS: tuple[Rule, ...] = (
    # The first attempt.
    Rule(_P, Event.PROVISION_APPROVED, _PD),
    Rule(_P, Event.PROVISION_DECLINED, _X),
    Rule(_P, Event.PROVISION_UNKNOWN, _R, Guard.RETRY_ALLOWED, Send.RETRY),
    Rule(_P, Event.PROVISION_UNKNOWN, _V, Guard.NO_RETRY_LEFT, Send.REVERSAL_UNANSWERED),
    # Retries: the same id and body, at most RetryPolicy.max_retries of them.
    Rule(_R, Event.PROVISION_APPROVED, _PD),
    Rule(_R, Event.PROVISION_UNKNOWN, _R, Guard.RETRY_ALLOWED, Send.RETRY),
    Rule(_R, Event.PROVISION_UNKNOWN, _V, Guard.NO_RETRY_LEFT, Send.REVERSAL_UNANSWERED),
    # A decline of a retry does not prove the first attempt failed: reverse to be sure.
    Rule(_R, Event.PROVISION_DECLINED, _V, sends=Send.REVERSAL_UNANSWERED),
    # A voucher in hand. Nobody may be left holding one unawares: a single-messaging voucher
    # issued after its host was gone is flagged for a person to hand over or have reversed.
    Rule(_PD, Event.DELIVERED, _D, Guard.SINGLE_MESSAGING),
    Rule(_PD, Event.DELIVERED, _D, Guard.SINGLE_UNATTENDED, flags_reconciliation=True),
    Rule(_PD, Event.HOST_CONFIRMED, _C, sends=Send.CONFIRMATION),
    Rule(_PD, Event.HOST_CANCELLED, _V, sends=Send.REVERSAL_CANCELLED),
    Rule(_PD, Event.DECISION_TIMED_OUT, _V, sends=Send.REVERSAL_CANCELLED),
    # The host is gone (a restart resumed the sale, or sell() failed after the request left):
    # noted while in flight; a dual-messaging voucher that arrives then is reversed, never
    # confirmed, even with tenders given up front.
    Rule(_P, Event.HOST_GONE, None),
    Rule(_R, Event.HOST_GONE, None),
    Rule(_PD, Event.HOST_GONE, _V, sends=Send.REVERSAL_CANCELLED),
    # Advices settle.
    Rule(_C, Event.ADVICE_ACKNOWLEDGED, _D),
    Rule(_V, Event.ADVICE_ACKNOWLEDGED, _X),
    Rule(_C, Event.ADVICE_REFUSED, _D, flags_reconciliation=True),
    Rule(_V, Event.ADVICE_REFUSED, _X, flags_reconciliation=True),
    # Advices are delivered at least once, so acknowledgements can repeat: harmless.
    Rule(_D, Event.ADVICE_ACKNOWLEDGED, None),
    Rule(_X, Event.ADVICE_ACKNOWLEDGED, None),
)
