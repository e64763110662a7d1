"""Advices and transactions for the queue and journal contract tests, built through the core."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import attrs

from voucher_adapters.demo import SeededIds, cash, demo_request
from voucher_core import ProviderProfile, State, Transaction
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
from voucher_core.replies import Acknowledged, Approved, Conflict, Declined, Unknown, UnknownReason
from voucher_core.snapshot import snapshot
from voucher_core.wire import from_json, to_json

WHEN = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DUAL = ProviderProfile(messaging=Messaging.DUAL)
SINGLE = ProviderProfile(messaging=Messaging.SINGLE)
NO_RETRIES = ProviderProfile(messaging=Messaging.DUAL, retries_supported=False)
REFS = (ThirdPartyIdentifier(institution_id="999001", transaction_identifier="till-1"),)


class Samples:
    """Fresh, repeatable ids for every advice and transaction a test builds."""

    def __init__(self, seed: int = 7) -> None:
        self.ids = SeededIds(seed)

    def confirmation(self) -> TenderAdvice:
        return TenderAdvice(
            id=self.ids(),
            request_id=self.ids(),
            time=WHEN,
            third_party_identifiers=REFS,
            tenders=cash(1000),
        )

    def reversal(self) -> BasicReversal:
        return BasicReversal(
            id=self.ids(),
            request_id=self.ids(),
            time=WHEN,
            third_party_identifiers=REFS,
            reversal_reason=ReversalReason.TIMEOUT,
        )

    def begin(self, profile: ProviderProfile = DUAL) -> Transaction:
        tx, _ = Transaction.begin(demo_request(id=self.ids(), time=WHEN), profile=profile)
        return tx

    # -- one transaction per state, each reached by feeding the core what happened -------------

    def provisioning(self) -> Transaction:
        return self.begin()

    def retrying(self) -> Transaction:
        tx = self.begin()
        tx.provision_replied(Unknown(UnknownReason.NO_RESPONSE, "no response"), now=WHEN)
        return tx

    def provisioned(self) -> Transaction:
        tx = self.begin()
        tx.provision_replied(approved(tx), now=WHEN)
        return tx

    def confirming(self) -> Transaction:
        tx = self.provisioned()
        tx.confirm(cash(1000), now=WHEN, new_id=self.ids)
        return tx

    def reversing(self) -> Transaction:
        tx = self.begin(NO_RETRIES)
        tx.provision_replied(Unknown(UnknownReason.NOT_FINAL, "HTTP 504", 504), now=WHEN)
        return tx

    def done(self) -> Transaction:
        tx = self.confirming()
        tx.advice_replied(Acknowledged(202))
        return tx

    def done_single(self) -> Transaction:
        tx = self.begin(SINGLE)
        tx.provision_replied(approved(tx), now=WHEN)
        return tx

    def done_with_conflict(self) -> Transaction:
        tx = self.confirming()
        tx.advice_replied(Conflict(400, None, "already reversed"))
        return tx

    def declined(self) -> Transaction:
        tx = self.begin()
        error = ErrorDetail(id=None, error_type="DO_NOT_HONOUR", error_message="no")
        tx.provision_replied(Declined(400, error), now=WHEN)
        return tx

    def declined_after_host_timeout(self) -> Transaction:
        tx = self.provisioned()
        tx.decision_timed_out(now=WHEN, new_id=self.ids)
        tx.advice_replied(Acknowledged(202))
        return tx

    def every_state(self) -> list[Transaction]:
        builders: list[Callable[[], Transaction]] = [
            self.provisioning,
            self.retrying,
            self.provisioned,
            self.confirming,
            self.reversing,
            self.done,
            self.done_single,
            self.done_with_conflict,
            self.declined,
            self.declined_after_host_timeout,
        ]
        return [build() for build in builders]


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


def same(a: Transaction, b: Transaction) -> bool:
    """Transactions compare by identity; two are the same sale if their snapshots agree."""
    return snapshot(a) == snapshot(b)


ALL_STATES = set(State)
