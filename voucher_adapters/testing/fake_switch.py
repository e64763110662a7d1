"""A fake Electrum switch for your own tests: the simulator, with faults scripted in words.

:class:`FakeSwitch` wraps a :class:`~voucher_adapters.simulator.SwitchSimulator` and its
:class:`~voucher_adapters.simulator.FaultPlan`. Instead of ``faults.script(Operation.RETRY,
FaultKind.DELAY, product_id=...)`` a test says what the next sale meets::

    switch.next_provision(product="AIRTIME10").times_out(2).then_succeeds()
    switch.next_confirmation().fails_with_5xx(times=2)

A provision script describes one sale's attempts in order: the first step is the
``provisionVoucher`` itself, every later step one ``retryProvisionVoucher``. An advice script
describes the next deliveries of a confirmation (or reversal). Steps are used first in, first
out by the requests they match, exactly as :meth:`FaultPlan.script` uses them.

Nothing here sleeps. A "timeout" is an answer the simulator marks as arriving ``late_by``
seconds later (an hour by default, past any per-attempt timeout); the in-memory transport
compares that with its timeout and reports no answer at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

from voucher_adapters.simulator import (
    DEFAULT_PROVIDER,
    Fault,
    FaultKind,
    FaultPlan,
    LedgerEntry,
    Operation,
    Provider,
    SwitchSimulator,
)
from voucher_core.errors import InvalidArgument
from voucher_core.messages import ProvisionRequest
from voucher_core.policy import Messaging, ProviderProfile

__all__ = ["AdviceScript", "FakeSwitch", "ProvisionScript"]

ProfileLike = ProviderProfile | Messaging | str


def _profile(value: ProfileLike) -> ProviderProfile:
    if isinstance(value, ProviderProfile):
        return value
    return ProviderProfile(messaging=Messaging(value))


class _Script:
    """The steps shared by provision and advice scripts."""

    def __init__(
        self,
        switch: FakeSwitch,
        product: str | None,
        provision_id: str | None,
    ) -> None:
        self._switch = switch
        self._product = product
        self._provision_id = provision_id
        self.steps: list[FaultKind] = []

    def _operation(self) -> Operation:
        raise NotImplementedError

    def _add(self, kind: FaultKind, times: int) -> Self:
        if times < 1:
            raise InvalidArgument(f"times must be at least 1, got {times}")
        for _ in range(times):
            fault = Fault(kind, delay=self._switch.late_by)
            self._switch.faults.script(
                self._operation(),
                fault,
                product_id=self._product,
                provision_id=self._provision_id,
            )
            self.steps.append(kind)
        return self

    def times_out(self, times: int = 1) -> Self:
        """The switch processes the request but answers too late: the caller hears nothing."""
        return self._add(FaultKind.DELAY, times)

    def is_lost(self, times: int = 1) -> Self:
        """The switch processes the request; its answer never arrives."""
        return self._add(FaultKind.LOST, times)

    def is_dropped(self, times: int = 1) -> Self:
        """The connection drops before the switch reads the request: nothing is processed."""
        return self._add(FaultKind.DROPPED, times)

    def answers_unknown(self, times: int = 1) -> Self:
        """504 ``VOUCHER_STATUS_UNKNOWN``: processed, but the provider's answer is unknown."""
        return self._add(FaultKind.STATUS_UNKNOWN, times)

    def is_unavailable(self, times: int = 1) -> Self:
        """503 ``UPSTREAM_UNAVAILABLE``: the provider is down, nothing is processed."""
        return self._add(FaultKind.UNAVAILABLE, times)

    def fails_with_5xx(self, times: int = 1) -> Self:
        """500 with an empty or plain-text body: the switch crashed before processing."""
        return self._add(FaultKind.SERVER_ERROR, times)

    def then_succeeds(self) -> Self:
        """Reads better at the end of a chain; the next matching request is answered normally."""
        return self


class ProvisionScript(_Script):
    """What one sale's provision and its retries meet, attempt by attempt."""

    def _operation(self) -> Operation:
        return Operation.PROVISION if not self.steps else Operation.RETRY

    def declines(self) -> Self:
        """400 ``DO_NOT_HONOUR``: a hard decline, nothing issued.

        On the first attempt the sale ends DECLINED with no further messages; on a retry the
        library reverses to be sure (the first attempt may have landed).
        """
        return self._add(FaultKind.DECLINE, 1)


class AdviceScript(_Script):
    """What the next deliveries of a confirmation or reversal meet."""

    def __init__(
        self,
        switch: FakeSwitch,
        operation: Operation,
        product: str | None,
        provision_id: str | None,
    ) -> None:
        super().__init__(switch, product, provision_id)
        self._advice_operation = operation

    def _operation(self) -> Operation:
        return self._advice_operation

    def is_rejected(self) -> Self:
        """400 ``DO_NOT_HONOUR``: a final refusal; the library parks the advice for a person."""
        return self._add(FaultKind.DECLINE, 1)


class FakeSwitch:
    """An in-memory Electrum switch with providers behind it, scripted in plain words.

    ``products`` maps product ids to what their provider does (a
    :class:`~voucher_core.policy.ProviderProfile`, or just ``"single"`` / ``"dual"``); each
    gets a provider of its own, named after the product. Anything else is served by a
    dual-messaging provider that takes retries and advices. Pass ``providers`` instead for
    full control. ``seed`` makes voucher codes and references repeatable.
    """

    def __init__(
        self,
        products: Mapping[str, ProfileLike] | None = None,
        *,
        providers: Sequence[Provider] | None = None,
        seed: int = 0,
        late_by: float = 3600.0,
    ) -> None:
        if products is not None and providers is not None:
            raise InvalidArgument("give products or providers, not both")
        if providers is None:
            providers = [DEFAULT_PROVIDER] + [
                Provider(product, _profile(profile), frozenset({product}))
                for product, profile in (products or {}).items()
            ]
        self.late_by = late_by
        self.simulator = SwitchSimulator(providers, seed=seed)

    # -- scripting ------------------------------------------------------------------------------

    @property
    def faults(self) -> FaultPlan:
        """The simulator's own fault plan, for anything the words below do not cover."""
        return self.simulator.faults

    def next_provision(
        self, product: str | None = None, *, provision_id: str | None = None
    ) -> ProvisionScript:
        """Script the next sale (of ``product``, or of any product) attempt by attempt."""
        return ProvisionScript(self, product, provision_id)

    def next_confirmation(
        self, product: str | None = None, *, provision_id: str | None = None
    ) -> AdviceScript:
        """Script the next deliveries of a confirmation (``confirmVoucher``)."""
        return AdviceScript(self, Operation.CONFIRM, product, provision_id)

    def next_reversal(
        self, product: str | None = None, *, provision_id: str | None = None
    ) -> AdviceScript:
        """Script the next deliveries of a reversal (``reverseVoucher``)."""
        return AdviceScript(self, Operation.REVERSE, product, provision_id)

    @property
    def scripted(self) -> int:
        """How many scripted faults no request has met yet."""
        return self.faults.scripted

    def heal(self) -> None:
        """Forget every scripted and random fault: from now on everything is answered."""
        self.faults.heal()

    # -- what the switch and its providers hold ------------------------------------------------

    def profile_for(self, request: ProvisionRequest) -> ProviderProfile:
        """The profile of the provider this request is routed to (for ``DriverSettings``)."""
        product = request.product.product_id if request.product is not None else None
        for provider in self.simulator.providers:
            if product is not None and product in provider.products:
                return provider.profile
        return self.simulator.default_provider.profile

    def pump(self) -> int:
        """Forward every advice the switch holds to its providers; returns how many."""
        return self.simulator.pump()

    def ledger(self) -> list[LedgerEntry]:
        """What each provider issued, confirmed and reversed."""
        return self.simulator.ledger()

    def ledger_state(self, provision_id: str) -> str | None:
        """``"issued"``, ``"confirmed"`` or ``"reversed"`` at the provider, or ``None``."""
        for entry in self.simulator.ledger():
            if entry.provision_id == provision_id:
                return entry.state
        return None

    def voucher_active(self, provision_id: str) -> bool:
        """Whether the voucher is worth money where it counts (see the simulator's docs)."""
        return self.simulator.voucher_active(provision_id)
