"""What crosses the simulated switch's front door: an operation in, raw reply bytes out.

The simulator speaks bytes on both sides so that the in-memory transport and an HTTP server can
sit in front of it unchanged: the transport hands it the JSON it would have put on the wire, the
HTTP server hands it the request body, and both relay the :class:`SimReply` as they see fit.
"""

from __future__ import annotations

import attrs

from voucher_core.ports import Operation

__all__ = ["JSON", "Operation", "SimReply"]

JSON = "application/json"


@attrs.frozen
class SimReply:
    """One answer of the switch, as it would leave the socket.

    ``delay`` is how long the switch takes before the answer leaves: a client whose timeout is
    shorter sees nothing. ``lost`` means the connection drops and no answer arrives at all; when
    the request was processed first, ``status`` and ``body`` still say what would have been sent,
    which is useful in timelines. A request dropped before the switch read it has status 0.
    ``damaged`` marks an answer an ``UNPROVEN`` fault spoiled on purpose: it need not match
    the interface (its voucher may be missing), as a broken switch's would not. ``location``
    is the ``Location`` header of a 201: the path of the voucher created.
    """

    status: int
    body: bytes
    content_type: str = JSON
    delay: float = 0.0
    lost: bool = False
    damaged: bool = False
    location: str | None = None
