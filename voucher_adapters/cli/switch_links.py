"""How a simulation reaches its switch: in-process, or over real HTTP on loopback.

Simulations (``voucher simulate``) build a :class:`~voucher_adapters.simulator.SwitchSimulator` and
then talk to it through a link. The in-process link hands messages straight to the simulator
through the in-memory transport. The HTTP link serves the same simulator with the ASGI server
on a free loopback port and talks to it with the HTTP transport, so a run exercises the real
client, a real socket and the real server. Either way the simulator object stays in this
process, so the run can still read its ledger to judge the outcome.

Over HTTP, a delayed answer really is late, so the link uses a short per-attempt timeout and
makes delay faults just a little longer than that.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from voucher_adapters.errors import SimulatorError
from voucher_adapters.simulator import SwitchSimulator
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.in_process import InMemoryTransport
from voucher_core.ports import Transport

__all__ = ["HttpLink", "InProcessLink", "SwitchLink", "open_link"]

Observer = Callable[[Exchange], None]


class SwitchLink(Protocol):
    timeout: float
    fault_delay: float

    def transport(self, username: str, observer: Observer | None = None) -> Transport: ...

    def pump_once(self) -> None:
        """Let the switch make one pass over what it holds for the providers."""
        ...

    def settle(self) -> None:
        """Let the switch forward everything it holds to the providers."""
        ...

    def close(self) -> None: ...


class InProcessLink:
    timeout = 60.0
    fault_delay = 120.0

    def __init__(self, switch: SwitchSimulator) -> None:
        self.switch = switch

    def transport(self, username: str, observer: Observer | None = None) -> Transport:
        return InMemoryTransport(self.switch, username=username, observer=observer)

    def pump_once(self) -> None:
        self.switch.pump(max_rounds=1)

    def settle(self) -> None:
        self.switch.pump()

    def close(self) -> None:
        return None


class HttpLink:
    timeout = 1.0
    fault_delay = 1.5

    def __init__(self, switch: SwitchSimulator) -> None:
        # Imported here: the HTTP pieces are optional extras, needed only for --http.
        from voucher_adapters.simulator.server import RunningServer, create_app  # noqa: PLC0415
        from voucher_adapters.transports.http import BasicAuth, HttpTransport  # noqa: PLC0415

        self._auth = BasicAuth
        self._transport_class = HttpTransport
        self.switch = switch
        # The switch forwards to providers only when asked (settle), so timelines stay in order.
        self._server = RunningServer(create_app(switch, pump_interval=3600.0))
        self._server.__enter__()
        self._transports: list[HttpTransport] = []

    @property
    def url(self) -> str:
        return self._server.url

    def transport(self, username: str, observer: Observer | None = None) -> Transport:
        transport = self._transport_class(
            self.url, auth=self._auth(username, "simulated"), observer=observer
        )
        self._transports.append(transport)
        return transport

    def _pump(self, **body: int) -> int:
        """Pump through the admin API; returns what the switch still holds."""
        import urllib3  # noqa: PLC0415  (an optional extra)

        reply = urllib3.request(
            "POST", f"{self.url}/testServerAdmin/pump", json=body, timeout=10.0, retries=False
        )
        if reply.status >= 400:
            raise SimulatorError(f"the simulator's pump answered HTTP {reply.status}")
        return int(json.loads(reply.data).get("pending", 0))

    def pump_once(self) -> None:
        self._pump(maxRounds=1)

    def settle(self) -> None:
        for _ in range(1000):
            if self._pump() == 0:
                return
        raise SimulatorError("the simulator's store-and-forward queue did not drain")

    def close(self) -> None:
        for transport in self._transports:
            transport.close()
        self._server.__exit__(None, None, None)


class open_link:  # noqa: N801  (used as a context manager, like open())
    """``with open_link(switch, http=...) as link:`` starts and stops what the link needs."""

    def __init__(self, switch: SwitchSimulator, *, http: bool) -> None:
        self._link: SwitchLink = HttpLink(switch) if http else InProcessLink(switch)

    def __enter__(self) -> SwitchLink:
        return self._link

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._link.close()
