"""The simulator as a drop-in for Electrum's Java test server, in both directions.

Every answer here is also checked against the swagger by the watch in ``tests/conftest.py``.

Lenient where that server is lenient (a number for a string, a missing ``tenders`` or
``thirdPartyIdentifiers``), strict where it is strict (values outside the swagger's enums and
patterns are a ``FORMAT_ERROR``, so no 2xx ever echoes one), with records per username and
password, a ``Location`` on every 201, and the reversal named as ``originalId`` when a
provision arrives after it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from serving import PASSWORD, Pos, confirmation_body, error, provision_body, reversal_body

from voucher_adapters.simulator import Operation, SimReply, SwitchSimulator
from voucher_adapters.simulator.server import RunningServer, create_app

USER = "pos-fidelity"


def body_of(reply: SimReply) -> dict[str, Any]:
    data = json.loads(reply.body)
    assert isinstance(data, dict)
    return data


def send(
    sim: SwitchSimulator,
    operation: Operation,
    body: dict[str, Any],
    *,
    password: str | None = "pw-1",
    path_id: str | None = None,
) -> SimReply:
    return sim.handle(
        operation,
        json.dumps(body).encode(),
        username=USER,
        password=password,
        provision_id=path_id,
    )


def format_errors(reply: SimReply) -> list[dict[str, str]]:
    assert reply.status == 400, reply.body
    detail = body_of(reply)
    assert detail["errorType"] == "FORMAT_ERROR"
    problems: list[dict[str, str]] = detail["detailMessage"]["formatErrors"]
    return problems


@pytest.fixture
def sim() -> SwitchSimulator:
    return SwitchSimulator(seed=11)


# -- lenient where the Java server is lenient -------------------------------------------------


def test_a_currency_sent_as_a_number_is_read_as_its_digits_and_echoed_as_a_string(
    sim: SwitchSimulator,
) -> None:
    body = provision_body(USER)
    body["amounts"] = {"requestAmount": {"amount": 1000, "currency": 710}}
    reply = send(sim, Operation.PROVISION, body)
    assert reply.status == 201, reply.body
    echoed = body_of(reply)
    assert echoed["amounts"]["requestAmount"] == {"amount": 1000, "currency": "710"}


@pytest.mark.parametrize("currency", [7100, 7.5, True, [710]])
def test_a_number_that_breaks_the_pattern_or_a_non_number_is_still_a_format_error(
    sim: SwitchSimulator, currency: object
) -> None:
    body = provision_body(USER)
    body["amounts"] = {"requestAmount": {"amount": 1000, "currency": currency}}
    (problem,) = format_errors(send(sim, Operation.PROVISION, body))
    assert problem["field"] == "amounts.requestAmount.currency"


def test_a_request_without_third_party_identifiers_is_provisioned(sim: SwitchSimulator) -> None:
    body = provision_body(USER)
    del body["thirdPartyIdentifiers"]
    reply = send(sim, Operation.PROVISION, body)
    assert reply.status == 201, reply.body
    identifiers = body_of(reply)["thirdPartyIdentifiers"]
    assert len(identifiers) == 2  # the switch's and the provider's, nothing of the request's


def test_a_confirmation_without_tenders_for_an_unknown_provision_is_unable_to_locate(
    sim: SwitchSimulator,
) -> None:
    advice = confirmation_body(provision_body(USER))
    del advice["tenders"]
    reply = send(sim, Operation.CONFIRM, advice)
    assert reply.status == 404
    detail = body_of(reply)
    assert detail["errorType"] == "UNABLE_TO_LOCATE_RECORD"
    assert (detail["id"], detail["originalId"]) == (advice["id"], advice["requestId"])


def test_a_confirmation_without_tenders_for_a_known_provision_is_accepted(
    sim: SwitchSimulator,
) -> None:
    request = provision_body(USER)
    assert send(sim, Operation.PROVISION, request).status == 201
    advice = confirmation_body(request)
    del advice["tenders"]
    reply = send(sim, Operation.CONFIRM, advice)
    assert reply.status == 202
    echoed = body_of(reply)
    assert echoed["tenders"] == []


# -- strict where Electrum is strict: no 2xx breaks the swagger ------------------------------


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("tranType", "BOGUS", "tranType"),
        ("srcAccType", "CRYPTO_WALLET", "srcAccType"),
        ("product", {"productId": "AIRTIME10", "barcode": "not a barcode"}, "product.barcode"),
        ("time", "yesterday", "time"),
    ],
)
def test_a_provision_with_a_value_outside_the_swagger_is_a_format_error(
    sim: SwitchSimulator, field: str, value: object, path: str
) -> None:
    body = {**provision_body(USER), field: value}
    problems = format_errors(send(sim, Operation.PROVISION, body))
    assert [problem["field"] for problem in problems] == [path]
    assert sim.ledger() == []


@pytest.mark.parametrize(
    ("tender", "path"),
    [
        ({"tenderType": "BITCOIN"}, "tenders[0].tenderType"),
        ({"tenderType": "cash"}, "tenders[0].tenderType"),
        ({"cardNumber": "abc"}, "tenders[0].cardNumber"),
        ({"accountType": "GIFT_CARD"}, "tenders[0].accountType"),
    ],
)
def test_a_confirmation_with_a_tender_outside_the_swagger_is_a_format_error(
    sim: SwitchSimulator, tender: dict[str, str], path: str
) -> None:
    request = provision_body(USER)
    assert send(sim, Operation.PROVISION, request).status == 201
    advice = confirmation_body(request)
    advice["tenders"][0].update(tender)
    problems = format_errors(send(sim, Operation.CONFIRM, advice))
    assert [problem["field"] for problem in problems] == [path]
    assert "abc" not in json.dumps(problems)  # a card number is never quoted back


def test_a_reversal_for_another_reason_is_a_format_error(sim: SwitchSimulator) -> None:
    request = provision_body(USER)
    assert send(sim, Operation.PROVISION, request).status == 201
    advice = {**reversal_body(request), "reversalReason": "OTHER"}
    problems = format_errors(send(sim, Operation.REVERSE, advice))
    assert [problem["field"] for problem in problems] == ["reversalReason"]


# -- records per username and password --------------------------------------------------------


def test_an_advice_sent_with_another_password_does_not_find_the_provision(
    sim: SwitchSimulator,
) -> None:
    request = provision_body(USER)
    assert send(sim, Operation.PROVISION, request, password="pw-1").status == 201
    other = send(sim, Operation.CONFIRM, confirmation_body(request), password="pw-2")
    assert other.status == 404
    assert body_of(other)["errorType"] == "UNABLE_TO_LOCATE_RECORD"
    assert send(sim, Operation.CONFIRM, confirmation_body(request), password="pw-1").status == 202


def test_the_same_id_under_another_password_is_a_new_provision(sim: SwitchSimulator) -> None:
    request = provision_body(USER)
    assert send(sim, Operation.PROVISION, request, password="pw-1").status == 201
    assert send(sim, Operation.PROVISION, request, password="pw-2").status == 201
    again = send(sim, Operation.PROVISION, request, password="pw-1")
    assert body_of(again)["errorType"] == "DUPLICATE_RECORD"


def test_a_reset_with_one_password_keeps_the_other_passwords_records(sim: SwitchSimulator) -> None:
    request = provision_body(USER)
    send(sim, Operation.PROVISION, request, password="pw-1")
    send(sim, Operation.PROVISION, request, password="pw-2")
    reset = {"userDataWillBeLost": "TRUE", "resetUserData": "TRUE"}
    assert send(sim, Operation.RESET, reset, password="pw-1").status == 200
    assert send(sim, Operation.PROVISION, request, password="pw-1").status == 201
    assert body_of(send(sim, Operation.PROVISION, request, password="pw-2"))["errorType"] == (
        "DUPLICATE_RECORD"
    )
    sim.reset(USER)  # every password's records
    assert send(sim, Operation.PROVISION, request, password="pw-2").status == 201


# -- Location and originalId ------------------------------------------------------------------


def test_a_201_names_the_new_voucher_in_location_and_a_retry_does_not(
    sim: SwitchSimulator,
) -> None:
    request = provision_body(USER)
    created = send(sim, Operation.PROVISION, request)
    assert created.location == f"/suv/v1/vouchers/{request['id']}"
    repeated = send(sim, Operation.RETRY, request, path_id=request["id"])
    assert (repeated.status, repeated.location) == (200, None)


def test_a_late_provision_names_the_reversal_that_came_first_as_original_id(
    sim: SwitchSimulator,
) -> None:
    request = provision_body(USER)
    early = reversal_body(request)
    assert send(sim, Operation.REVERSE, early).status == 404
    late = send(sim, Operation.PROVISION, request)
    assert late.status == 400
    detail = body_of(late)
    assert detail["errorType"] == "VOUCHER_ALREADY_REVERSED"
    assert (detail["id"], detail["originalId"]) == (request["id"], early["id"])


# -- over HTTP, as a POS written against the Java server sees it ------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with RunningServer(create_app(SwitchSimulator(seed=12), pump_interval=0)) as running:
        yield running


def test_over_http_a_201_carries_location_and_records_are_kept_per_password(
    server: RunningServer,
) -> None:
    user = f"pos-{uuid.uuid4().hex[:12]}"
    pos = Pos(server.url, user)
    request = provision_body(user)
    created = pos.provision(request)
    assert created.status_code == 201
    assert created.headers["location"] == f"/suv/v1/vouchers/{request['id']}"
    other = Pos(server.url, user)
    other.http.auth = (user, PASSWORD + "-other")
    error(other.confirm(confirmation_body(request)), 404, "UNABLE_TO_LOCATE_RECORD")
    other.close()
    assert pos.confirm(confirmation_body(request)).status_code == 202
    pos.close()


def test_over_http_a_number_for_the_currency_is_read_and_a_bogus_tender_refused(
    server: RunningServer,
) -> None:
    user = f"pos-{uuid.uuid4().hex[:12]}"
    pos = Pos(server.url, user)
    request = provision_body(user)
    request["amounts"] = {"requestAmount": {"amount": 1000, "currency": 710}}
    created = pos.provision(request)
    assert created.status_code == 201, created.text
    assert created.json()["amounts"]["requestAmount"]["currency"] == "710"
    advice = confirmation_body(request)
    advice["tenders"][0]["tenderType"] = "BITCOIN"
    error(pos.confirm(advice), 400, "FORMAT_ERROR")
    pos.close()


def test_a_string_where_a_number_belongs_is_not_coerced(sim: SwitchSimulator) -> None:
    body = provision_body(USER)
    body["amounts"] = {"requestAmount": {"amount": "1000", "currency": "710"}}
    (problem,) = format_errors(send(sim, Operation.PROVISION, body))
    assert problem["field"] == "amounts.requestAmount.amount"
