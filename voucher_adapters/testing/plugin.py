"""The pytest plugin of the testing kit: fixtures for a till wired to a fake switch.

Registered as ``voucher`` through the ``pytest11`` entry point, so installing voucher-core
makes these fixtures available in any suite (``-p no:voucher`` turns them off). Each test
gets fresh objects; nothing sleeps and nothing touches the network or the disk.

* ``fake_switch``: a :class:`~voucher_adapters.testing.FakeSwitch`. Override this fixture in your
  ``conftest.py`` to declare your products and providers.
* ``till``: a :class:`~voucher_adapters.testing.Till` (sync driver) on ``fake_switch``.
* ``voucher_driver``: ``till.driver``, for code under test that takes a driver.
* ``async_till`` / ``async_voucher_driver``: the asyncio twins on the same switch. They are
  plain fixtures; await their calls inside your own event loop (``asyncio.run``, or an
  async test plugin such as anyio's or pytest-asyncio's).
"""

from __future__ import annotations

import pytest

from voucher_adapters.testing.fake_switch import FakeSwitch
from voucher_adapters.testing.till import AsyncTill, Till
from voucher_core import AsyncDriver, Driver


@pytest.fixture
def fake_switch() -> FakeSwitch:
    """An in-memory switch with one dual-messaging provider serving every product."""
    return FakeSwitch()


@pytest.fixture
def till(fake_switch: FakeSwitch) -> Till:
    """A sync till on ``fake_switch``: simulated clock, in-memory queue and journal."""
    return Till(fake_switch)


@pytest.fixture
def voucher_driver(till: Till) -> Driver:
    """The ``till``'s driver."""
    return till.driver


@pytest.fixture
def async_till(fake_switch: FakeSwitch) -> AsyncTill:
    """An asyncio till on ``fake_switch``."""
    return AsyncTill(fake_switch)


@pytest.fixture
def async_voucher_driver(async_till: AsyncTill) -> AsyncDriver:
    """The ``async_till``'s driver."""
    return async_till.driver
