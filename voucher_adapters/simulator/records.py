"""The switch's own records of provisions, kept per account: per username and password.

A record exists once the switch has issued a voucher for a provision id, or once a reversal
arrived for an id the switch had never seen (remembered so that a late provision with that id
is refused). ``response`` is the exact ``ProvisionResponse`` JSON the switch answered with, kept
so that a retry or a duplicate gets the same voucher back.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["ProvisionRecord", "SwitchRecords"]


@attrs.define
class ProvisionRecord:
    provision_id: str
    provider: str
    product_id: str | None
    response: dict[str, Any] | None = None  # None: only a reversal ever arrived
    confirmed: bool = False
    reversed: bool = False
    reversal_id: str | None = None  # the id of the reversal that reversed it, once one did

    @property
    def landed(self) -> bool:
        """Whether a voucher was issued for this provision."""
        return self.response is not None

    @property
    def voucher(self) -> Any:
        return None if self.response is None else self.response.get("voucher")

    @property
    def voucher_code(self) -> str | None:
        voucher = self.voucher
        code = voucher.get("code") if isinstance(voucher, dict) else None
        return code if isinstance(code, str) else None

    @property
    def serial_number(self) -> str | None:
        voucher = self.voucher
        serial = voucher.get("serialNumber") if isinstance(voucher, dict) else None
        return serial if isinstance(serial, str) else None

    def institution_id(self, role: str) -> str | None:
        """The id of the voucher's ``receiver`` or ``settlementEntity``, if it has one."""
        institution = None if self.response is None else self.response.get(role)
        found = institution.get("id") if isinstance(institution, dict) else None
        return found if isinstance(found, str) else None


@attrs.define
class SwitchRecords:
    _by_user: dict[str, dict[str, ProvisionRecord]] = attrs.field(factory=dict, init=False)

    def get(self, username: str, provision_id: str) -> ProvisionRecord | None:
        return self._by_user.get(username, {}).get(provision_id)

    def put(self, username: str, record: ProvisionRecord) -> None:
        self._by_user.setdefault(username, {})[record.provision_id] = record

    def with_code(self, username: str, code: str) -> ProvisionRecord | None:
        """The record of the voucher with this code, if this user was issued one."""
        for record in self._by_user.get(username, {}).values():
            if record.voucher_code == code:
                return record
        return None

    def with_serial_number(self, username: str, serial: str) -> ProvisionRecord | None:
        """The record of the voucher with this serial number, if this user was issued one."""
        for record in self._by_user.get(username, {}).values():
            if record.serial_number == serial:
                return record
        return None

    def find(self, provision_id: str) -> list[tuple[str, ProvisionRecord]]:
        """The records with this id and the users they belong to."""
        return [
            (username, records[provision_id])
            for username, records in self._by_user.items()
            if provision_id in records
        ]

    def forget(self, username: str) -> None:
        self._by_user.pop(username, None)

    def providers(self) -> set[str]:
        """The names of every provider some record was routed to."""
        return {
            record.provider for records in self._by_user.values() for record in records.values()
        }
