"""The testing kit, used exactly as a user's own suite would use it: fixtures, words, strategies.

The fixtures (``voucher_switch``, ``voucher_till``, ...) come from the kit's pytest plugin,
:mod:`voucher_adapters.pytest_plugin`. Once voucher-core is installed with its ``pytest11``
entry point, pytest loads the plugin by itself; until then this module asks for it by name
(asking twice would register it twice, which pytest refuses).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import subprocess
import sys
import time
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voucher_adapters.testing import (
    AsyncTill,
    FakeSwitch,
    FlowMismatch,
    SettleError,
    Till,
    assert_flow,
    cash,
)
from voucher_adapters.testing import strategies as kit
from voucher_core import Driver, State
from voucher_core.messages import (
    BasicReversal,
    ErrorDetail,
    ProvisionRequest,
    ProvisionResponse,
    TenderAdvice,
    VoucherLookupResponse,
)
from voucher_core.policy import NO_RETRIES
from voucher_core.wire import from_json, from_wire, to_json, to_wire

PLUGIN = "voucher_adapters.pytest_plugin"

if not any(ep.value == PLUGIN for ep in entry_points(group="pytest11")):
    pytest_plugins = [PLUGIN]


# -- the story the kit was built for -----------------------------------------------------------


def test_the_next_provision_times_out_twice_then_succeeds(
    voucher_till: Till, voucher_switch: FakeSwitch
) -> None:
    voucher_switch.next_provision(product="AIRTIME10").times_out(2).then_succeeds()

    tx = voucher_till.sell("AIRTIME10", tenders=cash(1000))
    voucher_till.settle()

    voucher_till.assert_flow(
        tx,
        operations=["provision", "retry", "retry", "confirm"],
        final_state=State.DONE,
        outcome="approved",
        reconciliation=False,
    )
    assert voucher_switch.scripted == 0
    assert voucher_switch.ledger_state(tx.id) == "confirmed"
    assert voucher_switch.voucher_active(tx.id)


def test_dual_messaging_waits_for_the_host_to_confirm(
    voucher_till: Till, voucher_switch: FakeSwitch
) -> None:
    tx = voucher_till.sell()
    assert tx.state is State.PROVISIONED and tx.outcome is None
    voucher_till.confirm(tx)
    voucher_till.settle()
    voucher_till.assert_flow(tx, operations=["provision", "confirm"], final_state="DONE")
    assert voucher_switch.voucher_active(tx.id)


@pytest.mark.parametrize(
    "fault",
    ["times_out", "is_lost", "is_dropped", "answers_unknown", "is_unavailable", "fails_with_5xx"],
)
def test_every_unanswered_kind_of_provision_is_retried(
    voucher_till: Till, voucher_switch: FakeSwitch, fault: str
) -> None:
    getattr(voucher_switch.next_provision(), fault)()
    tx = voucher_till.sell(tenders=cash(1000))
    voucher_till.settle()
    voucher_till.assert_flow(tx, operations=["provision", "retry", "confirm"], final_state="DONE")


def test_a_declined_provision_ends_the_sale(voucher_till: Till, voucher_switch: FakeSwitch) -> None:
    voucher_switch.next_provision().declines()
    tx = voucher_till.sell()
    voucher_till.assert_flow(
        tx, operations=["provision"], final_state="DECLINED", outcome="declined"
    )


def test_retries_spent_the_sale_is_reversed(voucher_till: Till, voucher_switch: FakeSwitch) -> None:
    voucher_switch.next_provision("AIRTIME10").times_out().is_lost(3)
    tx = voucher_till.sell("AIRTIME10", tenders=cash(1000))
    voucher_till.settle()
    voucher_till.assert_flow(
        tx,
        operations=["provision", "retry", "retry", "retry", "reverse"],
        final_state="DECLINED",
        outcome="declined",
    )
    assert not voucher_switch.voucher_active(tx.id)


def test_a_confirmation_refused_with_5xx_is_repeated_until_it_lands(
    voucher_till: Till, voucher_switch: FakeSwitch
) -> None:
    voucher_switch.next_confirmation().fails_with_5xx(times=2).then_succeeds()
    tx = voucher_till.sell(tenders=cash(1000))
    # The customer's outcome is known before the messaging ends.
    assert tx.state is State.CONFIRMING and tx.outcome == "approved"
    assert voucher_till.forward() == 0  # the repeat is not due yet: simulated time has not moved
    voucher_till.settle()  # skips the backoff in simulated time
    voucher_till.assert_flow(
        tx, operations=["provision", "confirm", "confirm", "confirm"], final_state="DONE"
    )


def test_a_rejected_confirmation_is_parked_and_flagged(
    voucher_till: Till, voucher_switch: FakeSwitch
) -> None:
    voucher_switch.next_confirmation().is_rejected()
    tx = voucher_till.sell(tenders=cash(1000))
    voucher_till.settle()
    voucher_till.assert_flow(tx, final_state="DONE", reconciliation=True)
    assert [parked.queued.request_id for parked in voucher_till.queue.parked()] == [tx.id]


def test_a_cancelled_sale_is_reversed(voucher_till: Till, voucher_switch: FakeSwitch) -> None:
    tx = voucher_till.sell()
    voucher_till.cancel(tx)
    voucher_till.settle()
    voucher_till.assert_flow(tx, operations=["provision", "reverse"], final_state="DECLINED")
    assert voucher_switch.ledger_state(tx.id) == "reversed"


def test_a_host_that_never_decides_is_timed_out(voucher_till: Till) -> None:
    tx = voucher_till.sell()
    assert voucher_till.expire_decisions(wait=1.0) == []  # not due yet
    assert voucher_till.expire_decisions() == [tx]  # the whole limit passes, at once
    voucher_till.settle()
    voucher_till.assert_flow(tx, operations=["provision", "reverse"], final_state="DECLINED")
    assert tx.host_timed_out


def test_a_restart_resumes_a_sale_waiting_for_its_host(voucher_till: Till) -> None:
    tx = voucher_till.sell()
    (resumed,) = voucher_till.restart()
    assert resumed.id == tx.id and resumed.state is State.PROVISIONED
    voucher_till.confirm(resumed)
    voucher_till.settle()
    entry = voucher_till.journal.get(tx.id)
    assert entry is not None and entry.transaction.state is State.DONE


def test_each_product_gets_its_providers_profile() -> None:
    switch = FakeSwitch({"ELEC": "single", "NETCARE1": NO_RETRIES})
    switch.next_provision("NETCARE1").times_out()
    till = Till(switch, seed=7)
    single = till.sell("ELEC")
    till.assert_flow(single, operations=["provision"], final_state="DONE", outcome="approved")
    no_retries = till.sell("NETCARE1")
    till.settle()
    till.assert_flow(no_retries, operations=["provision", "reverse"], final_state="DECLINED")
    assert till.sell("AIRTIME10").state is State.PROVISIONED  # anything else: dual


def test_voucher_driver_is_the_tills_driver(voucher_driver: Driver, voucher_till: Till) -> None:
    assert voucher_driver is voucher_till.driver
    tx = voucher_driver.sell(voucher_till.request(), tenders=cash(1000))
    assert tx.state is State.DONE
    assert voucher_till.operations() == ["provision", "confirm"]


def test_the_async_till_tells_the_same_story(
    voucher_async_till: AsyncTill, voucher_switch: FakeSwitch
) -> None:
    voucher_switch.next_provision(product="AIRTIME10").times_out(2).then_succeeds()
    voucher_switch.next_confirmation().is_unavailable()

    async def sale() -> None:
        tx = await voucher_async_till.sell("AIRTIME10")
        await voucher_async_till.confirm(tx)
        await voucher_async_till.settle()
        voucher_async_till.assert_flow(
            tx,
            operations=["provision", "retry", "retry", "confirm", "confirm"],
            final_state="DONE",
        )

    asyncio.run(sale())


def test_settle_gives_up_on_a_switch_that_never_agrees(
    voucher_till: Till, voucher_switch: FakeSwitch
) -> None:
    voucher_switch.next_confirmation().fails_with_5xx(times=50)
    voucher_till.sell(tenders=cash(1000))
    with pytest.raises(SettleError, match="still queued after 10 deliveries"):
        voucher_till.settle(max_rounds=10)


# -- fast mode -----------------------------------------------------------------------------------


def test_a_hundred_sales_with_faults_never_really_sleep(
    voucher_till: Till, voucher_switch: FakeSwitch, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sleeping(seconds: float) -> None:
        raise AssertionError(f"something really slept {seconds} s")

    monkeypatch.setattr(time, "sleep", no_sleeping)
    for _ in range(25):
        voucher_switch.next_provision().times_out().then_succeeds()
        voucher_switch.next_confirmation().fails_with_5xx()
    sales = [voucher_till.sell(tenders=cash(1000)) for _ in range(100)]
    voucher_till.settle()
    assert all(tx.state is State.DONE for tx in sales)
    assert len(voucher_till.exchanges) == 100 + 25 + 100 + 25
    assert voucher_till.clock.monotonic() > 0  # backoff passed, in simulated time only


# -- assert_flow's failure message ---------------------------------------------------------------


def test_a_flow_mismatch_shows_expected_actual_and_the_timeline(
    voucher_till: Till, voucher_switch: FakeSwitch
) -> None:
    voucher_switch.next_provision().times_out(2)
    tx = voucher_till.sell(tenders=cash(1000))
    voucher_till.settle()
    with pytest.raises(FlowMismatch) as raised:
        voucher_till.assert_flow(
            tx, operations=["provision", "confirm"], final_state="DECLINED", outcome=None
        )
    message = str(raised.value)
    assert isinstance(raised.value, AssertionError)
    assert f"sale {tx.id} did not go as expected:" in message
    assert "  operations   expected: provision, confirm\n" in message
    assert "               actual:   provision, retry, retry, confirm\n" in message
    assert "  final state  expected: DECLINED\n               actual:   DONE\n" in message
    assert "  outcome      expected: none yet\n               actual:   approved\n" in message
    timeline = message.split("what happened (now DONE, outcome approved):\n")[1].splitlines()
    assert timeline[0].startswith("   1. provision  id=") and "no answer within 60 s" in timeline[0]
    assert "state      PROVISIONING -> RETRYING" in timeline[1]
    assert "200 ProvisionResponse: voucher issued" in timeline[3]
    assert timeline[-1].endswith("state      CONFIRMING -> DONE")


def test_assert_flow_works_on_records_of_your_own(voucher_till: Till) -> None:
    tx = voucher_till.sell(tenders=cash(1000))
    other = voucher_till.sell(tenders=cash(1000))
    # Another sale's records are ignored; a correct expectation passes silently.
    assert_flow(
        tx, voucher_till.records, operations=["provision", "confirmVoucher"], outcome="approved"
    )
    assert_flow(other, voucher_till.exchanges, operations=["provisionVoucher", "confirm"])
    with pytest.raises(ValueError, match="unknown operation 'sell'"):
        assert_flow(tx, voucher_till.records, operations=["sell"])


def test_scripts_refuse_nonsense() -> None:
    switch = FakeSwitch()
    with pytest.raises(ValueError, match="at least 1"):
        switch.next_provision().times_out(0)
    with pytest.raises(ValueError, match="not both"):
        FakeSwitch({"A": "dual"}, providers=switch.simulator.providers)


def test_the_kit_imports_without_pytest_or_hypothesis() -> None:
    code = (
        "import sys; sys.modules['pytest'] = None; sys.modules['hypothesis'] = None\n"
        "from voucher_adapters.testing import FakeSwitch, Till, cash\n"
        "till = Till(FakeSwitch()); tx = till.sell(tenders=cash(1000)); print(tx.state)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "DONE"


# -- the plugin ----------------------------------------------------------------------------------

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_the_plugin_is_the_one_pyproject_registers() -> None:
    registered = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]["pytest11"]
    assert registered == {"voucher": PLUGIN}


def test_the_plugin_imports_nothing_of_the_library_until_a_fixture_is_used() -> None:
    # pytest imports every registered plugin in every run of a host's suite, used or not.
    heavy = [
        "voucher_core",
        "voucher_adapters.testing",
        "voucher_adapters.testing.till",
        "voucher_adapters.simulator",
        "hypothesis",
    ]
    code = (
        f"import sys, {PLUGIN} as plugin\n"
        f"print([name for name in {heavy!r} if name in sys.modules])\n"
        "print(sorted(name for name in sys.modules if name.startswith('voucher')))\n"
        "print(sorted(name for name in vars(plugin) if name.startswith('voucher')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded, ours, fixtures = done.stdout.splitlines()
    assert loaded == "[]"
    assert ours == repr(["voucher_adapters", PLUGIN])
    assert fixtures == repr(
        sorted(
            [
                "voucher_switch",
                "voucher_till",
                "voucher_driver",
                "voucher_async_till",
                "voucher_async_driver",
            ]
        )
    )


def test_the_fixtures_carry_the_voucher_prefix(request: pytest.FixtureRequest) -> None:
    switch = request.getfixturevalue("voucher_switch")
    till = request.getfixturevalue("voucher_till")
    async_till = request.getfixturevalue("voucher_async_till")
    assert isinstance(switch, FakeSwitch)
    assert isinstance(till, Till) and till.switch is switch
    assert isinstance(async_till, AsyncTill) and async_till.switch is switch
    assert request.getfixturevalue("voucher_driver") is till.driver
    assert request.getfixturevalue("voucher_async_driver") is async_till.driver
    for old in ("fake_switch", "till", "async_till", "async_voucher_driver"):
        with pytest.raises(pytest.FixtureLookupError):
            request.getfixturevalue(old)


# -- the strategies ------------------------------------------------------------------------------

MESSAGES: list[tuple[type[Any], st.SearchStrategy[Any]]] = [
    (ProvisionRequest, kit.provision_requests()),
    (ProvisionResponse, kit.provision_responses()),
    (TenderAdvice, kit.tender_advices()),
    (BasicReversal, kit.basic_reversals()),
    (ErrorDetail, kit.error_details()),
    (VoucherLookupResponse, kit.voucher_lookup_responses()),
]


@pytest.mark.parametrize(
    ("kind", "strategy"), MESSAGES, ids=[kind.__name__ for kind, _ in MESSAGES]
)
def test_the_strategies_build_messages_that_survive_the_wire(
    kind: type[Any], strategy: st.SearchStrategy[Any]
) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def round_trip(message: Any) -> None:
        assert isinstance(message, kind)
        assert from_json(kind, to_json(message)) == message
        assert from_wire(kind, to_wire(message)) == message

    round_trip()


@settings(max_examples=30, deadline=None)
@given(kit.any_message())
def test_any_message_is_one_of_the_envelopes(message: Any) -> None:
    assert from_json(type(message), to_json(message)) == message


# -- the guide -----------------------------------------------------------------------------------

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "testing-kit.md"


def test_the_guides_examples_run_as_written() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) >= 4
    ran = 0
    for block in blocks:
        setup = Till()
        namespace: dict[str, Any] = {"voucher_switch": setup.switch, "tx": setup.sell()}
        exec(compile(block, str(GUIDE), "exec"), namespace)
        for name, test in list(namespace.items()):
            if not (name.startswith("test_") and callable(test)):
                continue
            switch = FakeSwitch()
            fixtures = {
                "voucher_switch": switch,
                "voucher_till": Till(switch),
                "voucher_async_till": AsyncTill(switch),
            }
            wanted = inspect.signature(test).parameters
            test(**{key: fixtures[key] for key in wanted})
            ran += 1
    assert ran >= 3
