"""The switch simulator as an HTTP server: Electrum's SUV test server, plus an admin API.

The same :class:`~voucher_adapters.simulator.SwitchSimulator` the in-memory transport calls
directly is
served here over real HTTP (Starlette on uvicorn), so a point-of-sale client written against
Electrum's SUV test server runs against it unchanged. Faults the simulator injects become real
network behaviour: a delayed answer really is late, and a lost one really drops the connection.

* :func:`create_app` builds the ASGI application around a switch.
* :func:`serve` runs it in the foreground until Ctrl-C (``voucher serve``).
* :class:`RunningServer` runs it on a free loopback port in a background thread, for tests and
  ``voucher simulate --http``.

The wire paths, authentication and admin endpoints are described in ``docs/admin-api.md``.
Starlette and uvicorn are optional extras (``voucher-core[server]``); nothing outside this
package imports them.
"""

from voucher_adapters.simulator.server.app import create_app
from voucher_adapters.simulator.server.running import RunningServer, ServerTLS, serve

__all__ = ["RunningServer", "ServerTLS", "create_app", "serve"]
