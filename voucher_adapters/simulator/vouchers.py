"""How the simulated providers make vouchers and references, from one seeded random source.

Nothing here reads a clock: a voucher's expiry is counted from the provision request's own
``time``, so the same requests and the same seed give the same vouchers byte for byte.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

__all__ = ["SWITCH_INSTITUTION_ID", "VoucherMint"]

SWITCH_INSTITUTION_ID = "electrum-simulator"
_VALIDITY = timedelta(days=365)


def rfc3339(moment: datetime) -> str:
    """UTC, milliseconds and ``Z``, as the interface writes times."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@attrs.define
class VoucherMint:
    draws: random.Random

    def voucher(self, requested_at: datetime, requested: Any) -> dict[str, Any]:
        """A fresh voucher; fields the request named itself are kept as they are."""
        voucher: dict[str, Any] = {
            "code": f"{self.draws.randrange(10**16):016d}",
            "expiryDate": rfc3339(requested_at + _VALIDITY),
            "serialNumber": f"SN{self.draws.randrange(16**10):010X}",
        }
        if isinstance(requested, dict):
            voucher.update(requested)
        return voucher

    def reference(self, institution_id: str) -> dict[str, str]:
        """A ``ThirdPartyIdentifier`` for one party's own books."""
        return {
            "institutionId": institution_id,
            "transactionIdentifier": f"{self.draws.randrange(16**16):016x}",
        }
