"""voucher-core: sell digital vouchers through the Electrum switch without losing money.

Each sale is a :class:`Transaction`, a state machine that takes what happened and says what to
send next. Drivers (:class:`Driver`, :class:`AsyncDriver`) run transactions over three ports,
a transport to the switch, an advice queue and a journal, which adapters implement.

This module holds what a host needs to sell, confirm, cancel, recover and read the results,
and nothing else: the drivers and their settings, the policies, the port protocols, the
transaction with its state and outcome, and the errors. Everything else stays in the module
that defines it: messages in :mod:`voucher_core.messages`, classified replies in
:mod:`voucher_core.replies`, the transition table in :mod:`voucher_core.table`, commands in
:mod:`voucher_core.commands`, the JSON codec in :mod:`voucher_core.wire`, the records the ports
pass around in :mod:`voucher_core.ports`.
"""

# The release, written here and nowhere else: pyproject.toml reads it for the package metadata,
# and ``voucher --version`` prints it.
__version__ = "0.1.0"

from voucher_core.drivers import AsyncDriver, Driver
from voucher_core.drivers.shared import DriverSettings
from voucher_core.errors import (
    InvalidArgument,
    InvalidEvent,
    InvalidFieldTypeError,
    InvalidFieldValueError,
    LookupRefused,
    MessageError,
    SnapshotError,
    VoucherError,
    WireFormatError,
)
from voucher_core.policy import (
    BackoffPolicy,
    DecisionPolicy,
    Messaging,
    ProviderProfile,
    RetryPolicy,
)
from voucher_core.ports import (
    AdviceQueue,
    AsyncAdviceQueue,
    AsyncTransactionJournal,
    AsyncTransport,
    Clock,
    TransactionJournal,
    Transport,
)
from voucher_core.table import State
from voucher_core.transaction import Outcome, Transaction

__all__ = [
    "AdviceQueue",
    "AsyncAdviceQueue",
    "AsyncDriver",
    "AsyncTransactionJournal",
    "AsyncTransport",
    "BackoffPolicy",
    "Clock",
    "DecisionPolicy",
    "Driver",
    "DriverSettings",
    "InvalidArgument",
    "InvalidEvent",
    "InvalidFieldTypeError",
    "InvalidFieldValueError",
    "LookupRefused",
    "MessageError",
    "Messaging",
    "Outcome",
    "ProviderProfile",
    "RetryPolicy",
    "SnapshotError",
    "State",
    "Transaction",
    "TransactionJournal",
    "Transport",
    "VoucherError",
    "WireFormatError",
]
