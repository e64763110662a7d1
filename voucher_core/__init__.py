"""voucher-core: sell digital vouchers through the Electrum switch without losing money.

Each sale is a :class:`Transaction`, a state machine that takes what happened and says what to
send next. Drivers (:class:`Driver`, :class:`AsyncDriver`) run transactions over two ports, a
transport to the switch and an advice queue, which adapters implement.
"""

from voucher_core.commands import AwaitDecision, Command, QueueAdvice, SendProvision, SendRetry
from voucher_core.drivers import AsyncDriver, Driver
from voucher_core.drivers.shared import DriverSettings
from voucher_core.errors import InvalidEvent, LookupRefused, VoucherError
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
    AsyncTransport,
    Clock,
    QueuedAdvice,
    Transport,
)
from voucher_core.replies import (
    Acknowledged,
    AdviceKind,
    AdviceReply,
    Approved,
    Conflict,
    Declined,
    ProvisionReply,
    Rejected,
    RepeatLater,
    Unknown,
    UnknownReason,
    classify_advice,
    classify_provision,
    no_response,
)
from voucher_core.table import TERMINAL, TRANSITIONS, Event, Rule, State
from voucher_core.transaction import Outcome, Transaction
from voucher_core.wire import WireFormatError, from_json, from_wire, to_json, to_wire

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "Acknowledged",
    "AdviceKind",
    "AdviceQueue",
    "AdviceReply",
    "Approved",
    "AsyncAdviceQueue",
    "AsyncDriver",
    "AsyncTransport",
    "AwaitDecision",
    "BackoffPolicy",
    "Clock",
    "Command",
    "Conflict",
    "DecisionPolicy",
    "Declined",
    "Driver",
    "DriverSettings",
    "Event",
    "InvalidEvent",
    "LookupRefused",
    "Messaging",
    "Outcome",
    "ProviderProfile",
    "ProvisionReply",
    "QueueAdvice",
    "QueuedAdvice",
    "Rejected",
    "RepeatLater",
    "RetryPolicy",
    "Rule",
    "SendProvision",
    "SendRetry",
    "State",
    "Transaction",
    "Transport",
    "Unknown",
    "UnknownReason",
    "VoucherError",
    "WireFormatError",
    "classify_advice",
    "classify_provision",
    "from_json",
    "from_wire",
    "no_response",
    "to_json",
    "to_wire",
]
