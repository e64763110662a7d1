"""A 202 Accepted to a provision or to a retry: what it proves depends on what it carries.

The swagger lists 202 among the answers to ``retryProvisionVoucher``, and a switch may answer a
provision the same way. A 202 that carries the ``ProvisionResponse`` of this sale approves it
like a 201 or a 200; a 202 without one (the switch took the request and has no outcome yet)
proves nothing, so the sale is retried, and reversed if no retry proves it either.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from strategies import REQUEST, RESPONSE

from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, cash, demo_request
from voucher_adapters.simulator import FaultKind, Operation, Provider, SimReply, SwitchSimulator
from voucher_adapters.stores.memory import InMemoryAdviceQueue
from voucher_adapters.transports.in_process import InMemoryTransport
from voucher_core import Driver, DriverSettings, Outcome, State
from voucher_core.policy import DUAL, RetryPolicy
from voucher_core.replies import Approved, Unknown, classify_provision
from voucher_core.wire import to_json


class AcceptingSwitch(SwitchSimulator):
    """The simulator, with the answers to the operations in ``accepting`` turned into a 202:
    the body kept (``with_body``) or dropped, ``times`` times each."""

    def __init__(self, accepting: Mapping[Operation, int], *, with_body: bool) -> None:
        super().__init__([Provider("airtimeco", DUAL, frozenset({"AIRTIME10"}))], seed=31)
        self.accepting = dict(accepting)
        self.with_body = with_body
        self.statuses: list[tuple[Operation, int]] = []

    def handle(self, operation: Any, body: bytes = b"", **kwargs: Any) -> SimReply:
        reply = super().handle(operation, body, **kwargs)
        left = self.accepting.get(Operation(operation), 0)
        if left and 200 <= reply.status < 300:
            self.accepting[Operation(operation)] = left - 1
            reply = attrs.evolve(
                reply, status=202, body=reply.body if self.with_body else b"", location=None
            )
        self.statuses.append((Operation(operation), reply.status))
        return reply


def till(switch: SwitchSimulator) -> Driver:
    transport = InMemoryTransport(switch, username=DEMO_CLIENT_ID)
    settings = DriverSettings(policy=RetryPolicy(timeout=5.0, max_retries=2), profile=DUAL)
    return Driver(transport, InMemoryAdviceQueue(), clock=SimulatedClock(), settings=settings)


def sell(driver: Driver) -> Any:
    return driver.sell(demo_request(id=str(uuid.uuid4()), time=driver.clock.now()))


# -- the classification ---------------------------------------------------------------------------


def test_a_202_carrying_this_sales_response_approves_it() -> None:
    reply = classify_provision(202, to_json(RESPONSE), REQUEST)
    assert isinstance(reply, Approved)
    assert reply.status == 202
    assert reply.response == RESPONSE


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{"status":"ACCEPTED"}', to_json(attrs.evolve(RESPONSE, id=str(uuid.uuid4())))],
)
def test_a_202_without_this_sales_response_proves_nothing(body: bytes) -> None:
    reply = classify_provision(202, body, REQUEST)
    assert isinstance(reply, Unknown)
    assert reply.status == 202


# -- end to end, through the driver ---------------------------------------------------------------


def test_a_provision_answered_202_with_the_voucher_is_approved_and_confirmed() -> None:
    switch = AcceptingSwitch({Operation.PROVISION: 1}, with_body=True)
    driver = till(switch)
    tx = sell(driver)
    assert tx.state is State.PROVISIONED
    assert tx.response.voucher.code == switch.issued_code(tx.id)
    assert switch.statuses == [(Operation.PROVISION, 202)]
    tx = driver.confirm(tx, cash(1000))
    assert tx.outcome is Outcome.APPROVED
    assert driver.drain(timeout=600.0)
    assert tx.state is State.DONE
    switch.pump()
    assert switch.voucher_active(tx.id)


def test_a_provision_answered_202_without_a_body_is_retried_and_the_retry_gives_the_voucher() -> (
    None
):
    switch = AcceptingSwitch({Operation.PROVISION: 1}, with_body=False)
    driver = till(switch)
    tx = sell(driver)
    assert switch.statuses == [(Operation.PROVISION, 202), (Operation.RETRY, 200)]
    assert tx.state is State.PROVISIONED
    assert tx.response.voucher.code == switch.issued_code(tx.id)


def test_a_retry_answered_202_with_the_voucher_is_approved() -> None:
    switch = AcceptingSwitch({Operation.RETRY: 1}, with_body=True)
    switch.faults.script(Operation.PROVISION, FaultKind.LOST)
    driver = till(switch)
    tx = sell(driver)
    assert [status for _, status in switch.statuses][-1] == 202
    assert tx.state is State.PROVISIONED
    assert tx.response.voucher.code == switch.issued_code(tx.id)


def test_retries_answered_202_without_a_body_end_reversed_never_approved() -> None:
    switch = AcceptingSwitch({Operation.PROVISION: 1, Operation.RETRY: 5}, with_body=False)
    driver = till(switch)
    tx = sell(driver)
    assert tx.state is not State.PROVISIONED
    assert tx.outcome is not Outcome.APPROVED
    assert driver.drain(timeout=600.0)
    assert tx.terminal
    assert [op for op, _ in switch.statuses].count(Operation.RETRY) == 2
    assert not switch.voucher_active(tx.id)
    switch.pump()
    assert not switch.voucher_active(tx.id)
