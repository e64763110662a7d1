"""Check JSON bodies against Electrum's published SUV definitions (swagger 1.14.0).

Where the swagger is
    ``$VOUCHER_ELECTRUM_DIR`` names the directory holding ``suv-swagger-1.14.0.yaml``; without
    it, ``../shared/electrum`` beside the project root is used. When the file is in neither
    place, the tests that need it are skipped with the reason, except under CI (``$CI`` set to
    anything but ``""``, ``0`` or ``false``) or with ``VOUCHER_REQUIRE_SWAGGER=1``, where they
    fail: a pipeline must not pass by checking nothing.

How strictly
    An object may carry only the properties its definition lists, as Electrum's servers reject
    unknown fields. Every ``pattern`` must match the whole string (the swagger's patterns are
    written unanchored, and JSON Schema would otherwise accept ``"7100"`` for ``[0-9]{3}``),
    and formats are checked: ``date-time`` as RFC 3339, ``int32`` and ``int64`` by range.

The seeds are newer than swagger 1.14.0: the retry operation's request carries ``customer``,
``recipient`` and ``paymentMethods`` and its response ``transactionLabels``, ``recipient`` and
``tenders``, and both carry ``transactionLabels``. Those properties are added to the
definitions here, shaped as Electrum's models have them.
"""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

FILE_NAME = "suv-swagger-1.14.0.yaml"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT.parent / "shared" / "electrum"

OPERATION_BODIES = {
    "provisionVoucher": "ProvisionRequest",
    "retryProvisionVoucher": "ProvisionRequest",
    "confirmVoucher": "TenderAdvice",
    "reverseVoucher": "BasicReversal",
}
# What a 2xx answer to each operation carries (a confirmation and a reversal are echoed).
OPERATION_ANSWERS = {
    "provisionVoucher": "ProvisionResponse",
    "retryProvisionVoucher": "ProvisionResponse",
    "confirmVoucher": "TenderAdvice",
    "reverseVoucher": "BasicReversal",
    "lookupVoucher": "VoucherLookupResponse",
}

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_SEED_DEFINITIONS: dict[str, Any] = {
    "TransactionLabel": {
        "type": "object",
        "required": ["name", "value"],
        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
    },
    "Customer": {
        "type": "object",
        "properties": {
            "firstName": {"type": "string", "maxLength": 40},
            "lastName": {"type": "string", "maxLength": 40},
            "address": {"type": "string", "maxLength": 80},
        },
    },
    "PaymentMethod": {
        "type": "object",
        "required": ["type", "amount"],
        "properties": {
            "type": {
                "type": "string",
                "enum": ["AN_32_TOKEN", "LOYALTY_CARD", "CARD", "ACCOUNT", "REWARD"],
            },
            "name": {"type": "string"},
            "amount": {"$ref": "#/definitions/LedgerAmount"},
        },
    },
}


def _array_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/definitions/{name}"}}


_SEED_PROPERTIES: dict[str, dict[str, Any]] = {
    "ProvisionRequest": {
        "transactionLabels": _array_of("TransactionLabel"),
        "customer": {"$ref": "#/definitions/Customer"},
        "recipient": {"$ref": "#/definitions/Customer"},
        "paymentMethods": _array_of("PaymentMethod"),
    },
    "ProvisionResponse": {
        "transactionLabels": _array_of("TransactionLabel"),
        "recipient": {"$ref": "#/definitions/Customer"},
        "tenders": _array_of("Tender"),
    },
}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def swagger_path() -> Path:
    """Where the swagger is looked for: ``$VOUCHER_ELECTRUM_DIR``, else ``../shared/electrum``."""
    configured = os.environ.get("VOUCHER_ELECTRUM_DIR", "").strip()
    return (Path(configured).expanduser() if configured else DEFAULT_DIR) / FILE_NAME


def swagger_required() -> bool:
    """Whether a missing swagger fails the run instead of skipping: under CI, or on request."""
    return _truthy("CI") or _truthy("VOUCHER_REQUIRE_SWAGGER")


def _missing(reason: str) -> None:
    if swagger_required():
        pytest.fail(f"{reason}; CI needs it: set VOUCHER_ELECTRUM_DIR", pytrace=False)
    pytest.skip(f"{reason}; set VOUCHER_ELECTRUM_DIR to the directory holding {FILE_NAME}")


@cache
def _load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    document = yaml.safe_load(path.read_text())
    definitions: dict[str, Any] = copy.deepcopy(document["definitions"])
    definitions.update(copy.deepcopy(_SEED_DEFINITIONS))
    for name, extra in _SEED_PROPERTIES.items():
        definitions[name]["properties"].update(copy.deepcopy(extra))
    for schema in definitions.values():
        _tighten(schema)
    return definitions


def definitions() -> dict[str, Any]:
    """The swagger's definitions, tightened as the module docstring says."""
    path = swagger_path()
    loaded = _load(path)
    if loaded is None:
        _missing(f"Electrum's swagger file is not at {path}")
        raise AssertionError("unreachable")  # pytest.skip and pytest.fail raise
    return loaded


def _tighten(schema: dict[str, Any], *, close: bool = True) -> None:
    """Close objects to unlisted properties and anchor every pattern to the whole string.

    A base with a ``discriminator`` (``Pin``) and the parts of an ``allOf`` stay open: each
    lists only part of the properties its subtype carries.
    """
    if "pattern" in schema:
        schema["pattern"] = rf"^(?:{schema['pattern']})\Z"
    closable = close and "discriminator" not in schema
    if closable and schema.get("type") == "object" and "properties" in schema:
        schema.setdefault("additionalProperties", False)
    for child in schema.get("properties", {}).values():
        if isinstance(child, dict):
            _tighten(child)
    for part in schema.get("allOf", ()):
        if isinstance(part, dict):
            _tighten(part, close=False)
    items = schema.get("items")
    if isinstance(items, dict):
        _tighten(items)


def _format_checker() -> Any:
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time")
    def date_time(value: object) -> bool:
        return not isinstance(value, str) or _RFC3339.fullmatch(value) is not None

    @checker.checks("int32")
    def int32(value: object) -> bool:
        return not isinstance(value, int) or -(2**31) <= value < 2**31

    @checker.checks("int64")
    def int64(value: object) -> bool:
        return not isinstance(value, int) or -(2**63) <= value < 2**63

    return checker


def problems(definition: str, body: bytes | dict[str, Any]) -> list[str]:
    """What in ``body`` breaks ``definition``: one line per problem, none if it conforms."""
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions()}
    document = json.loads(body) if isinstance(body, bytes | str) else body
    validator = jsonschema.Draft4Validator(schema, format_checker=_format_checker())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]


def check(definition: str, body: bytes | dict[str, Any]) -> None:
    """Fail the test if ``body`` does not satisfy ``definition``."""
    found = problems(definition, body)
    if found:
        pytest.fail(f"{definition} body does not match the swagger:\n" + "\n".join(found))
