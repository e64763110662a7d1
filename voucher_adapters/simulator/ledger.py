"""The providers' own books: what each provider issued, confirmed and reversed.

This is the record that judges money (invariant 2): a voucher the provider holds as issued
(single messaging) or confirmed (dual) is worth something; a reversed one is not. It changes
when the provider itself hears about a provision or an advice, which for advices is only when
the switch's store-and-forward queue delivers them (:mod:`voucher_adapters.simulator.forwarding`).
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["LedgerEntry", "LedgerState", "ProviderLedger"]

LedgerState = Literal["issued", "confirmed", "reversed"]


@attrs.frozen
class LedgerEntry:
    """One voucher in one provider's books."""

    provision_id: str
    provider: str
    state: LedgerState


@attrs.define
class ProviderLedger:
    """Every provider's books, keyed by the switch user and the provision id.

    The provider answers an advice with what it did: the new state, or why nothing changed.
    """

    _entries: dict[tuple[str, str], LedgerEntry] = attrs.field(factory=dict, init=False)

    def issue(self, username: str, provision_id: str, provider: str) -> None:
        self._entries[(username, provision_id)] = LedgerEntry(provision_id, provider, "issued")

    def state(self, username: str, provision_id: str) -> LedgerState | None:
        entry = self._entries.get((username, provision_id))
        return None if entry is None else entry.state

    def confirm(self, username: str, provision_id: str) -> str:
        return self._settle(username, provision_id, "confirmed")

    def reverse(self, username: str, provision_id: str) -> str:
        return self._settle(username, provision_id, "reversed")

    def _settle(self, username: str, provision_id: str, state: LedgerState) -> str:
        key = (username, provision_id)
        entry = self._entries.get(key)
        if entry is None:
            return "provider has no such voucher"
        if entry.state == state:
            return f"already {state}"
        if entry.state != "issued":
            # A confirmed voucher cannot be reversed here, nor a reversed one confirmed.
            return f"refused: voucher already {entry.state}"
        self._entries[key] = attrs.evolve(entry, state=state)
        return state

    def entries(self) -> list[LedgerEntry]:
        return list(self._entries.values())

    def forget(self, username: str) -> None:
        for key in [key for key in self._entries if key[0] == username]:
            del self._entries[key]
