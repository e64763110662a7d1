"""Fault injection: what goes wrong, for which request, scripted or drawn from a seed.

A fault is decided once per request, before the switch looks at it, and its kind says whether
the switch processes the request at all:

* not processed: ``DROPPED`` (the connection drops before the switch reads the request),
  ``UNAVAILABLE`` (503 ``UPSTREAM_UNAVAILABLE``), ``SERVER_ERROR`` (500, empty or plain-text
  body), ``DECLINE`` (400 ``DO_NOT_HONOUR``);
* processed, then the answer goes wrong: ``DELAY`` (it leaves after ``Fault.delay`` seconds),
  ``LOST`` (it never arrives), ``STATUS_UNKNOWN`` (504 ``VOUCHER_STATUS_UNKNOWN``);
* processed, and an approval reaches the client proving nothing (only a 2xx answer to a
  provision or retry is spoiled; any other answer passes unchanged): ``UNPROVEN`` (the voucher
  issued, but the answer lacks it, or names another sale, client or amount: ``Fault.damage``
  says which, else the draw picks one) and ``DUPLICATE_RECORD`` (400 ``DUPLICATE_RECORD``
  instead of the 201, naming the voucher in ``detailMessage``; provisions only, as a switch
  says of a repeated id).

Scripted faults come first, in the order they were scripted, each used ``times`` times by the
requests it matches. Random faults use their own ``random.Random(seed)``, so a run replays
exactly from its seed whatever the switch draws for vouchers. Random faults never decline an
advice (a declined advice is parked for good by the client, which no healing network undoes,
so that only happens when a test scripts it), and never draw a kind that only spoils
approvals for an advice.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Collection, Sequence

import attrs

from voucher_adapters.simulator.reply import Operation
from voucher_core.errors import InvalidArgument

__all__ = ["ADVICES", "PROVISIONS", "Damage", "Fault", "FaultKind", "FaultPlan"]

ADVICES = frozenset({Operation.CONFIRM, Operation.REVERSE})
PROVISIONS = frozenset({Operation.PROVISION, Operation.RETRY})


class FaultKind(enum.StrEnum):
    DELAY = "delay"
    LOST = "lost"
    DROPPED = "dropped"
    UNAVAILABLE = "unavailable"
    STATUS_UNKNOWN = "status_unknown"
    SERVER_ERROR = "server_error"
    DECLINE = "decline"
    UNPROVEN = "unproven"
    DUPLICATE_RECORD = "duplicate_record"

    @property
    def processed(self) -> bool:
        """Whether the switch processes the request before the fault strikes."""
        return self in _PROCESSED

    @property
    def provisions_only(self) -> bool:
        """Whether only a provision (or retry) can meet it: never drawn for an advice."""
        return self in _PROVISIONS_ONLY


class Damage(enum.StrEnum):
    """How an ``UNPROVEN`` approval fails to prove the sale."""

    NO_VOUCHER = "no_voucher"
    EMPTY_CODE = "empty_code"
    ANOTHER_SALE = "another_sale"
    ANOTHER_CLIENT = "another_client"
    ANOTHER_AMOUNT = "another_amount"


_PROCESSED = frozenset(
    {
        FaultKind.DELAY,
        FaultKind.LOST,
        FaultKind.STATUS_UNKNOWN,
        FaultKind.UNPROVEN,
        FaultKind.DUPLICATE_RECORD,
    }
)
_PROVISIONS_ONLY = frozenset({FaultKind.DECLINE, FaultKind.UNPROVEN, FaultKind.DUPLICATE_RECORD})
# What random faults draw unless told: the network's faults, no declines and no damaged
# approvals (those only when asked for, as the chaos run and the property tests do).
_RANDOM_KINDS = tuple(kind for kind in FaultKind if kind not in _PROVISIONS_ONLY)
_RANDOM_OPERATIONS = frozenset(
    {Operation.PROVISION, Operation.RETRY, Operation.CONFIRM, Operation.REVERSE}
)


def _not_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise InvalidArgument(f"{attribute.name} must not be negative, got {value!r}")


@attrs.frozen
class Fault:
    """One injected fault. ``delay`` only matters for ``DELAY`` (past a 60 s timeout by
    default), ``damage`` only for ``UNPROVEN`` (none: the first, ``NO_VOUCHER``)."""

    kind: FaultKind
    delay: float = attrs.field(default=120.0, validator=_not_negative)
    damage: Damage | None = None


@attrs.define
class _Script:
    operation: Operation
    fault: Fault
    remaining: int
    product_id: str | None
    provision_id: str | None

    def matches(
        self, operation: Operation, product_id: str | None, provision_id: str | None
    ) -> bool:
        return (
            self.operation is operation
            and (self.product_id is None or self.product_id == product_id)
            and (self.provision_id is None or self.provision_id == provision_id)
        )


@attrs.define
class _RandomFaults:
    draws: random.Random
    legs: random.Random
    rate: float
    kinds: tuple[FaultKind, ...]
    operations: frozenset[Operation]
    provider_down_rate: float
    delay: float = 120.0


def _fault_kind(kind: str) -> FaultKind:
    try:
        return FaultKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise InvalidArgument(f"unknown fault {kind!r}; the kinds are: {known}") from None


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise InvalidArgument(f"{name} must be between 0 and 1, got {rate!r}")


@attrs.define
class FaultPlan:
    """The faults the switch will inject, scripted per request or random from a seed."""

    _scripts: list[_Script] = attrs.field(factory=list, init=False)
    _random: _RandomFaults | None = attrs.field(default=None, init=False)

    def script(
        self,
        operation: Operation,
        fault: Fault | FaultKind | str,
        *,
        times: int = 1,
        product_id: str | None = None,
        provision_id: str | None = None,
    ) -> None:
        """The next ``times`` requests of ``operation`` that match the filters get ``fault``
        (a :class:`Fault`, a :class:`FaultKind`, or its value such as ``"decline"``).

        ``provision_id`` is the provision's id: the request's own id for a provision or retry,
        ``requestId`` for an advice, ``provisionRequestId`` for a lookup.
        """
        if times < 1:
            raise InvalidArgument(f"times must be at least 1, got {times}")
        if not isinstance(fault, Fault):
            fault = Fault(_fault_kind(fault))
        self._scripts.append(_Script(Operation(operation), fault, times, product_id, provision_id))

    def randomly(
        self,
        *,
        seed: int,
        rate: float,
        kinds: Sequence[FaultKind] = _RANDOM_KINDS,
        operations: Collection[Operation] = _RANDOM_OPERATIONS,
        provider_down_rate: float = 0.0,
        delay: float = 120.0,
    ) -> None:
        """From now on, each request of ``operations`` meets a fault with probability ``rate``.

        The kind is drawn uniformly from ``kinds`` (those only for provisions, ``DECLINE``
        among them, are never drawn for an advice); an ``UNPROVEN`` fault's damage too.
        ``provider_down_rate`` is the probability that one store-and-forward delivery from the
        switch to a provider fails. ``delay`` is how late a ``DELAY`` answer comes. Scripted
        faults still take precedence.
        """
        _check_rate("rate", rate)
        _check_rate("provider_down_rate", provider_down_rate)
        if rate > 0 and not kinds:
            raise InvalidArgument("random faults need at least one kind")
        self._random = _RandomFaults(
            random.Random(seed),
            # A stream of its own: pumping the switch's queue more or less often must not
            # change which requests meet a fault.
            random.Random(f"{seed}/provider legs"),
            rate,
            tuple(_fault_kind(kind) for kind in kinds),
            frozenset(Operation(operation) for operation in operations),
            provider_down_rate,
            delay,
        )

    def heal(self) -> None:
        """No more faults of any kind, scripted or random; every provider leg works again."""
        self._scripts.clear()
        self._random = None

    @property
    def scripted(self) -> int:
        """How many scripted faults are still waiting for a request."""
        return sum(script.remaining for script in self._scripts)

    def next_fault(
        self, operation: Operation, *, product_id: str | None, provision_id: str | None
    ) -> Fault | None:
        """The fault for this request, if any. Each call consumes what it returns."""
        for script in self._scripts:
            if script.matches(operation, product_id, provision_id):
                script.remaining -= 1
                if script.remaining == 0:
                    self._scripts.remove(script)
                return script.fault
        chance = self._random
        if chance is None or operation not in chance.operations or chance.rate == 0:
            return None
        # Draw the same numbers whatever the outcome, so that one request's fault never
        # shifts which faults later requests get.
        hit = chance.draws.random() < chance.rate
        pick = chance.draws.random()
        kinds = chance.kinds
        if operation not in PROVISIONS:
            kinds = tuple(kind for kind in kinds if not kind.provisions_only)
        if not hit or not kinds:
            return None
        scaled = pick * len(kinds)
        kind = kinds[int(scaled)]
        damage = None
        if kind is FaultKind.UNPROVEN:
            # What is left of the same draw picks the damage: no extra number drawn.
            damages = list(Damage)
            damage = damages[min(int((scaled % 1) * len(damages)), len(damages) - 1)]
        return Fault(kind, chance.delay, damage)

    def provider_leg_fails(self) -> bool:
        """Whether one forwarding attempt from the switch to a provider fails."""
        chance = self._random
        if chance is None or chance.provider_down_rate == 0:
            return False
        return chance.legs.random() < chance.provider_down_rate
