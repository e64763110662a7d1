"""Drivers run transactions over the ports. Both are thin: the decisions live in the core."""

from voucher_core.drivers.asyncio import AsyncDriver
from voucher_core.drivers.shared import (
    AdviceQueued,
    AdviceSettled,
    DecisionAwaited,
    StateChanged,
    Trace,
)
from voucher_core.drivers.sync import Driver

__all__ = [
    "AdviceQueued",
    "AdviceSettled",
    "AsyncDriver",
    "DecisionAwaited",
    "Driver",
    "StateChanged",
    "Trace",
]
