"""Reading the admin API's JSON bodies, with one problem reported per bad field.

Each problem is a ``FormatProblem`` naming the field by its camelCase key, so bad admin input
is refused exactly like a bad SUV request: 400 ``FORMAT_ERROR`` listing ``formatErrors``.
Keys a body may not carry are problems too. Enum values are matched ignoring case.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from starlette.requests import Request

from voucher_adapters.simulator import FaultKind, Operation
from voucher_adapters.simulator.refusals import FormatProblem
from voucher_adapters.simulator.server.intake import read_body
from voucher_core.errors import VoucherError
from voucher_core.policy import Messaging

__all__ = ["Fields", "Invalid", "json_object"]

E = TypeVar("E", FaultKind, Operation, Messaging)


class Invalid(VoucherError):
    def __init__(self, problems: list[FormatProblem]) -> None:
        super().__init__(problems)
        self.problems = problems


class Fields:
    """Reads the keys of one JSON object, collecting a problem per bad field."""

    def __init__(self, data: Mapping[str, Any], known: set[str]) -> None:
        self.data = data
        self.problems = [
            FormatProblem(key, f"unknown field {key!r}") for key in data if key not in known
        ]

    def _bad(self, field: str, msg: str) -> None:
        self.problems.append(FormatProblem(field, msg))

    def enum(self, field: str, kind: type[E], *, required: bool = False) -> E | None:
        value = self.data.get(field)
        if value is None:
            if required:
                self._bad(field, f"{field} may not be null")
            return None
        found = _member(kind, value)
        if found is None:
            choices = ", ".join(member.value for member in kind)
            self._bad(field, f"{field} must be one of: {choices}")
        return found

    def enums(self, field: str, kind: type[E]) -> list[E] | None:
        value = self.data.get(field)
        if value is None:
            return None
        if not isinstance(value, list):
            self._bad(field, f"{field} must be a list")
            return None
        found = [_member(kind, item) for item in value]
        members = [member for member in found if member is not None]
        if len(members) != len(found):
            choices = ", ".join(member.value for member in kind)
            self._bad(field, f"every item of {field} must be one of: {choices}")
            return None
        return members

    def whole(
        self, field: str, *, minimum: int | None = None, required: bool = False
    ) -> int | None:
        value = self.data.get(field)
        if value is None:
            if required:
                self._bad(field, f"{field} may not be null")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._bad(field, f"{field} must be a whole number")
            return None
        if minimum is not None and value < minimum:
            self._bad(field, f"{field} must be at least {minimum}")
            return None
        return value

    def number(
        self, field: str, *, low: float = 0.0, high: float = math.inf, required: bool = False
    ) -> float | None:
        value = self.data.get(field)
        if value is None:
            if required:
                self._bad(field, f"{field} may not be null")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._bad(field, f"{field} must be a number")
            return None
        if not low <= value <= high or not math.isfinite(value):
            bounds = f"between {low:g} and {high:g}" if high != math.inf else f"at least {low:g}"
            self._bad(field, f"{field} must be {bounds}")
            return None
        return float(value)

    def text(self, field: str) -> str | None:
        value = self.data.get(field)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self._bad(field, f"{field} must be a non-empty string")
            return None
        return value

    def flag(self, field: str, *, default: bool) -> bool:
        value = self.data.get(field)
        if value is None:
            return default
        if not isinstance(value, bool):
            self._bad(field, f"{field} must be true or false")
            return default
        return value

    def texts(self, field: str) -> list[str]:
        value = self.data.get(field)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self._bad(field, f"{field} must be a list of non-empty strings")
            return []
        return list(value)

    def nested(self, path: str, sub: Fields) -> None:
        """Adopt the problems of a nested object, their fields prefixed with ``path``."""
        self.problems.extend(
            FormatProblem(f"{path}.{p.field}", f"{path}.{p.msg}") for p in sub.problems
        )

    def check(self) -> None:
        if self.problems:
            raise Invalid(self.problems)


def _member(kind: type[E], value: object) -> E | None:
    if not isinstance(value, str):
        return None
    for member in kind:
        if member.value.lower() == value.lower():
            return member
    return None


async def json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` where the body is ``optional``."""
    body = await read_body(request, request.app.state.max_body)
    if optional and not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Invalid([FormatProblem("body", "request body is not valid JSON")]) from None
    if not isinstance(data, dict):
        raise Invalid([FormatProblem("body", "request body must be a JSON object")])
    return data
