"""Hypothesis strategies for the messages: the testing kit's own, shared with these tests."""

from voucher_adapters.testing.strategies import *  # noqa: F403  (re-exported for the tests)
from voucher_adapters.testing.strategies import __all__  # noqa: F401  (re-exported)
