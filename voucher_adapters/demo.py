"""A ready-made originator for demos, simulations and smoke tests.

Real hosts build their own :class:`~voucher_core.messages.ProvisionRequest` with the details
Electrum issued them. These values are only well-formed placeholders.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime

from voucher_core.messages import (
    Amounts,
    Institution,
    LedgerAmount,
    Merchant,
    MerchantName,
    Originator,
    Product,
    ProvisionRequest,
    Tender,
    TenderType,
    ThirdPartyIdentifier,
)

__all__ = ["DEMO_CLIENT_ID", "DEMO_PASSWORD", "SeededIds", "cash", "demo_request"]

DEMO_CLIENT_ID = "voucher-demo"
# The password the demo commands use with DEMO_CLIENT_ID (the simulator takes any).
DEMO_PASSWORD = "demo"
DEMO_CURRENCY = "710"


class SeededIds:
    """Repeatable UUID v4 strings from a seed, so simulated runs print the same ids."""

    def __init__(self, seed: int | str) -> None:
        self._random = random.Random(seed)

    def __call__(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))


def demo_request(
    *,
    id: str,
    time: datetime,
    product_id: str = "AIRTIME10",
    amount: int = 1000,
    client_id: str = DEMO_CLIENT_ID,
    terminal_id: str = "TILL0001",
) -> ProvisionRequest:
    """A valid provision request for ``amount`` minor units of ``product_id``."""
    return ProvisionRequest(
        id=id,
        time=time,
        originator=Originator(
            institution=Institution(id="999001", name="Demo Retail Group"),
            terminal_id=terminal_id,
            merchant=Merchant(
                merchant_type="5411",
                merchant_id="000000000012345",
                merchant_name=MerchantName(
                    name="Demo Corner Store", city="Cape Town", region="WC", country="ZA"
                ),
            ),
        ),
        client=Institution(id=client_id, name="Demo Retail Group"),
        third_party_identifiers=(
            ThirdPartyIdentifier(institution_id="999001", transaction_identifier=id[:18]),
        ),
        amounts=Amounts(request_amount=LedgerAmount(amount=amount, currency=DEMO_CURRENCY)),
        product=Product(product_id=product_id),
    )


def cash(amount: int) -> tuple[Tender, ...]:
    """One cash tender for ``amount`` minor units."""
    return (
        Tender(tender_type=TenderType.CASH, amount=LedgerAmount(amount=amount, currency="710")),
    )
