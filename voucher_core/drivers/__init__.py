"""Drivers run transactions over the ports. Both are thin: the decisions live in the core."""

from voucher_core.drivers.async_driver import AsyncDriver
from voucher_core.drivers.driver import Driver
from voucher_core.drivers.shared import (
    AdviceQueued,
    AdviceSettled,
    DecisionAwaited,
    SaleEnded,
    StateChanged,
    Trace,
)

__all__ = [
    "AdviceQueued",
    "AdviceSettled",
    "AsyncDriver",
    "DecisionAwaited",
    "Driver",
    "SaleEnded",
    "StateChanged",
    "Trace",
]
