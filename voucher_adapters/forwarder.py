"""Background delivery of queued advices inside a host process.

:class:`ForwarderThread` runs ``driver.forward()`` every ``interval`` seconds on a thread of
its own; :func:`forward_forever` is the asyncio twin, to run as a task. Both keep going through
errors (a storage hiccup, a switch that is down: the advice simply stays queued) and log them;
the thread also keeps the last one (``last_error``) for the host to inspect.

The thread only delivers advices. Host decisions (``confirm``, ``cancel``) and their expiry
(``expire_decisions``) belong to the host's own thread, so that a decision and its expiry can
never race; pass ``expire=True`` only when nothing else drives the same driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from types import TracebackType

from voucher_core import AsyncDriver, Driver
from voucher_core.errors import InvalidArgument

__all__ = ["FORWARD_INTERVAL", "ForwarderThread", "forward_forever"]

# Seconds between rounds, for the thread and the task alike.
FORWARD_INTERVAL = 1.0

log = logging.getLogger("voucher_core.forwarder")


class ForwarderThread:
    """``with ForwarderThread(driver):`` delivers queued advices until the block ends."""

    def __init__(
        self, driver: Driver, *, interval: float = FORWARD_INTERVAL, expire: bool = False
    ) -> None:
        _check_interval(interval)
        self.driver = driver
        self.interval = interval
        self.expire = expire
        self.last_error: Exception | None = None
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voucher-forwarder", daemon=True)

    def start(self) -> ForwarderThread:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to finish its round and wait for it (at most ``timeout``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> ForwarderThread:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.expire:
                    self.driver.expire_decisions()
                while self.driver.forward() and not self._stop.is_set():
                    pass
            except Exception as error:  # keep delivering; the advice stays queued
                self.last_error = error
                log.warning("advice forwarding failed this round: %s", error)
            self.rounds += 1
            self._stop.wait(self.interval)


async def forward_forever(
    driver: AsyncDriver,
    stop: asyncio.Event,
    *,
    interval: float = FORWARD_INTERVAL,
    expire: bool = True,
) -> None:
    """Deliver queued advices (and, by default, expire overdue decisions) until ``stop``.

    Expiry is on by default here and off for the thread: a task shares the host's event
    loop, so an expiry can never run in the middle of the host's own decision."""
    _check_interval(interval)
    while not stop.is_set():
        try:
            if expire:
                await driver.expire_decisions()
            while await driver.forward() and not stop.is_set():
                pass
        except Exception as error:  # keep delivering; the advice stays queued
            log.warning("advice forwarding failed this round: %s", error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def _check_interval(interval: float) -> None:
    if not interval > 0:
        raise InvalidArgument(f"interval must be positive, got {interval!r}")
