"""The core state machine, fed events directly: no driver, no transport."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voucher_adapters.demo import SeededIds, cash, demo_request
from voucher_core import (
    InvalidEvent,
    LookupRefused,
    Outcome,
    ProviderProfile,
    RetryPolicy,
    State,
    Transaction,
)
from voucher_core.commands import AwaitDecision, QueueAdvice, SendRetry
from voucher_core.messages import (
    BasicReversal,
    ErrorDetail,
    ProvisionResponse,
    ReversalReason,
    TenderAdvice,
    ThirdPartyIdentifier,
    Voucher,
)
from voucher_core.policy import Messaging
from voucher_core.replies import (
    Acknowledged,
    Approved,
    Conflict,
    Declined,
    Rejected,
    RepeatLater,
    Unknown,
    UnknownReason,
)
from voucher_core.table import TRANSITIONS, Event
from voucher_core.transaction import MACHINE
from voucher_core.wire import from_json, to_json

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DUAL = ProviderProfile(messaging=Messaging.DUAL)
SINGLE = ProviderProfile(messaging=Messaging.SINGLE)
NO_RETRIES = ProviderProfile(messaging=Messaging.DUAL, retries_supported=False)


def request(seed: int = 1) -> object:
    return demo_request(id=SeededIds(seed)(), time=NOW)


def approved(tx: Transaction) -> Approved:
    wire = to_json(tx.request)
    response = from_json(ProvisionResponse, wire[:-1] + b',"voucher":{"code":"12345678"}}')
    switch_id = ThirdPartyIdentifier(institution_id="ELECTRUM", transaction_identifier="S-1")
    response = attrs.evolve(
        response,
        third_party_identifiers=(*response.third_party_identifiers, switch_id),
        voucher=Voucher(code="12345678"),
    )
    return Approved(response, 201)


def declined() -> Declined:
    return Declined(400, ErrorDetail(id=None, error_type="DO_NOT_HONOUR", error_message="no"))


def timeout() -> Unknown:
    return Unknown(UnknownReason.NO_RESPONSE, "no response within 60 s")


def not_final() -> Unknown:
    return Unknown(UnknownReason.NOT_FINAL, "HTTP 504", 504)


def begin(profile: ProviderProfile = DUAL, **kwargs: object) -> Transaction:
    tx, command = Transaction.begin(request(), profile=profile, **kwargs)  # type: ignore[arg-type]
    assert command.request is tx.request
    return tx


def test_a_dual_sale_waits_for_the_host_then_confirms_through_the_queue() -> None:
    tx = begin()
    assert tx.state is State.PROVISIONING
    assert tx.outcome is None
    command = tx.provision_replied(approved(tx), now=NOW)
    assert isinstance(command, AwaitDecision)
    assert tx.state is State.PROVISIONED and tx.outcome is None
    advice_id = "a" * 8 + "-aaaa-4aaa-8aaa-" + "a" * 12
    command = tx.confirm(cash(1000), now=NOW, new_id=lambda: advice_id)
    assert isinstance(command, QueueAdvice)
    advice = command.advice
    assert isinstance(advice, TenderAdvice)
    assert advice.request_id == tx.id and advice.id == advice_id
    # The advice echoes the identifiers exactly as the response returned them.
    assert advice.third_party_identifiers == tx.response.third_party_identifiers  # type: ignore[union-attr]
    assert len(advice.third_party_identifiers) == 2
    assert tx.state is State.CONFIRMING and tx.outcome is Outcome.APPROVED
    tx.advice_replied(Acknowledged(202))
    assert tx.state is State.DONE


def test_a_single_sale_is_done_on_the_voucher() -> None:
    tx = begin(SINGLE)
    assert tx.provision_replied(approved(tx), now=NOW) is None
    assert tx.state is State.DONE and tx.outcome is Outcome.APPROVED


def test_tenders_given_up_front_confirm_at_once() -> None:
    tx = begin(DUAL, tenders=cash(1000))
    command = tx.provision_replied(approved(tx), now=NOW)
    assert isinstance(command, QueueAdvice) and isinstance(command.advice, TenderAdvice)
    assert command.advice.tenders == cash(1000)
    assert tx.state is State.CONFIRMING


@pytest.mark.parametrize("max_retries", [0, 1, 3, 5])
def test_unknown_outcomes_retry_the_same_request_at_most_max_times_then_reverse(
    max_retries: int,
) -> None:
    tx = begin(DUAL, policy=RetryPolicy(max_retries=max_retries))
    retries: list[SendRetry] = []
    command = tx.provision_replied(timeout(), now=NOW)
    while isinstance(command, SendRetry):
        assert command.request is tx.request
        retries.append(command)
        command = tx.provision_replied(not_final(), now=NOW)
    assert [r.attempt for r in retries] == list(range(1, max_retries + 1))
    assert isinstance(command, QueueAdvice)
    assert isinstance(command.advice, BasicReversal)
    # The first attempt got no answer at all, so the reversal says TIMEOUT.
    assert command.advice.reversal_reason is ReversalReason.TIMEOUT
    assert command.advice.third_party_identifiers == tx.request.third_party_identifiers
    assert tx.state is State.REVERSING and tx.outcome is Outcome.DECLINED


def test_a_5xx_first_reply_reverses_with_response_not_final() -> None:
    tx = begin(DUAL, policy=RetryPolicy(max_retries=0))
    command = tx.provision_replied(not_final(), now=NOW)
    assert isinstance(command, QueueAdvice) and isinstance(command.advice, BasicReversal)
    assert command.advice.reversal_reason is ReversalReason.RESPONSE_NOT_FINAL


def test_a_provider_without_retries_goes_straight_to_reversal() -> None:
    tx = begin(NO_RETRIES)
    command = tx.provision_replied(timeout(), now=NOW)
    assert isinstance(command, QueueAdvice) and isinstance(command.advice, BasicReversal)
    assert tx.retries == 0 and tx.state is State.REVERSING


def test_a_hard_decline_on_the_first_attempt_sends_nothing_more() -> None:
    tx = begin()
    assert tx.provision_replied(declined(), now=NOW) is None
    assert tx.state is State.DECLINED and tx.advice is None


def test_a_hard_decline_of_a_retry_still_reverses() -> None:
    tx = begin()
    assert isinstance(tx.provision_replied(timeout(), now=NOW), SendRetry)
    command = tx.provision_replied(declined(), now=NOW)
    assert isinstance(command, QueueAdvice) and isinstance(command.advice, BasicReversal)
    assert tx.state is State.REVERSING


@pytest.mark.parametrize("decide", ["cancel", "decision_timed_out"])
def test_cancel_and_decision_timeout_reverse_with_cancelled(decide: str) -> None:
    tx = begin()
    tx.provision_replied(approved(tx), now=NOW)
    command = getattr(tx, decide)(now=NOW)
    assert isinstance(command, QueueAdvice) and isinstance(command.advice, BasicReversal)
    assert command.advice.reversal_reason is ReversalReason.CANCELLED
    tx.advice_replied(Acknowledged(202))
    assert tx.state is State.DECLINED


def test_a_conflict_or_rejection_ends_the_transaction_flagged() -> None:
    error = ErrorDetail(id=None, error_type="VOUCHER_ALREADY_CONFIRMED", error_message="x")
    tx = begin()
    tx.provision_replied(approved(tx), now=NOW)
    tx.cancel(now=NOW)
    tx.advice_replied(Conflict(400, error, "HTTP 400 VOUCHER_ALREADY_CONFIRMED: x"))
    assert tx.state is State.DECLINED
    assert tx.reconciliation is not None and "VOUCHER_ALREADY_CONFIRMED" in tx.reconciliation

    tx = begin()
    tx.provision_replied(approved(tx), now=NOW)
    tx.confirm(cash(1000), now=NOW)
    tx.advice_replied(Rejected(400, None, "HTTP 400 with an empty body"))
    assert tx.state is State.DONE and tx.reconciliation == "rejected: HTTP 400 with an empty body"


def test_duplicate_acknowledgements_and_repeats_are_harmless() -> None:
    tx = begin(SINGLE)
    tx.provision_replied(approved(tx), now=NOW)
    tx.advice_replied(Acknowledged(202))
    tx.advice_replied(Acknowledged(202))
    assert tx.state is State.DONE
    tx = begin()
    tx.provision_replied(approved(tx), now=NOW)
    tx.confirm(cash(1000), now=NOW)
    tx.advice_replied(RepeatLater("HTTP 503"))
    assert tx.state is State.CONFIRMING


def test_an_event_that_does_not_apply_names_state_and_event_and_changes_nothing() -> None:
    tx = begin()
    with pytest.raises(InvalidEvent) as caught:
        tx.confirm(cash(1000), now=NOW)
    assert caught.value.state == "PROVISIONING"
    assert caught.value.event == "host_confirmed"
    assert "PROVISIONING" in str(caught.value) and "host_confirmed" in str(caught.value)
    assert tx.state is State.PROVISIONING and tx.advice is None


def test_lookups_wait_until_the_transaction_is_final() -> None:
    tx = begin()
    with pytest.raises(LookupRefused):
        tx.lookup_id()
    tx.provision_replied(declined(), now=NOW)
    assert tx.lookup_id() == tx.id


def test_transactions_share_one_machine_and_carry_no_per_object_machinery() -> None:
    tx = begin()
    assert not hasattr(tx, "trigger") and not hasattr(tx, "to_DONE")
    assert not hasattr(tx, "__dict__")
    assert MACHINE.models == []


# -- every (state, event) pair ------------------------------------------------------------------

_DESTS: dict[tuple[State, Event], set[State]] = {}
for _rule in TRANSITIONS:
    _DESTS.setdefault((_rule.source, _rule.event), set()).add(_rule.dest or _rule.source)

_FEED = {
    Event.PROVISION_APPROVED: lambda tx: tx.provision_replied(approved(tx), now=NOW),
    Event.PROVISION_DECLINED: lambda tx: tx.provision_replied(declined(), now=NOW),
    Event.PROVISION_UNKNOWN: lambda tx: tx.provision_replied(timeout(), now=NOW),
    Event.HOST_CONFIRMED: lambda tx: tx.confirm(cash(1000), now=NOW),
    Event.HOST_CANCELLED: lambda tx: tx.cancel(now=NOW),
    Event.DECISION_TIMED_OUT: lambda tx: tx.decision_timed_out(now=NOW),
    Event.ADVICE_ACKNOWLEDGED: lambda tx: tx.advice_replied(Acknowledged(202)),
    Event.ADVICE_REFUSED: lambda tx: tx.advice_replied(Rejected(400, None, "refused")),
    Event.HOST_GONE: lambda tx: tx.host_gone(now=NOW),
}


@given(
    state=st.sampled_from(State),
    event=st.sampled_from(sorted(_FEED)),
    profile=st.sampled_from([DUAL, SINGLE, NO_RETRIES]),
    retries=st.integers(0, 4),
    max_retries=st.integers(0, 4),
    unattended=st.booleans(),
)
def test_every_state_and_event_either_moves_as_the_table_says_or_raises(
    *,
    state: State,
    event: Event,
    profile: ProviderProfile,
    retries: int,
    max_retries: int,
    unattended: bool,
) -> None:
    tx = begin(profile, policy=RetryPolicy(max_retries=max_retries))
    tx.state = state
    tx.retries = min(retries, max_retries)
    tx.unattended = unattended
    allowed = _DESTS.get((state, event))
    # Approval in a single-messaging sale moves on to DONE by itself; in a dual one whose
    # host is gone, on to REVERSING.
    if event is Event.PROVISION_APPROVED and allowed and not profile.dual:
        allowed = {State.DONE}
    if event is Event.PROVISION_APPROVED and allowed and profile.dual and unattended:
        allowed = {State.REVERSING}
    try:
        _FEED[event](tx)
    except InvalidEvent as error:
        assert error.state == state and error.event == event
        assert tx.state is state
        assert allowed is None, f"{event} was refused in {state} where the table allows it"
    else:
        assert allowed is not None, f"{event} was accepted in {state}"
        if event is Event.PROVISION_APPROVED and profile.dual and not unattended:
            assert tx.state is State.PROVISIONED
        else:
            assert tx.state in allowed
        if event is Event.PROVISION_APPROVED:
            # A voucher is flagged on its way to DONE only when nobody was there to take it.
            assert (tx.reconciliation is not None) is (not profile.dual and unattended)
