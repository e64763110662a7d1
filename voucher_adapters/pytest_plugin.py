"""The pytest plugin of the testing kit: fixtures for a till wired to a fake switch.

Registered as ``voucher`` through the ``pytest11`` entry point, so installing voucher-core
makes these fixtures available in any suite (``-p no:voucher`` turns them off). Each test
gets fresh objects; nothing sleeps and nothing touches the network or the disk.

* ``voucher_switch``: a :class:`~voucher_adapters.testing.FakeSwitch`. Override this fixture in
  your ``conftest.py`` to declare your products and providers.
* ``voucher_till``: a :class:`~voucher_adapters.testing.Till` (sync driver) on
  ``voucher_switch``.
* ``voucher_driver``: ``voucher_till.driver``, for code under test that takes a driver.
* ``voucher_async_till`` / ``voucher_async_driver``: the asyncio twins on the same switch. They
  are plain fixtures; await their calls inside your own event loop (``asyncio.run``, or an
  async test plugin such as anyio's or pytest-asyncio's).

pytest imports every registered plugin in every run of the host's suite, so this module
imports nothing but pytest: the kit (and with it ``voucher_core`` and the simulator) is
imported by the first fixture a test asks for. That is also why it lives outside
:mod:`voucher_adapters.testing`, whose ``__init__`` imports the whole kit, as hypothesis keeps
its own plugin outside the ``hypothesis`` package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from voucher_adapters.testing import AsyncTill, FakeSwitch, Till
    from voucher_core import AsyncDriver, Driver


@pytest.fixture
def voucher_switch() -> FakeSwitch:
    """An in-memory switch with one dual-messaging provider serving every product."""
    from voucher_adapters.testing import FakeSwitch  # noqa: PLC0415  (imported when used)

    return FakeSwitch()


@pytest.fixture
def voucher_till(voucher_switch: FakeSwitch) -> Till:
    """A sync till on ``voucher_switch``: simulated clock, in-memory queue and journal."""
    from voucher_adapters.testing import Till  # noqa: PLC0415  (imported when used)

    return Till(voucher_switch)


@pytest.fixture
def voucher_driver(voucher_till: Till) -> Driver:
    """The ``voucher_till``'s driver."""
    return voucher_till.driver


@pytest.fixture
def voucher_async_till(voucher_switch: FakeSwitch) -> AsyncTill:
    """An asyncio till on ``voucher_switch``."""
    from voucher_adapters.testing import AsyncTill  # noqa: PLC0415  (imported when used)

    return AsyncTill(voucher_switch)


@pytest.fixture
def voucher_async_driver(voucher_async_till: AsyncTill) -> AsyncDriver:
    """The ``voucher_async_till``'s driver."""
    return voucher_async_till.driver
