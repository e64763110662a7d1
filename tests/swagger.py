"""Check JSON bodies against Electrum's published SUV definitions (swagger 1.14.0).

The swagger file lives in ``../shared/electrum/`` beside the project; where it is absent the
tests that need it skip with a clear reason. Definitions are checked strictly: an object may
carry only the properties its definition lists, as Electrum's servers reject unknown fields.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SWAGGER = Path(__file__).resolve().parents[2] / "shared" / "electrum" / "suv-swagger-1.14.0.yaml"


@cache
def _definitions() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    if not SWAGGER.exists():
        pytest.skip(f"Electrum's swagger file is not at {SWAGGER} (../shared is absent)")
    document = yaml.safe_load(SWAGGER.read_text())
    definitions: dict[str, Any] = copy.deepcopy(document["definitions"])
    for schema in definitions.values():
        _close(schema)
    return definitions


def _close(schema: dict[str, Any]) -> None:
    """Forbid properties a definition does not list (swagger leaves that open)."""
    if schema.get("type") == "object" and "properties" in schema:
        schema.setdefault("additionalProperties", False)
    for child in schema.get("properties", {}).values():
        if isinstance(child, dict):
            _close(child)
    items = schema.get("items")
    if isinstance(items, dict):
        _close(items)


def check(definition: str, body: bytes | dict[str, Any]) -> None:
    """Fail the test if ``body`` does not satisfy ``definition``."""
    jsonschema = pytest.importorskip("jsonschema")
    definitions = _definitions()
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    document = json.loads(body) if isinstance(body, bytes) else body
    errors = sorted(
        jsonschema.Draft4Validator(schema).iter_errors(document), key=lambda e: list(e.path)
    )
    if errors:
        lines = [f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]
        pytest.fail(f"{definition} body does not match the swagger:\n" + "\n".join(lines))


OPERATION_BODIES = {
    "provisionVoucher": "ProvisionRequest",
    "retryProvisionVoucher": "ProvisionRequest",
    "confirmVoucher": "TenderAdvice",
    "reverseVoucher": "BasicReversal",
}
