"""A simulated Electrum switch with simulated providers and fault injection.

Pure logic: it takes request bytes and gives reply bytes, reads no clock, starts no thread and
is deterministic for a given seed, so the in-memory transport and an HTTP server can both sit
in front of the same :class:`SwitchSimulator`.
"""

from voucher_adapters.simulator.faults import Damage, Fault, FaultKind, FaultPlan
from voucher_adapters.simulator.forwarding import SwitchEvent
from voucher_adapters.simulator.ledger import LedgerEntry
from voucher_adapters.simulator.providers import DEFAULT_PROVIDER, Provider
from voucher_adapters.simulator.reply import Operation, SimReply
from voucher_adapters.simulator.switch import RESET_BODY, SwitchSimulator
from voucher_adapters.simulator.validation import MAX_BODY, UUID_MSG

__all__ = [
    "DEFAULT_PROVIDER",
    "MAX_BODY",
    "RESET_BODY",
    "UUID_MSG",
    "Damage",
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
