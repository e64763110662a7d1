"""What every transport reports to an observer: the operation, the bytes sent, the reply.

Shared by the in-memory and HTTP transports, so timelines and tests read both alike.
"""

from __future__ import annotations

import attrs

from voucher_core.ports import LookupReply, Operation
from voucher_core.replies import AdviceReply, ProvisionReply

__all__ = ["Exchange", "Operation"]


@attrs.frozen
class Exchange:
    """One request to the switch and what the caller made of the answer.

    ``message_id`` is the message's own id; ``request_id`` the provision's (the same for a
    provision, a retry and a lookup). ``status`` is ``None`` when no answer arrived in time.
    """

    operation: Operation
    message_id: str
    request_id: str
    body: bytes
    status: int | None
    reply: ProvisionReply | AdviceReply | LookupReply
