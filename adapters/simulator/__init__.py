"""A simulated Electrum switch with simulated providers and fault injection.

Pure logic: it takes request bytes and gives reply bytes, reads no clock, starts no thread and
is deterministic for a given seed, so the in-memory transport and an HTTP server can both sit
in front of the same :class:`SwitchSimulator`.
"""

from adapters.simulator.exchange import Operation, SimReply
from adapters.simulator.faults import Fault, FaultKind, FaultPlan
from adapters.simulator.forwarding import SwitchEvent
from adapters.simulator.ledger import LedgerEntry
from adapters.simulator.providers import DEFAULT_PROVIDER, Provider
from adapters.simulator.switch import RESET_BODY, SwitchSimulator
from adapters.simulator.validation import MAX_BODY, UUID_MSG

__all__ = [
    "DEFAULT_PROVIDER",
    "MAX_BODY",
    "RESET_BODY",
    "UUID_MSG",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "LedgerEntry",
    "Operation",
    "Provider",
    "SimReply",
    "SwitchEvent",
    "SwitchSimulator",
]
