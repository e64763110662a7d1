"""The switch's own store-and-forward queue towards the providers.

The switch acknowledges an advice as soon as it has recorded it, then owes the provider that
advice. Each queued forward is tried once per round; a forward whose provider leg fails goes
to the back of the queue, so that one unreachable provider never holds up the others. The
provider's answer is always final: it changes the provider's ledger, or says why it could not,
and the forward leaves the queue either way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import attrs

from voucher_adapters.simulator.ledger import ProviderLedger
from voucher_adapters.simulator.reply import Operation

__all__ = ["Forward", "StoreAndForward", "SwitchEvent"]

TO_PROVIDER = "switch->provider"
FROM_PROVIDER = "provider->switch"


@attrs.frozen
class SwitchEvent:
    """One leg of the switch's store-and-forward traffic, for timelines.

    ``leg`` is ``"switch->provider"`` or ``"provider->switch"``.
    """

    leg: str
    operation: str
    provision_id: str
    detail: str


@attrs.frozen
class Forward:
    """An advice the switch still owes a provider."""

    username: str
    operation: Operation  # CONFIRM or REVERSE
    advice_id: str
    provision_id: str
    provider: str


@attrs.define
class StoreAndForward:
    ledger: ProviderLedger
    listener: Callable[[SwitchEvent], None] | None = None
    _queue: deque[Forward] = attrs.field(factory=deque, init=False)

    def enqueue(self, forward: Forward) -> None:
        self._queue.append(forward)

    def __len__(self) -> int:
        return len(self._queue)

    def providers(self) -> set[str]:
        """The names of the providers still owed an advice."""
        return {forward.provider for forward in self._queue}

    def forget(self, username: str) -> None:
        self._queue = deque(forward for forward in self._queue if forward.username != username)

    def pump(self, max_rounds: int, leg_fails: Callable[[], bool]) -> int:
        """Forward until the queue is empty or ``max_rounds`` passes over it are spent.

        ``leg_fails`` says whether one attempt to reach a provider fails. Returns how many
        forwards reached their provider.
        """
        delivered = 0
        for _ in range(max_rounds):
            if not self._queue:
                break
            for _ in range(len(self._queue)):
                forward = self._queue.popleft()
                if self._deliver(forward, leg_fails):
                    delivered += 1
                else:
                    self._queue.append(forward)
        return delivered

    def _deliver(self, forward: Forward, leg_fails: Callable[[], bool]) -> bool:
        what = "confirmation" if forward.operation is Operation.CONFIRM else "reversal"
        self._tell(TO_PROVIDER, forward, f"{what} {forward.advice_id} to {forward.provider}")
        if leg_fails():
            self._tell(TO_PROVIDER, forward, f"{forward.provider} unreachable; kept queued")
            return False
        if forward.operation is Operation.CONFIRM:
            outcome = self.ledger.confirm(forward.username, forward.provision_id)
        else:
            outcome = self.ledger.reverse(forward.username, forward.provision_id)
        self._tell(FROM_PROVIDER, forward, f"{forward.provider}: {outcome}")
        return True

    def _tell(self, leg: str, forward: Forward, detail: str) -> None:
        if self.listener is not None:
            self.listener(SwitchEvent(leg, forward.operation.value, forward.provision_id, detail))
