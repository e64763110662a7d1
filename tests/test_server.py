"""The switch simulator served over real HTTP: uvicorn on a loopback port, httpx as the client.

A point of sale written against Electrum's SUV test server must run against this server
unchanged, so every test here speaks plain JSON over a real socket and checks what comes back
on the wire, faults included: a delayed answer must really time the client out, a lost one
must really drop the connection.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import (
    PASSWORD,
    Pos,
    confirmation_body,
    error,
    format_fields,
    format_messages,
    new_id,
    provision_body,
    reversal_body,
)

from voucher_adapters.simulator import UUID_MSG, LedgerEntry, Provider, SwitchSimulator
from voucher_adapters.simulator.server import RunningServer, create_app
from voucher_core.policy import DUAL, NO_RETRIES, SINGLE

PROVIDERS = [
    Provider("airtimeco", DUAL, frozenset({"AIRTIME10"})),
    Provider("netcare", NO_RETRIES, frozenset({"NETCARE1"})),
    Provider("lightco", SINGLE, frozenset({"POWER20"})),
]


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """One server for the module, forwarding to providers only when asked (``/pump``)."""
    with RunningServer(create_app(SwitchSimulator(PROVIDERS, seed=3), pump_interval=0)) as s:
        yield s


@pytest.fixture
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/testServerAdmin", timeout=5.0) as client:
        yield client
        client.post("/heal")  # a test's unused scripted faults must not leak into the next


@pytest.fixture
def pos(server: RunningServer, admin: httpx.Client) -> Iterator[Pos]:
    """A point of sale with credentials of its own, so tests never share records."""
    client = Pos(server.url, f"pos-{uuid.uuid4().hex[:12]}")
    yield client
    client.close()


def ledger(admin: httpx.Client) -> dict[str, dict[str, Any]]:
    reply = admin.get("/ledger")
    assert reply.status_code == 200
    return {entry["provisionId"]: entry for entry in reply.json()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- provision ----------------------------------------------------------------------------------


def test_a_provision_is_answered_201_with_a_voucher_and_the_switch_and_provider_references(
    pos: Pos,
) -> None:
    body = provision_body(pos.user)
    reply = pos.provision(body)

    assert reply.status_code == 201
    assert reply.headers["content-type"] == "application/json"
    answer = reply.json()
    assert answer["id"] == body["id"]
    assert answer["originator"] == body["originator"]
    assert answer["voucher"]["code"]
    assert answer["voucher"]["expiryDate"]
    assert answer["settlementEntity"] == {"id": "airtimeco", "name": "airtimeco"}
    references = answer["thirdPartyIdentifiers"]
    assert references[0] == body["thirdPartyIdentifiers"][0]
    assert [ref["institutionId"] for ref in references[1:]] == ["electrum-simulator", "airtimeco"]


def test_every_path_is_also_answered_with_a_trailing_slash(pos: Pos) -> None:
    body = provision_body(pos.user)
    assert pos.post("/vouchers/", body).status_code == 201
    assert pos.post(f"/vouchers/{body['id']}/retry/", body).status_code == 200
    assert pos.http.get("/vouchers/", params={"provisionRequestId": body["id"]}).status_code == 200
    assert pos.post("/vouchers/confirmations/", confirmation_body(body)).status_code == 202
    other = provision_body(pos.user)
    pos.provision(other)
    assert pos.post("/vouchers/reversals/", reversal_body(other)).status_code == 202
    reset = {"userDataWillBeLost": "TRUE", "resetUserData": "TRUE"}
    assert pos.post("/testServerAdmin/reset/", reset).status_code == 200


def test_the_same_id_again_is_a_duplicate_carrying_the_original_voucher(pos: Pos) -> None:
    body = provision_body(pos.user)
    voucher = pos.provision(body).json()["voucher"]

    detail = error(pos.provision(body), 400, "DUPLICATE_RECORD")
    assert detail["id"] == body["id"]
    assert "originalId" not in detail
    assert detail["detailMessage"]["voucher"] == voucher


def test_a_body_is_read_as_json_whatever_its_content_type_says(pos: Pos) -> None:
    plain = pos.post("/vouchers", provision_body(pos.user), headers={"Content-Type": "text/plain"})
    assert plain.status_code == 201
    content = json.dumps(provision_body(pos.user)).encode()
    bare = pos.http.post("/vouchers", content=content)  # httpx sends no Content-Type here
    assert "content-type" not in bare.request.headers
    assert bare.status_code == 201


# -- credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer abc.def",
        "Basic",
        "Basic not*base64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"user:").decode(),
        "Basic " + base64.b64encode(b":password").decode(),
    ],
)
def test_missing_or_malformed_credentials_are_answered_401_with_a_challenge(
    server: RunningServer, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = httpx.post(
        f"{server.url}/vouchers",
        content=json.dumps(provision_body("someone")).encode(),
        headers=headers,
        timeout=5.0,
    )
    error(reply, 401, "AUTHENTICATION_ERROR")
    assert reply.headers["www-authenticate"] == 'Basic realm="suv"'


def test_a_username_that_is_not_the_client_id_is_an_authentication_error(pos: Pos) -> None:
    body = provision_body("somebody-else")
    detail = error(pos.provision(body), 400, "AUTHENTICATION_ERROR")
    assert detail["id"] == body["id"]


def test_records_are_kept_per_credentials(server: RunningServer, pos: Pos) -> None:
    body = provision_body(pos.user)
    pos.provision(body)
    stranger = Pos(server.url, "a-stranger")
    try:
        error(stranger.lookup(body["id"]), 404, "UNABLE_TO_LOCATE_RECORD")
    finally:
        stranger.close()
    assert pos.lookup(body["id"]).status_code == 200


# -- validation ---------------------------------------------------------------------------------


def test_a_missing_field_is_a_format_error_naming_its_path(pos: Pos) -> None:
    body = provision_body(pos.user)
    del body["originator"]["merchant"]["merchantId"]
    assert format_messages(pos.provision(body)) == [
        "originator.merchant.merchantId may not be null"
    ]


def test_a_bad_id_is_a_format_error_about_the_uuid_format(pos: Pos) -> None:
    body = provision_body(pos.user)
    body["id"] = "not-a-uuid"
    reply = pos.provision(body)
    assert format_messages(reply) == [UUID_MSG]
    assert reply.json()["id"] == "not-a-uuid"


def test_an_unknown_field_is_a_format_error(pos: Pos) -> None:
    body = provision_body(pos.user)
    body["surprise"] = True
    assert format_fields(pos.provision(body)) == ["surprise"]


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_no_json_object_is_a_format_error(pos: Pos, content: bytes) -> None:
    assert format_fields(pos.post("/vouchers", content)) == ["body"]


def test_an_oversized_body_is_a_format_error(pos: Pos) -> None:
    body = provision_body(pos.user)
    body["padding"] = "x" * 70_000
    reply = pos.provision(body)
    assert format_messages(reply) == ["request body is larger than 65536 bytes"]
    assert reply.headers["connection"] == "close"


def test_an_oversized_chunked_body_is_refused_once_it_passes_the_limit(pos: Pos) -> None:
    def endless() -> Iterator[bytes]:
        for _ in range(200):  # 2 MB, never read in full
            yield b"x" * 10_000

    reply = pos.http.post("/vouchers", content=endless())
    assert "content-length" not in reply.request.headers
    assert format_messages(reply) == ["request body is larger than 65536 bytes"]


def raw_exchange(server: RunningServer, user: str, head: str, body: bytes) -> bytes:
    """Send bytes no well-behaved client would send; read until the server closes or stalls."""
    token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    request = (
        f"POST /suv/v1/vouchers HTTP/1.1\r\nHost: test\r\nAuthorization: Basic {token}\r\n"
        f"Content-Type: application/json\r\nConnection: close\r\n{head}\r\n"
    ).encode()
    received = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as sock:
        sock.sendall(request + body)
        try:
            while chunk := sock.recv(65_536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def test_a_content_length_over_the_limit_is_refused_without_reading_the_body(
    server: RunningServer, pos: Pos
) -> None:
    # The header claims a gigabyte; only a few bytes follow. Waiting for the rest would hang.
    received = raw_exchange(server, pos.user, "Content-Length: 1000000000\r\n", b"{}")
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["detailMessage"]["formatErrors"][0]["msg"] == (
        "request body is larger than 65536 bytes"
    )


def test_a_content_length_smaller_than_the_body_reads_only_what_it_declares(
    server: RunningServer, pos: Pos
) -> None:
    # 100 kB follow a header that claims 20 bytes: the server reads 20, which are no JSON.
    received = raw_exchange(server, pos.user, "Content-Length: 20\r\n", b"{" + b" " * 100_000)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    detail = json.loads(rest[: rest.index(b"}]}}") + 4])
    assert detail["detailMessage"]["formatErrors"][0]["msg"] == "request body is not valid JSON"


# -- advices, retries, lookups, reset -----------------------------------------------------------


def test_a_confirmation_after_a_reversal_is_voucher_already_reversed(pos: Pos) -> None:
    body = provision_body(pos.user)
    pos.provision(body)
    reversal = reversal_body(body)
    assert pos.reverse(reversal).json() == reversal
    assert pos.reverse(reversal).status_code == 202  # a repeat is acknowledged again

    confirmation = confirmation_body(body)
    detail = error(pos.confirm(confirmation), 400, "VOUCHER_ALREADY_REVERSED")
    assert (detail["id"], detail["originalId"]) == (confirmation["id"], body["id"])


def test_a_provision_after_its_reversal_arrived_first_is_voucher_already_reversed(
    pos: Pos,
) -> None:
    body = provision_body(pos.user)
    error(pos.reverse(reversal_body(body)), 404, "UNABLE_TO_LOCATE_RECORD")
    error(pos.provision(body), 400, "VOUCHER_ALREADY_REVERSED")


def test_a_reversal_after_a_confirmation_is_voucher_already_confirmed(pos: Pos) -> None:
    body = provision_body(pos.user)
    pos.provision(body)
    confirmation = confirmation_body(body)
    assert pos.confirm(confirmation).status_code == 202
    assert pos.confirm(confirmation).status_code == 202

    reversal = reversal_body(body)
    detail = error(pos.reverse(reversal), 400, "VOUCHER_ALREADY_CONFIRMED")
    assert (detail["id"], detail["originalId"]) == (reversal["id"], body["id"])


def test_advices_and_lookups_for_an_unknown_provision_are_unable_to_locate_record(
    pos: Pos,
) -> None:
    body = provision_body(pos.user)  # never sent
    detail = error(pos.confirm(confirmation_body(body)), 404, "UNABLE_TO_LOCATE_RECORD")
    assert detail["originalId"] == body["id"]
    error(pos.lookup(body["id"]), 404, "UNABLE_TO_LOCATE_RECORD")


def test_a_retry_returns_the_voucher_already_issued_or_issues_one(pos: Pos) -> None:
    landed = provision_body(pos.user)
    voucher = pos.provision(landed).json()["voucher"]
    again = pos.retry(landed)
    assert again.status_code == 200
    assert again.json()["voucher"] == voucher

    never_arrived = provision_body(pos.user)
    fresh = pos.retry(never_arrived)
    assert fresh.status_code == 200
    assert fresh.json()["voucher"]["code"]


def test_a_retry_whose_path_id_differs_from_the_body_is_a_format_error(pos: Pos) -> None:
    body = provision_body(pos.user)
    assert format_fields(pos.retry(body, path_id=new_id())) == ["id"]
    assert format_messages(pos.retry(body, path_id="not-a-uuid")) == [UUID_MSG]


def test_a_retry_for_a_provider_without_retries_is_declined(pos: Pos) -> None:
    body = provision_body(pos.user, product_id="NETCARE1")
    error(pos.retry(body), 400, "TRANSACTION_NOT_SUPPORTED")


def test_a_lookup_finds_the_voucher_issued(pos: Pos) -> None:
    body = provision_body(pos.user)
    voucher = pos.provision(body).json()["voucher"]
    found = pos.lookup(body["id"])
    assert found.status_code == 200
    assert found.json()["voucher"] == voucher
    assert format_fields(pos.http.get("/vouchers")) == ["provisionRequestId"]


def test_reset_clears_the_callers_records(pos: Pos) -> None:
    body = provision_body(pos.user)
    pos.provision(body)
    reply = pos.reset()
    assert reply.status_code == 200
    error(pos.lookup(body["id"]), 404, "UNABLE_TO_LOCATE_RECORD")
    assert pos.provision(body).status_code == 201  # the id is new again
    assert format_fields(pos.post("/testServerAdmin/reset", {"please": "yes"})) == ["body"]


# -- routing and crashes ------------------------------------------------------------------------


def test_an_unknown_path_is_404_and_a_wrong_method_405_both_as_error_details(pos: Pos) -> None:
    error(pos.post("/redemptions", {}), 404, "FUNCTION_NOT_SUPPORTED")
    error(pos.http.get("/"), 404, "FUNCTION_NOT_SUPPORTED")
    wrong = pos.http.delete("/vouchers")
    error(wrong, 405, "FUNCTION_NOT_SUPPORTED")
    assert set(wrong.headers["allow"].split(", ")) >= {"GET", "POST"}
    error(pos.http.get("/vouchers/confirmations"), 405, "FUNCTION_NOT_SUPPORTED")


class BrokenSwitch(SwitchSimulator):
    def ledger(self) -> list[LedgerEntry]:
        raise RuntimeError("secret internals: /etc/passwd")


def test_an_unexpected_exception_is_a_bare_500_general_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RunningServer(create_app(BrokenSwitch())) as server:
        reply = httpx.get(f"{server.url}/testServerAdmin/ledger", timeout=5.0)
    detail = error(reply, 500, "GENERAL_ERROR")
    assert "secret" not in reply.text
    assert set(detail) == {"errorType", "errorMessage"}
    assert "secret internals" in caplog.text  # ... but the server's log has it


# -- faults -------------------------------------------------------------------------------------


def test_a_delayed_answer_times_the_client_out_though_the_voucher_was_issued(
    pos: Pos, admin: httpx.Client
) -> None:
    scripted = admin.post(
        "/faults", json={"operation": "provisionVoucher", "kind": "delay", "delay": 1.5}
    )
    assert scripted.status_code == 201
    assert scripted.json() == {
        "operation": "provisionVoucher",
        "kind": "delay",
        "times": 1,
        "delay": 1.5,
        "scripted": 1,
    }
    body = provision_body(pos.user)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        pos.provision(body, timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert ledger(admin)[body["id"]] == {
        "provisionId": body["id"],
        "provider": "airtimeco",
        "state": "issued",
    }
    error(pos.provision(body), 400, "DUPLICATE_RECORD")


def test_a_delay_shorter_than_the_timeout_only_slows_the_answer(
    pos: Pos, admin: httpx.Client
) -> None:
    admin.post("/faults", json={"operation": "lookupVoucher", "kind": "delay", "delay": 0.3})
    body = provision_body(pos.user)
    pos.provision(body)
    started = time.monotonic()
    assert pos.lookup(body["id"]).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_a_lost_answer_drops_the_connection_after_the_switch_processed_it(
    pos: Pos, admin: httpx.Client
) -> None:
    body = provision_body(pos.user)
    admin.post(
        "/faults", json={"operation": "provisionVoucher", "kind": "lost", "provisionId": body["id"]}
    )
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        pos.provision(body)
    assert ledger(admin)[body["id"]]["state"] == "issued"


def test_a_dropped_request_loses_the_connection_and_nothing_is_issued(
    pos: Pos, admin: httpx.Client
) -> None:
    body = provision_body(pos.user)
    admin.post("/faults", json={"operation": "PROVISIONVOUCHER", "kind": "DROPPED"})
    with pytest.raises(httpx.TransportError):
        pos.provision(body)
    assert body["id"] not in ledger(admin)
    assert pos.provision(body).status_code == 201  # the connection pool recovers


def test_a_scripted_fault_can_target_one_product(pos: Pos, admin: httpx.Client) -> None:
    admin.post(
        "/faults",
        json={"operation": "provisionVoucher", "kind": "unavailable", "productId": "POWER20"},
    )
    assert pos.provision(provision_body(pos.user)).status_code == 201
    body = provision_body(pos.user, product_id="POWER20")
    detail = error(pos.provision(body), 503, "UPSTREAM_UNAVAILABLE")
    assert detail["id"] == body["id"]
    assert admin.get("/faults").json() == {"scripted": 0}


def test_a_server_error_fault_is_a_bare_500_without_a_traceback(
    pos: Pos, admin: httpx.Client
) -> None:
    admin.post("/faults", json={"operation": "confirmVoucher", "kind": "server_error", "times": 2})
    body = provision_body(pos.user)
    pos.provision(body)
    for _ in range(2):
        reply = pos.confirm(confirmation_body(body))
        assert reply.status_code == 500
        assert "Traceback" not in reply.text
    assert pos.confirm(confirmation_body(body)).status_code == 202


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"kind": "delay"}, "operation"),
        ({"operation": "provisionVoucher"}, "kind"),
        ({"operation": "explodeVoucher", "kind": "delay"}, "operation"),
        ({"operation": "provisionVoucher", "kind": "explode"}, "kind"),
        ({"operation": "provisionVoucher", "kind": "delay", "times": 0}, "times"),
        ({"operation": "provisionVoucher", "kind": "delay", "times": True}, "times"),
        ({"operation": "provisionVoucher", "kind": "delay", "delay": -1}, "delay"),
        ({"operation": "provisionVoucher", "kind": "delay", "productId": 7}, "productId"),
        ({"operation": "provisionVoucher", "kind": "delay", "sometimes": 1}, "sometimes"),
    ],
)
def test_a_bad_fault_is_refused_naming_the_field(
    admin: httpx.Client, fault: dict[str, Any], field: str
) -> None:
    assert format_fields(admin.post("/faults", json=fault)) == [field]
    assert admin.get("/faults").json() == {"scripted": 0}


def test_admin_bodies_that_are_no_json_object_are_refused(admin: httpx.Client) -> None:
    assert format_fields(admin.post("/faults", content=b"{")) == ["body"]
    assert format_fields(admin.post("/faults/random", content=b"[]")) == ["body"]


def test_random_faults_strike_from_a_seed_until_healed(pos: Pos, admin: httpx.Client) -> None:
    setting = {"seed": 5, "rate": 1.0, "kinds": ["unavailable"], "operations": ["lookupVoucher"]}
    reply = admin.post("/faults/random", json=setting)
    assert reply.status_code == 200
    assert reply.json() == setting
    body = provision_body(pos.user)
    assert pos.provision(body).status_code == 201  # provisions are not among the operations
    for _ in range(3):
        error(pos.lookup(body["id"]), 503, "UPSTREAM_UNAVAILABLE")

    assert admin.post("/heal").json() == {"scripted": 0}
    assert pos.lookup(body["id"]).status_code == 200


def test_random_faults_at_a_partial_rate_repeat_exactly_for_a_seed(
    server: RunningServer, admin: httpx.Client
) -> None:
    def statuses(user: str) -> list[int]:
        admin.post("/faults/random", json={"seed": 11, "rate": 0.5, "kinds": ["decline"]})
        client = Pos(server.url, user)
        try:
            return [client.provision(provision_body(user)).status_code for _ in range(12)]
        finally:
            client.close()

    first, second = statuses("seeded-a"), statuses("seeded-b")
    assert first == second
    assert set(first) == {201, 400}


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ({"rate": 0.5}, "seed"),
        ({"seed": 1}, "rate"),
        ({"seed": 1, "rate": 1.5}, "rate"),
        ({"seed": 1, "rate": 0.5, "kinds": ["meteor"]}, "kinds"),
        ({"seed": 1, "rate": 0.5, "kinds": []}, "kinds"),
        ({"seed": 1, "rate": 0.5, "operations": "provisionVoucher"}, "operations"),
        ({"seed": 1, "rate": 0.5, "providerDownRate": -0.1}, "providerDownRate"),
        ({"seed": "one", "rate": 0.5}, "seed"),
    ],
)
def test_bad_random_faults_are_refused_naming_the_field(
    admin: httpx.Client, setting: dict[str, Any], field: str
) -> None:
    assert format_fields(admin.post("/faults/random", json=setting)) == [field]


# -- providers, ledger, pump --------------------------------------------------------------------


def test_the_providers_are_listed_with_their_profiles(admin: httpx.Client) -> None:
    reply = admin.get("/providers")
    assert reply.status_code == 200
    assert reply.json() == [
        {
            "name": "airtimeco",
            "messaging": "dual",
            "retriesSupported": True,
            "advicesSupported": True,
            "products": ["AIRTIME10"],
            "default": True,
        },
        {
            "name": "netcare",
            "messaging": "dual",
            "retriesSupported": False,
            "advicesSupported": True,
            "products": ["NETCARE1"],
            "default": False,
        },
        {
            "name": "lightco",
            "messaging": "single",
            "retriesSupported": True,
            "advicesSupported": True,
            "products": ["POWER20"],
            "default": False,
        },
    ]


def test_providers_can_be_replaced_and_their_profiles_take_effect() -> None:
    switch = SwitchSimulator(PROVIDERS, seed=3)
    with RunningServer(create_app(switch, pump_interval=0)) as server:
        admin = httpx.Client(base_url=f"{server.url}/testServerAdmin", timeout=5.0)
        pos = Pos(server.url, "pos-providers")
        try:
            wanted = {
                "providers": [
                    {
                        "name": "stellr",
                        "messaging": "dual",
                        "retriesSupported": False,
                        "advicesSupported": False,
                        "products": ["GIFT50"],
                    },
                    {"name": "airtimeco", "messaging": "single", "products": ["AIRTIME10"]},
                ],
                "default": "airtimeco",
            }
            reply = admin.put("/providers", json=wanted)
            assert reply.status_code == 200, reply.text
            listed = {p["name"]: p for p in reply.json()}
            assert set(listed) == {"stellr", "airtimeco"}
            assert listed["airtimeco"]["default"] is True
            assert listed["stellr"]["retriesSupported"] is False
            assert admin.get("/providers").json() == reply.json()
            # The new profile is live: a retry for stellr's product is hard-declined.
            body = provision_body(pos.user, product_id="GIFT50")
            retried = pos.http.post(f"/vouchers/{body['id']}/retry", json=body)
            assert retried.status_code == 400
            # A provider with history cannot vanish.
            pos.provision(provision_body(pos.user, product_id="AIRTIME10"))
            keep_out = {"providers": [{"name": "newco", "products": ["X1"]}]}
            assert format_fields(admin.put("/providers", json=keep_out)) == ["providers"]
        finally:
            admin.close()
            pos.close()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"providers": []}, ["providers"]),
        ({"providers": [{"messaging": "dual"}]}, ["providers[0].name"]),
        ({"providers": [{"name": "a", "messaging": "triple"}]}, ["providers[0].messaging"]),
        (
            {"providers": [{"name": "a", "retriesSupported": "no"}]},
            ["providers[0].retriesSupported"],
        ),
        ({"providers": [{"name": "a", "products": "A1"}]}, ["providers[0].products"]),
        ({"providers": [{"name": "a", "colour": "red"}]}, ["providers[0].colour"]),
        ({"providers": [{"name": "a"}, {"name": "a"}]}, ["providers"]),
        ({"providers": [{"name": "a"}], "default": "b"}, ["default"]),
    ],
)
def test_bad_provider_settings_are_refused_naming_the_field(
    admin: httpx.Client, body: dict[str, Any], fields: list[str]
) -> None:
    assert format_fields(admin.put("/providers", json=body)) == fields


def test_the_ledger_lists_each_voucher_with_its_provider_and_state(
    pos: Pos, admin: httpx.Client
) -> None:
    body = provision_body(pos.user, product_id="POWER20")
    pos.provision(body)
    entries = admin.get("/ledger").json()
    assert isinstance(entries, list)
    for entry in entries:
        assert set(entry) == {"provisionId", "provider", "state"}
        assert entry["state"] in {"issued", "confirmed", "reversed"}
    assert {"provisionId": body["id"], "provider": "lightco", "state": "issued"} in entries


def test_advices_reach_the_provider_when_the_switch_pumps(pos: Pos, admin: httpx.Client) -> None:
    admin.post("/pump")  # whatever earlier tests left queued
    confirmed, reversed_ = provision_body(pos.user), provision_body(pos.user)
    pos.provision(confirmed)
    pos.provision(reversed_)
    pos.confirm(confirmation_body(confirmed))
    pos.reverse(reversal_body(reversed_))
    assert ledger(admin)[confirmed["id"]]["state"] == "issued"  # acknowledged, not forwarded

    assert admin.post("/pump", json={"maxRounds": 1}).json() == {"delivered": 2, "pending": 0}
    books = ledger(admin)
    assert books[confirmed["id"]]["state"] == "confirmed"
    assert books[reversed_["id"]]["state"] == "reversed"
    assert admin.post("/pump/").json() == {"delivered": 0, "pending": 0}
    assert format_fields(admin.post("/pump", json={"maxRounds": 0})) == ["maxRounds"]


def test_a_provider_leg_that_fails_keeps_the_advice_queued(pos: Pos, admin: httpx.Client) -> None:
    admin.post("/pump")
    body = provision_body(pos.user)
    pos.provision(body)
    pos.confirm(confirmation_body(body))
    admin.post("/faults/random", json={"seed": 1, "rate": 0.0, "providerDownRate": 1.0})
    assert admin.post("/pump", json={"maxRounds": 3}).json() == {"delivered": 0, "pending": 1}
    admin.post("/heal")
    assert admin.post("/pump").json() == {"delivered": 1, "pending": 0}


def test_the_background_pump_forwards_advices_on_its_own() -> None:
    with RunningServer(create_app(pump_interval=0.02)) as server:
        user = "pumped"
        client = Pos(server.url, user)
        try:
            body = provision_body(user)
            client.provision(body)
            assert client.confirm(confirmation_body(body)).status_code == 202
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                entries = httpx.get(f"{server.url}/testServerAdmin/ledger", timeout=5.0).json()
                if entries[0]["state"] == "confirmed":
                    break
                time.sleep(0.02)
            assert entries == [
                {"provisionId": body["id"], "provider": "provider", "state": "confirmed"}
            ]
        finally:
            client.close()


# -- running the server -------------------------------------------------------------------------


def test_stopping_the_server_does_not_wait_out_a_delayed_answer() -> None:
    with RunningServer(create_app()) as server:
        httpx.post(
            f"{server.url}/testServerAdmin/faults",
            json={"operation": "lookupVoucher", "kind": "delay", "delay": 60},
            timeout=5.0,
        )
        with httpx.Client(auth=("waiting", PASSWORD), timeout=10.0) as client:
            outcome: list[object] = []

            def wait_for_lookup() -> None:
                try:
                    outcome.append(client.get(f"{server.url}/vouchers?provisionRequestId=x"))
                except httpx.HTTPError as exc:
                    outcome.append(exc)

            waiting = threading.Thread(target=wait_for_lookup)
            waiting.start()
            time.sleep(0.3)
            started = time.monotonic()
            server.__exit__(None, None, None)
            waiting.join(5.0)
    assert time.monotonic() - started < 3.0
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.TransportError)


def test_serve_stops_on_ctrl_c_without_a_traceback() -> None:
    port = free_port()
    program = f"from voucher_adapters.simulator.server import serve; serve(port={port})"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(
        [sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                reply = httpx.get(f"http://127.0.0.1:{port}/suv/v1/testServerAdmin/faults")
                assert reply.json() == {"scripted": 0}
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=10.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert b"Traceback" not in errors
