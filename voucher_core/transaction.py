"""One sale, as a state machine that takes what happened and says what to send next.

Theory of operation
-------------------
A :class:`Transaction` is a small record: the provision request, the provider's profile, the
retry policy, the state, and whatever the switch has said so far. It performs no I/O and reads
no clock. A driver feeds it what happened (a classified reply, the host's decision, an advice's
final status) and gets back at most one :data:`~voucher_core.commands.Command`: send a
provision, send a retry, queue an advice, or wait for the host. Time arrives as arguments
(``now`` stamps outgoing advices); fresh ids come from a ``new_id`` callable the driver may
replace.

Every transaction shares one ``transitions`` machine, built once from
:data:`voucher_core.table.TRANSITIONS`. The machine is not attached to the transactions (a
``Machine`` per object costs tens of kilobytes); events are fired on the shared machine with the
transaction passed as the model, so a transaction costs only its own fields. Each of the
machine's transitions is one :class:`~voucher_core.table.Rule`: its guard is the transition's
condition, and the transition hands its rule to the transaction as it fires. What an event did
is therefore the machine's own answer, read once and used as it is, never worked out again
from the table.

Rules the code keeps
--------------------
* The table's rules that live here rather than in the table (the moves an approval chains,
  what each :class:`~voucher_core.table.Send` becomes, the reversal's reason) are listed under
  WARNING in :mod:`voucher_core.table`; change them there and here together.
* An event that does not apply raises :class:`~voucher_core.errors.InvalidEvent` and leaves the
  transaction untouched. Anything that could fail while preparing a message is done before the
  state changes, so a failure never leaves a half-moved transaction.
* Retries reuse the original request object: same id, same body.
* An advice is built once, when the rule that sends it fires, and kept: repeats are identical.
* The customer's outcome is known before the messaging ends (:attr:`Transaction.outcome`).
* A sale whose host is gone (:meth:`Transaction.host_gone`, :attr:`Transaction.unattended`)
  never ends approved in silence: a dual-messaging voucher that arrives is reversed, a
  single-messaging one ends flagged for reconciliation with its reference (never its code).
* The transaction never claims more than the journal holds: a driver marks what the journal
  took (:meth:`Transaction.checkpoint`) and returns to it when a write fails
  (:meth:`Transaction.roll_back`).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
from transitions import Event as TransitionsEvent
from transitions import EventData, Machine, MachineError, Transition

from voucher_core.commands import AwaitDecision, Command, QueueAdvice, SendProvision, SendRetry
from voucher_core.errors import InvalidArgument, InvalidEvent, LookupRefused
from voucher_core.messages import (
    BasicReversal,
    ProvisionRequest,
    ProvisionResponse,
    ReversalReason,
    Tender,
    TenderAdvice,
    ThirdPartyIdentifier,
)
from voucher_core.policy import DUAL, ProviderProfile, RetryPolicy
from voucher_core.replies import (
    Acknowledged,
    AdviceReply,
    Approved,
    Conflict,
    Declined,
    ProvisionReply,
    Rejected,
    RepeatLater,
    Unknown,
    UnknownReason,
)
from voucher_core.table import TERMINAL, TRANSITIONS, Event, Guard, Rule, Send, State

# What a checkpoint keeps: every field that changes in a sale's life (the request, profile and
# policy never do). The snapshot in voucher_core.snapshot is made of the same fields.
_CHANGING = (
    "state",
    "tenders",
    "retries",
    "response",
    "advice",
    "unanswered",
    "declined",
    "reconciliation",
    "host_timed_out",
    "unattended",
)

__all__ = ["Outcome", "Transaction", "random_id"]

_DEFAULT_POLICY = RetryPolicy()


def random_id() -> str:
    """A fresh random UUID v4, as every message id must be."""
    return str(uuid.uuid4())


class Outcome(enum.StrEnum):
    """What the customer is told. Decided before the messaging ends."""

    APPROVED = "approved"
    DECLINED = "declined"


@attrs.define(slots=True, eq=False)
class Transaction:
    """The state of one voucher sale. Create it with :meth:`begin`."""

    request: ProvisionRequest
    profile: ProviderProfile
    policy: RetryPolicy
    state: State = State.PROVISIONING
    tenders: tuple[Tender, ...] | None = None
    retries: int = 0
    response: ProvisionResponse | None = None
    advice: TenderAdvice | BasicReversal | None = None
    unanswered: UnknownReason | None = None
    declined: Declined | None = None
    reconciliation: str | None = None
    host_timed_out: bool = False
    # Nobody is there to be told this sale's outcome: see host_gone().
    unattended: bool = False
    # The rule the shared machine fired last, handed over by the transition that fired.
    _fired: Rule | None = attrs.field(default=None, repr=False)
    # Moves since last taken, kept only when someone asked (see record_moves).
    _moves: list[tuple[State, State]] | None = attrs.field(default=None, repr=False)
    # The JSON text of messages already snapshotted, by part, each beside the message it
    # was made from (messages are immutable, so identity says it is still right).
    _wire_memo: dict[str, tuple[object, str]] | None = attrs.field(default=None, repr=False)
    # The changing fields as the journal last took them (see checkpoint), or None if never.
    _kept: tuple[Any, ...] | None = attrs.field(default=None, repr=False)

    @classmethod
    def begin(
        cls,
        request: ProvisionRequest,
        *,
        profile: ProviderProfile = DUAL,
        policy: RetryPolicy = _DEFAULT_POLICY,
        tenders: tuple[Tender, ...] | None = None,
    ) -> tuple[Transaction, SendProvision]:
        """Start a sale. ``tenders`` given up front make the confirmation follow at once."""
        tx = cls(request, profile, policy, tenders=tuple(tenders) if tenders else None)
        return tx, SendProvision(request)

    # -- what the driver reads ----------------------------------------------------------------

    @property
    def id(self) -> str:
        """The provision request's id, which names the transaction everywhere."""
        return self.request.id

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def outcome(self) -> Outcome | None:
        """Approved at PROVISIONED (single) or CONFIRMING (dual), declined at REVERSING."""
        state = self.state
        if state is State.DONE or state is State.CONFIRMING:
            return Outcome.APPROVED
        if state is State.DECLINED or state is State.REVERSING:
            return Outcome.DECLINED
        if state is State.PROVISIONED and not self.profile.dual:
            return Outcome.APPROVED
        return None

    @property
    def third_party_identifiers(self) -> tuple[ThirdPartyIdentifier, ...]:
        """As the response returned them, or the request's if no response arrived."""
        source = self.response if self.response is not None else self.request
        return source.third_party_identifiers

    def record_moves(self) -> None:
        """Keep every state change from now on, for :meth:`take_moves`.

        One event can move a transaction twice (an approval in single messaging goes on to
        DONE; tenders given up front go on to CONFIRMING); observers that draw timelines want
        each step. Off by default, so a transaction nobody watches carries no list.
        """
        if self._moves is None:
            self._moves = []

    def take_moves(self) -> list[tuple[State, State]]:
        """The state changes since the last call (empty unless :meth:`record_moves` was)."""
        moves = self._moves
        if not moves:
            return []
        self._moves = []
        return moves

    @property
    def checkpointed(self) -> bool:
        """Whether the journal has ever taken this transaction (see :meth:`checkpoint`)."""
        return self._kept is not None

    def checkpoint(self) -> None:
        """The journal now holds this transaction as it is: :meth:`roll_back` returns here.

        A driver calls it after each journal write that returned; :func:`voucher_core.snapshot.
        restore` calls it on what it reads back.
        """
        self._kept = tuple(getattr(self, name) for name in _CHANGING)

    def roll_back(self) -> None:
        """Return to what the journal last took, after a write that failed.

        Events fired since the last :meth:`checkpoint` are undone, so the transaction never
        claims more than the journal holds (a host that reads ``state`` or ``outcome`` after a
        failed ``confirm()`` sees the sale as it was). Nothing happens if the journal never
        took it: nothing was sent then, and the transaction is as it began.
        """
        kept = self._kept
        if kept is None:
            return
        for name, value in zip(_CHANGING, kept, strict=True):
            setattr(self, name, value)

    def lookup_id(self) -> str:
        """The id to look the transaction up by; refused until it is terminal."""
        if not self.terminal:
            raise LookupRefused(self.id, self.state)
        return self.id

    def lookup_code(self) -> str:
        """The voucher code to look the transaction up by; refused until it is terminal.

        Raises :class:`~voucher_core.errors.InvalidArgument` when no voucher came back.
        """
        if not self.terminal:
            raise LookupRefused(self.id, self.state)
        voucher = self.response.voucher if self.response is not None else None
        if voucher is None or not voucher.code:
            raise InvalidArgument(f"transaction {self.id} holds no voucher code to look up by")
        return voucher.code

    # -- what happened ------------------------------------------------------------------------

    def provision_replied(
        self, reply: ProvisionReply, *, now: datetime, new_id: Callable[[], str] = random_id
    ) -> Command | None:
        """Feed the classified reply to the provision or the latest retry."""
        if isinstance(reply, Approved):
            self._fire(Event.PROVISION_APPROVED)
            self.response = reply.response
            if not self.profile.dual:
                if self._fire(Event.DELIVERED).flags_reconciliation:  # the host is gone
                    self.reconciliation = _unattended(reply.response)
                return None
            if self.unattended:  # nobody can take the voucher: reverse it, even if paid for
                return self.host_gone(now=now, new_id=new_id)
            if self.tenders is not None:
                return self.confirm(self.tenders, now=now, new_id=new_id)
            return AwaitDecision()
        if isinstance(reply, Declined):
            rule = self._fire(Event.PROVISION_DECLINED)
            self.declined = reply
            return self._command(rule, now, new_id)
        if self.unanswered is None and self.state is State.PROVISIONING:
            self.unanswered = reply.reason
        return self._command(self._fire(Event.PROVISION_UNKNOWN), now, new_id)

    def confirm(
        self,
        tenders: tuple[Tender, ...],
        *,
        now: datetime,
        new_id: Callable[[], str] = random_id,
    ) -> Command | None:
        """The host took payment: confirm the voucher with these tenders."""
        self._expect(Event.HOST_CONFIRMED)
        advice = TenderAdvice(
            id=new_id(),
            request_id=self.id,
            time=now,
            third_party_identifiers=self.third_party_identifiers,
            tenders=tuple(tenders),
        )
        self._fire(Event.HOST_CONFIRMED)
        self.tenders = tuple(tenders)
        self.advice = advice
        return QueueAdvice(advice)

    def cancel(self, *, now: datetime, new_id: Callable[[], str] = random_id) -> Command | None:
        """The host or customer called the sale off: reverse the voucher."""
        return self._command(self._fire(Event.HOST_CANCELLED), now, new_id)

    def decision_timed_out(
        self, *, now: datetime, new_id: Callable[[], str] = random_id
    ) -> Command | None:
        """The host did not decide within the limit: reverse on the customer's behalf."""
        rule = self._fire(Event.DECISION_TIMED_OUT)
        self.host_timed_out = True
        return self._command(rule, now, new_id)

    def host_gone(self, *, now: datetime, new_id: Callable[[], str] = random_id) -> Command | None:
        """Nobody is there any more to be told this sale's outcome (see :attr:`unattended`).

        A driver says so when recovery resumes a sale that was in flight (its host process
        died) and when ``sell()`` failed after the request left (its host told the customer the
        sale failed). In PROVISIONING or RETRYING it is noted and nothing is sent: the sale goes
        on, and a voucher that arrives is not handed to anyone: reversed in dual messaging (even
        with tenders given up front), flagged for reconciliation with its reference in single
        messaging. Waiting for the host (PROVISIONED), the voucher is reversed at once.
        """
        rule = self._fire(Event.HOST_GONE)
        self.unattended = True
        return self._command(rule, now, new_id)

    def interrupted(
        self, *, now: datetime, new_id: Callable[[], str] = random_id
    ) -> Command | None:
        """Resume after a restart: a provision whose answer was never read counts as unanswered.

        In PROVISIONING or RETRYING the request may or may not have reached the switch, so
        this is an unknown outcome like a timeout: a retry follows, or a reversal once retries
        are spent or unsupported. Other states have nothing in flight and need no event: a
        CONFIRMING or REVERSING transaction's advice is in the queue (re-queue it, which is
        idempotent), and a PROVISIONED one waits for its host.
        """
        if self.state is State.PROVISIONING or self.state is State.RETRYING:
            return self.provision_replied(
                Unknown(UnknownReason.NO_RESPONSE, "interrupted by a restart"),
                now=now,
                new_id=new_id,
            )
        if self.state is State.CONFIRMING or self.state is State.REVERSING:
            assert self.advice is not None
            return QueueAdvice(self.advice)
        return None

    def advice_replied(self, reply: AdviceReply) -> None:
        """Feed the final status of this transaction's advice. Repeats are harmless."""
        if isinstance(reply, RepeatLater):
            return
        if isinstance(reply, Acknowledged):
            self._fire(Event.ADVICE_ACKNOWLEDGED)
            return
        if self._fire(Event.ADVICE_REFUSED).flags_reconciliation:
            kind = "conflict" if isinstance(reply, Conflict) else "rejected"
            assert isinstance(reply, Conflict | Rejected)
            self.reconciliation = f"{kind}: {reply.detail}"

    # -- machinery ----------------------------------------------------------------------------

    def _expect(self, event: Event) -> None:
        """Raise now, before any message is built, if ``event`` cannot apply."""
        if self.state not in _SOURCES[event]:
            raise InvalidEvent(self.id, self.state, event)

    def _fire(self, event: Event) -> Rule:
        """Fire ``event`` on the shared machine and return the rule that fired, as it said."""
        try:
            fired = _TRIGGERS[event](self)
        except MachineError:  # no rule for this event in this state
            fired = False
        if not fired:  # or none whose guard holds
            raise InvalidEvent(self.id, self.state, event, _hint(self, event))
        rule = self._fired
        assert rule is not None  # set by the transition that fired
        return rule

    def _command(self, rule: Rule, now: datetime, new_id: Callable[[], str]) -> Command | None:
        # WARNING: what each Send becomes is decided here, not in the table (see table.py).
        sends = rule.sends
        if sends is Send.NOTHING:
            return None
        if sends is Send.RETRY:
            self.retries += 1
            return SendRetry(self.request, self.retries)
        if sends is Send.REVERSAL_CANCELLED:
            reason = ReversalReason.CANCELLED
        elif self.unanswered is UnknownReason.NOT_FINAL:
            reason = ReversalReason.RESPONSE_NOT_FINAL
        else:
            reason = ReversalReason.TIMEOUT
        advice = BasicReversal(
            id=new_id(),
            request_id=self.id,
            time=now,
            third_party_identifiers=self.third_party_identifiers,
            reversal_reason=reason,
        )
        self.advice = advice
        return QueueAdvice(advice)

    def _retry_allowed(self) -> bool:
        return self.profile.retries_supported and self.retries < self.policy.max_retries


def _unattended(response: ProvisionResponse) -> str:
    """The flag of a single-messaging voucher issued with nobody to hand it to: how a person
    finds it (serial number, each party's reference), never its code or PIN."""
    references = [
        f"{party.institution_id} {party.transaction_identifier}"
        for party in response.third_party_identifiers
    ]
    serial = response.voucher.serial_number
    found = [f"serial number {serial}"] if serial else ["no serial number"]
    if references:
        found.append(f"references {', '.join(references)}")
    return (
        "unattended: the voucher was issued after its host was gone and nobody was given it "
        f"({'; '.join(found)})"
    )


def _hint(tx: Transaction, event: Event) -> str:
    if event is Event.DELIVERED and tx.state is State.PROVISIONED:
        return "dual messaging needs the host to confirm or cancel"
    accepted = sorted(e.value for e, sources in _SOURCES.items() if tx.state in sources)
    return f"it accepts {', '.join(accepted)}" if accepted else "it is final"


# The table's guards, one predicate per Guard value, asked by the rule that carries the guard.


def _single_messaging(tx: Transaction) -> bool:
    return not tx.profile.dual and not tx.unattended


def _single_unattended(tx: Transaction) -> bool:
    return not tx.profile.dual and tx.unattended


def _retry_allowed(tx: Transaction) -> bool:
    return tx._retry_allowed()


def _no_retry_left(tx: Transaction) -> bool:
    return not tx._retry_allowed()


_CONDITIONS: dict[Guard, Callable[[Transaction], bool]] = {
    Guard.SINGLE_MESSAGING: _single_messaging,
    Guard.SINGLE_UNATTENDED: _single_unattended,
    Guard.RETRY_ALLOWED: _retry_allowed,
    Guard.NO_RETRY_LEFT: _no_retry_left,
}


class _RuleTransition(Transition):
    """One :class:`Rule` of the table as a transition of the shared machine.

    It fires when its rule's guard holds for the transaction: it sets the rule's state,
    hands the rule to the transaction (which is how the transaction learns what an event did),
    and keeps the move for :meth:`Transaction.take_moves` when someone asked for moves (a rule
    that leaves the state where it was, internal or a retry after a retry, is no move).
    """

    def __init__(self, *args: Any, rule: Rule, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule = rule
        self.guard = _CONDITIONS[rule.guard] if rule.guard is not None else None
        self.move = (rule.source, rule.dest) if rule.dest not in (None, rule.source) else None

    def fire(self, tx: Transaction) -> bool:
        """Move ``tx`` by this rule if its guard holds; False lets the next rule be tried."""
        guard = self.guard
        if guard is not None and not guard(tx):
            return False
        rule = self.rule
        if rule.dest is not None:
            tx.state = rule.dest
        tx._fired = rule
        if self.move is not None and tx._moves is not None:
            tx._moves.append(self.move)
        return True

    def execute(self, event_data: EventData) -> bool:
        return self.fire(event_data.model)  # type: ignore[arg-type]  # the shared machine's model


class _RuleEvent(TransitionsEvent):
    """One :class:`Event` of the table on the shared machine: its rules for the model's state,
    tried in the table's order until one fires.

    WARNING: ``trigger`` is ``Event.trigger`` for a machine without callbacks and without a
    queue, and does nothing else: no prepare, before, after, enter, exit or finalize callbacks
    run and no ``EventData`` is made. :func:`_build_machine` builds the machine with none; the
    general path cost about 7 us of the 8 an event took, three events a sale.
    """

    def trigger(self, model: Any, *args: Any, **kwargs: Any) -> bool:
        # A State is a str whose value is its name, the key the machine files transitions by.
        rules: list[_RuleTransition] | None = self.transitions.get(model.state)  # type: ignore[assignment]  # transition_cls
        if rules is None:
            raise MachineError(f"Can't trigger event {self.name} from state {model.state}!")
        for rule in rules:  # noqa: SIM110 - a loop, as any() over a generator costs more
            if rule.fire(model):
                return True
        return False


class _RuleMachine(Machine):
    """The shared machine, whose events and transitions are the table's."""

    transition_cls = _RuleTransition
    event_cls = _RuleEvent


def _build_machine() -> Machine:
    missing = set(Guard) - set(_CONDITIONS)
    if missing:  # pragma: no cover - a Guard added to the table without its predicate
        raise ValueError(f"no condition for guards {sorted(missing)}")
    machine = _RuleMachine(
        model=None,
        states=list(State),
        initial=State.PROVISIONING,
        send_event=True,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )
    # Added in the table's order, so the machine tries a (source, event)'s rules in that order.
    for rule in TRANSITIONS:
        machine.add_transition(
            trigger=rule.event.value,
            source=rule.source,
            dest=rule.dest,
            rule=rule,  # passed on to _RuleTransition, which asks the rule's guard
        )
    # The events' fast trigger runs no callbacks (see _RuleEvent): refuse a machine with some.
    hooks = (
        machine.before_state_change,
        machine.after_state_change,
        machine.prepare_event,
        machine.finalize_event,
        machine.on_exception,
        machine.on_final,
    )
    if any(hooks) or any(state.on_enter or state.on_exit for state in machine.states.values()):
        raise ValueError("the shared machine's events run no callbacks")  # pragma: no cover
    return machine


MACHINE: Machine = _build_machine()
# The fast way to fire: the Event's own trigger, under a microsecond, where the model's
# convenience methods (not attached here anyway) cost about forty.
_TRIGGERS: dict[Event, Callable[[Transaction], bool]] = {
    event: MACHINE.events[event.value].trigger for event in Event
}
# Which states accept each event: checked before building a message, and named in refusals.
_SOURCES: dict[Event, frozenset[State]] = {
    event: frozenset(rule.source for rule in TRANSITIONS if rule.event is event) for event in Event
}
