"""A point of sale talking to the HTTP simulator with hand-built JSON, for tests/test_server.py.

Messages are plain dicts (what a client written against Electrum's test server would send),
built from the demo request so that they start out valid.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from voucher_adapters.demo import demo_request
from voucher_core.wire import to_wire

PASSWORD = "agreed-secret"
WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
RESET = {"userDataWillBeLost": "TRUE", "resetUserData": "TRUE"}


def new_id() -> str:
    return str(uuid.uuid4())


def provision_body(user: str, *, product_id: str = "AIRTIME10") -> dict[str, Any]:
    return to_wire(demo_request(id=new_id(), time=WHEN, client_id=user, product_id=product_id))


def confirmation_body(provision: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id(),
        "requestId": provision["id"],
        "time": "2024-05-01T09:31:00.000Z",
        "thirdPartyIdentifiers": provision["thirdPartyIdentifiers"],
        "tenders": [{"tenderType": "CASH", "amount": {"amount": 1000, "currency": "710"}}],
    }


def reversal_body(provision: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id(),
        "requestId": provision["id"],
        "time": "2024-05-01T09:31:00.000Z",
        "thirdPartyIdentifiers": provision["thirdPartyIdentifiers"],
        "reversalReason": "CANCELLED",
    }


class Pos:
    """One set of Basic credentials against the server: SUV calls by name, raw replies."""

    def __init__(self, url: str, user: str, *, timeout: float = 5.0) -> None:
        self.user = user
        self.http = httpx.Client(base_url=url, auth=(user, PASSWORD), timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def post(self, path: str, body: Any, **options: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **options.pop("headers", {})}
        return self.http.post(path, content=content, headers=headers, **options)

    def provision(self, body: dict[str, Any], **options: Any) -> httpx.Response:
        return self.post("/vouchers", body, **options)

    def retry(self, body: dict[str, Any], path_id: str | None = None) -> httpx.Response:
        return self.post(f"/vouchers/{path_id or body['id']}/retry", body)

    def confirm(self, body: dict[str, Any]) -> httpx.Response:
        return self.post("/vouchers/confirmations", body)

    def reverse(self, body: dict[str, Any]) -> httpx.Response:
        return self.post("/vouchers/reversals", body)

    def lookup(self, provision_id: str) -> httpx.Response:
        return self.http.get("/vouchers", params={"provisionRequestId": provision_id})

    def reset(self) -> httpx.Response:
        return self.post("/testServerAdmin/reset", RESET)


def error(reply: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    """The reply's ErrorDetail, after checking its status, type and that it hides internals."""
    assert "Traceback" not in reply.text
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    detail = reply.json()
    assert isinstance(detail, dict)
    assert detail["errorType"] == error_type, detail
    assert len(detail["errorMessage"]) <= 80
    return detail


def format_messages(reply: httpx.Response) -> list[str]:
    detail = error(reply, 400, "FORMAT_ERROR")
    return [problem["msg"] for problem in detail["detailMessage"]["formatErrors"]]


def format_fields(reply: httpx.Response) -> list[str]:
    detail = error(reply, 400, "FORMAT_ERROR")
    return [problem["field"] for problem in detail["detailMessage"]["formatErrors"]]
