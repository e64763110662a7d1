"""A testing kit for suites that embed voucher-core: a fake switch, ready tills, flow checks.

Importable without pytest or hypothesis::

    from voucher_adapters.testing import FakeSwitch, Till, cash

    switch = FakeSwitch()
    switch.next_provision(product="AIRTIME10").times_out(2).then_succeeds()
    till = Till(switch)
    tx = till.sell("AIRTIME10", tenders=cash(1000))
    till.settle()
    till.assert_flow(tx, operations=["provision", "retry", "retry", "confirm"], final_state="DONE")

With pytest, the plugin :mod:`voucher_adapters.pytest_plugin` (registered automatically when
voucher-core is installed, and importing nothing of the kit until a test asks for a fixture)
provides the fixtures ``voucher_switch``, ``voucher_till``, ``voucher_driver``,
``voucher_async_till`` and ``voucher_async_driver``. Hypothesis strategies for every message
are in :mod:`voucher_adapters.testing.strategies` (needs hypothesis).
See ``docs/testing-kit.md``.
"""

from voucher_adapters.demo import cash
from voucher_adapters.stores.failing import FailingJournal
from voucher_adapters.stores.second_process import SecondProcess, start_second_process
from voucher_adapters.testing.fake_switch import AdviceScript, FakeSwitch, ProvisionScript
from voucher_adapters.testing.flow import (
    UNCHECKED,
    FlowMismatch,
    Record,
    assert_flow,
    describe_flow,
    operation_name,
    operations_of,
)
from voucher_adapters.testing.till import AsyncTill, SettleError, Till

__all__ = [
    "UNCHECKED",
    "AdviceScript",
    "AsyncTill",
    "FailingJournal",
    "FakeSwitch",
    "FlowMismatch",
    "ProvisionScript",
    "Record",
    "SecondProcess",
    "SettleError",
    "Till",
    "assert_flow",
    "cash",
    "describe_flow",
    "operation_name",
    "operations_of",
    "start_second_process",
]
