"""What the core asks its driver to do next. The core decides; the driver acts."""

from __future__ import annotations

import attrs

from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice
from voucher_core.replies import AdviceKind

__all__ = ["AwaitDecision", "Command", "QueueAdvice", "SendProvision", "SendRetry"]


@attrs.frozen
class SendProvision:
    """Send ``provisionVoucher`` with this request."""

    request: ProvisionRequest


@attrs.frozen
class SendRetry:
    """Send ``retryProvisionVoucher``: the original request, unchanged, as retry ``attempt``."""

    request: ProvisionRequest
    attempt: int


@attrs.frozen
class QueueAdvice:
    """Store this advice in the advice queue; the forwarder delivers it until it is final."""

    advice: TenderAdvice | BasicReversal

    @property
    def kind(self) -> AdviceKind:
        if isinstance(self.advice, TenderAdvice):
            return AdviceKind.CONFIRMATION
        return AdviceKind.REVERSAL


@attrs.frozen
class AwaitDecision:
    """Dual messaging: the voucher is in hand; the host must now confirm or cancel."""


Command = SendProvision | SendRetry | QueueAdvice | AwaitDecision
