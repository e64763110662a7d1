"""Policies are plain values the host chooses; the core only reads them.

Three knobs decide how a sale behaves when things go wrong:

* :class:`RetryPolicy`: how often and how patiently an unanswered provision is retried.
* :class:`ProviderProfile`: what the provider behind a product can do (single or dual
  messaging, retries, advices). Hosts keep one per product or provider.
* :class:`DecisionPolicy`: how long the host may take to confirm or cancel a dual-messaging
  sale before the library reverses it on the customer's behalf.

The advice queue's repeat schedule is :class:`BackoffPolicy`. None of them reads a clock: they
turn counts and random draws into durations, and the drivers do the waiting.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from voucher_core.errors import InvalidArgument

__all__ = [
    "DUAL",
    "NO_ADVICES",
    "NO_RETRIES",
    "SINGLE",
    "BackoffPolicy",
    "DecisionPolicy",
    "Messaging",
    "ProviderProfile",
    "RetryPolicy",
]


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise InvalidArgument(f"{attribute.name} must not be negative, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise InvalidArgument(f"{attribute.name} must be positive, got {value!r}")


class Messaging(enum.StrEnum):
    """Whether a provider needs a confirmation after the voucher is issued."""

    SINGLE = "single"
    DUAL = "dual"


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How an unanswered provision is chased.

    ``max_retries`` counts ``retryProvisionVoucher`` calls after the first attempt (the
    Electrum flows say "up to three times"). ``timeout`` is the per-attempt limit in seconds
    (60 s unless agreed otherwise with the switch). ``retry_delay`` is the pause before each
    retry, in seconds.
    """

    max_retries: int = attrs.field(default=3, validator=_non_negative)
    timeout: float = attrs.field(default=60.0, validator=_positive)
    retry_delay: float = attrs.field(default=0.0, validator=_non_negative)


@attrs.frozen(kw_only=True)
class ProviderProfile:
    """What the provider behind a product supports.

    ``retries_supported=False`` (Netcare, Stellr) makes the core skip futile retries: the
    switch would hard-decline them. ``advices_supported=False`` (Stellr) changes nothing on
    the originating side: the switch consumes the advices, and they are sent as usual.
    """

    messaging: Messaging = Messaging.DUAL
    retries_supported: bool = True
    advices_supported: bool = True

    @property
    def dual(self) -> bool:
        return self.messaging is Messaging.DUAL


SINGLE = ProviderProfile(messaging=Messaging.SINGLE)
DUAL = ProviderProfile(messaging=Messaging.DUAL)
NO_RETRIES = ProviderProfile(messaging=Messaging.DUAL, retries_supported=False)
NO_ADVICES = ProviderProfile(
    messaging=Messaging.DUAL, retries_supported=False, advices_supported=False
)


@attrs.frozen(kw_only=True)
class DecisionPolicy:
    """How long (seconds) a dual-messaging sale may wait in PROVISIONED for the host."""

    limit: float = attrs.field(default=300.0, validator=_positive)


@attrs.frozen(kw_only=True)
class BackoffPolicy:
    """The repeat schedule of a queued advice: exponential, jittered, capped.

    ``delay(attempt, draw)`` is pure: ``draw`` is a number in ``[0, 1)`` the caller takes from
    its own random source, so tests can pin it. With ``jitter=0.5`` the delay lands anywhere
    between half and all of the exponential value ("equal jitter"), which spreads a burst of
    failing advices without ever repeating faster than half the schedule.
    """

    initial: float = attrs.field(default=1.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    ceiling: float = attrs.field(default=300.0, validator=_positive)
    jitter: float = attrs.field(default=0.5)

    @jitter.validator
    def _check_jitter(self, _: attrs.Attribute[float], value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise InvalidArgument(f"jitter must be between 0 and 1, got {value!r}")

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait before repeat number ``attempt`` (1 for the first repeat)."""
        exponent = max(attempt - 1, 0)
        # Cap the exponent first so a long outage cannot overflow the float.
        base = min(self.ceiling, self.initial * self.multiplier ** min(exponent, 64))
        return base * (1.0 - self.jitter * draw)
