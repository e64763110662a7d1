"""What every transport reports to an observer: the operation, the bytes sent, the reply.

Shared by the in-memory and HTTP transports, so timelines and tests read both alike. An
observer is told through :func:`tell`, which never lets the observer's failure reach the
caller: a metrics backend that is down must not turn an approved sale into an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

from voucher_core.ports import LookupReply, Operation
from voucher_core.replies import AdviceReply, ProvisionReply

__all__ = ["LOGGER", "Exchange", "ExchangeObserver", "Operation", "tell"]

LOGGER = logging.getLogger("voucher_core.transport")


@attrs.frozen
class Exchange:
    """One request to the switch and what the caller made of the answer.

    ``message_id`` is the message's own id; ``request_id`` the provision's (the same for a
    provision, a retry and a lookup). ``status`` is ``None`` when no answer arrived in time.
    ``latency`` is the seconds from sending to the reply's being read, or to giving up: measured
    on the monotonic clock by the HTTP transports, the simulated delay in memory.
    """

    operation: Operation
    message_id: str
    request_id: str
    body: bytes
    status: int | None
    reply: ProvisionReply | AdviceReply | LookupReply
    latency: float = 0.0


ExchangeObserver = Callable[[Exchange], None]


def tell(
    observer: ExchangeObserver | None, exchange: Exchange, *, logger: logging.Logger = LOGGER
) -> None:
    """Hand ``exchange`` to ``observer``; if the observer raises, log it on ``logger`` and
    go on.

    The log line names the operation and the provision's id, never the body (it may hold a
    PIN) nor the observer's message text beyond what its exception says.
    """
    if observer is None:
        return
    try:
        observer(exchange)
    except Exception:  # the observer's failure is its own; the exchange already happened
        logger.exception(
            "the exchange observer raised on %s of provision %s; the call goes on",
            exchange.operation.value,
            exchange.request_id,
        )
