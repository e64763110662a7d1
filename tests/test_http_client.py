"""The HTTP transport against real sockets: a scripted switch and servers that misbehave.

Every test runs the blocking :class:`HttpTransport` and the asyncio
:class:`AsyncHttpTransport` alike (``kind``), except where a test is about one of them.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import shutil
import subprocess
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote_plus

import pytest
from http_faults import (
    RawServer,
    Reply,
    ScriptedSwitch,
    closed_port,
    drip_body,
    drip_headers,
    huge_body,
    reset_mid_body,
    silent,
)

from voucher_adapters.transports.exchange import Exchange, Operation
from voucher_adapters.transports.http import (
    AsyncHttpTransport,
    BasicAuth,
    HttpTransport,
    OAuth2ClientCredentials,
)
from voucher_core.messages import (
    BasicReversal,
    ErrorType,
    Institution,
    LedgerAmount,
    Merchant,
    MerchantName,
    Originator,
    PinClear,
    Product,
    ProvisionRequest,
    ReversalReason,
    Tender,
    TenderAdvice,
    TenderType,
    ThirdPartyIdentifier,
    Voucher,
)
from voucher_core.ports import LookupReply
from voucher_core.replies import (
    Acknowledged,
    Approved,
    Conflict,
    Declined,
    Rejected,
    RepeatLater,
    Unknown,
    UnknownReason,
)
from voucher_core.wire import to_json, to_wire

USER = "pos-user"
PASSWORD = "correct-horse-battery"
SECRET = "client-secret-7f3a9"
PIN = "80417325"
CODE = "5566778899001122"
WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
BASE = "/suv/v1"
PROVISION = f"{BASE}/vouchers"
CONFIRMATIONS = f"{BASE}/vouchers/confirmations"
REVERSALS = f"{BASE}/vouchers/reversals"
TOKEN = "/oauth/token"
KINDS = ["sync", "async"]


# -- messages -----------------------------------------------------------------------------------


def provision_request(*, pin: str | None = None) -> ProvisionRequest:
    return ProvisionRequest(
        id=str(uuid.uuid4()),
        time=WHEN,
        originator=Originator(
            institution=Institution(id="1234", name="Corner Shop Group"),
            terminal_id="TERM0001",
            merchant=Merchant(
                merchant_type="5411",
                merchant_id="123456789012345",
                merchant_name=MerchantName(
                    name="Corner Shop", city="Cape Town", region="WC", country="ZA"
                ),
            ),
        ),
        client=Institution(id=USER, name="POS vendor"),
        third_party_identifiers=(
            ThirdPartyIdentifier(institution_id=USER, transaction_identifier="till-42"),
        ),
        product=Product(product_id="AIRTIME10"),
        voucher=Voucher(pin=PinClear(pin=pin)) if pin is not None else None,
    )


def confirmation(request: ProvisionRequest) -> TenderAdvice:
    return TenderAdvice(
        id=str(uuid.uuid4()),
        request_id=request.id,
        time=WHEN,
        third_party_identifiers=request.third_party_identifiers,
        tenders=(
            Tender(amount=LedgerAmount(amount=1000, currency="710"), tender_type=TenderType.CASH),
        ),
    )


def reversal(request: ProvisionRequest) -> BasicReversal:
    return BasicReversal(
        id=str(uuid.uuid4()),
        request_id=request.id,
        time=WHEN,
        third_party_identifiers=request.third_party_identifiers,
        reversal_reason=ReversalReason.TIMEOUT,
    )


def issued(request: ProvisionRequest) -> bytes:
    """A ProvisionResponse for ``request``: the request echoed, with a voucher."""
    data = to_wire(request)
    data["voucher"] = {"code": CODE, "serialNumber": "SN-1"}
    return json.dumps(data).encode()


def error(error_type: str, message: str = "refused", *, with_id: bool = True) -> bytes:
    data: dict[str, Any] = {"errorType": error_type, "errorMessage": message}
    if with_id:
        data["id"] = str(uuid.uuid4())
    return json.dumps(data).encode()


def token_reply(token: str, expires_in: int = 100) -> Reply:
    body = {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}
    return Reply(200, json.dumps(body).encode())


# -- running either transport -----------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def __call__(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)


class Runner:
    """One face for both transports. The async one gets a fresh transport (and event loop)
    per call, since an httpx.AsyncClient belongs to the loop it was first used in."""

    def __init__(self, kind: str, base_url: str, **options: Any) -> None:
        self.kind = kind
        self.base_url = base_url
        self.options = options
        self.seen = Recorder()
        self.options.setdefault("observer", self.seen)
        self._sync = HttpTransport(base_url, **self.options) if kind == "sync" else None

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()

    def run(self, operation: str, message: Any, timeout: float = 5.0) -> Any:
        if self._sync is not None:
            return getattr(self._sync, operation)(message, timeout=timeout)

        async def once() -> Any:
            async with AsyncHttpTransport(self.base_url, **self.options) as transport:
                return await getattr(transport, operation)(message, timeout=timeout)

        return asyncio.run(once())

    def provision(self, request: ProvisionRequest, timeout: float = 5.0) -> Any:
        return self.run("provision", request, timeout)

    def retry(self, request: ProvisionRequest, timeout: float = 5.0) -> Any:
        return self.run("retry", request, timeout)

    def confirm(self, advice: TenderAdvice, timeout: float = 5.0) -> Any:
        return self.run("confirm", advice, timeout)

    def reverse(self, advice: BasicReversal, timeout: float = 5.0) -> Any:
        return self.run("reverse", advice, timeout)

    def lookup(self, provision_id: str, timeout: float = 5.0) -> Any:
        return self.run("lookup", provision_id, timeout)


@pytest.fixture(scope="module")
def served() -> Iterator[ScriptedSwitch]:
    with ScriptedSwitch() as switch:
        yield switch


@pytest.fixture
def switch(served: ScriptedSwitch) -> ScriptedSwitch:
    served.reset()
    return served


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runners() -> Iterator[list[Runner]]:
    made: list[Runner] = []
    yield made
    for runner in made:
        runner.close()


@pytest.fixture
def make(kind: str, runners: list[Runner]) -> Any:
    def build(base_url: str, **options: Any) -> Runner:
        runner = Runner(kind, base_url, **options)
        runners.append(runner)
        return runner

    return build


# -- where each operation goes ------------------------------------------------------------------


def test_each_operation_goes_to_its_path_with_the_message_as_json(
    switch: ScriptedSwitch, make: Any
) -> None:
    request = provision_request()
    advice, undo = confirmation(request), reversal(request)
    retry_path = f"{BASE}/vouchers/{request.id}/retry"
    switch.script(PROVISION, Reply(201, issued(request)))
    switch.script(retry_path, Reply(200, issued(request)))
    switch.script(CONFIRMATIONS, Reply(202, to_json(advice)))
    switch.script(REVERSALS, Reply(202, to_json(undo)))
    lookup_body = json.dumps({"voucher": {"code": CODE}}).encode()
    runner = make(switch.url, auth=BasicAuth(USER, PASSWORD))

    replies = [
        runner.provision(request),
        runner.retry(request),
        runner.confirm(advice),
        runner.reverse(undo),
    ]
    switch.script(PROVISION, Reply(200, lookup_body))
    looked = runner.lookup(request.id)

    assert [type(reply) for reply in replies] == [Approved, Approved, Acknowledged, Acknowledged]
    assert looked == LookupReply(200, lookup_body)
    seen = switch.seen
    assert [(s.method, s.path) for s in seen] == [
        ("POST", PROVISION),
        ("POST", retry_path),
        ("POST", CONFIRMATIONS),
        ("POST", REVERSALS),
        ("GET", PROVISION),
    ]
    assert seen[0].body == seen[1].body == to_json(request)
    assert seen[2].body == to_json(advice)
    assert seen[3].body == to_json(undo)
    assert seen[4].query == {"provisionRequestId": request.id}
    assert seen[4].body == b""
    for s in seen[:4]:
        assert s.headers["content-type"] == "application/json"
    for s in seen:
        assert s.headers["accept"] == "application/json"
    assert [(e.operation, e.message_id, e.request_id, e.status) for e in runner.seen.exchanges] == [
        (Operation.PROVISION, request.id, request.id, 201),
        (Operation.RETRY, request.id, request.id, 200),
        (Operation.CONFIRM, advice.id, request.id, 202),
        (Operation.REVERSE, undo.id, request.id, 202),
        (Operation.LOOKUP, request.id, request.id, 200),
    ]
    assert runner.seen.exchanges[0].body == to_json(request)
    assert runner.seen.exchanges[0].reply == replies[0]


def test_a_base_url_with_its_own_path_is_kept_and_a_trailing_slash_tolerated(
    switch: ScriptedSwitch, make: Any
) -> None:
    request = provision_request()
    switch.script("/gateway/suv/vouchers", Reply(201, issued(request)))

    reply = make(switch.url + "/gateway/suv/").provision(request)

    assert isinstance(reply, Approved)
    assert switch.paths() == ["/gateway/suv/vouchers"]


@pytest.mark.parametrize(
    ("url", "default"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/suv/v1"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/suv/v1"),
        ("https://switch.example/suv/v1/", "https://switch.example/suv/v1"),
        ("https://switch.example/other", "https://switch.example/other"),
    ],
)
def test_the_base_url_gets_the_default_path_when_it_has_none(url: str, default: str) -> None:
    with HttpTransport(url) as transport:
        assert transport.base_url == default
    assert AsyncHttpTransport(url).base_url == default


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("ftp://switch.example", "http:// or https://"),
        ("switch.example/suv/v1", "http:// or https://"),
        ("http://", "no host"),
        ("http://switch.example:99999", "invalid port"),
        ("http://switch.example/suv/v1?x=1", "query"),
        (f"https://{USER}:{PASSWORD}@switch.example", "credentials"),
    ],
)
def test_a_bad_base_url_is_a_programmer_error(url: str, complaint: str) -> None:
    for transport_class in (HttpTransport, AsyncHttpTransport):
        with pytest.raises(ValueError, match=complaint) as raised:
            transport_class(url)
        assert PASSWORD not in str(raised.value)


def test_nonsense_limits_and_credentials_are_programmer_errors() -> None:
    with pytest.raises(ValueError, match="max_body"):
        HttpTransport("http://127.0.0.1:1", max_body=0)
    with pytest.raises(ValueError, match="max_connections"):
        AsyncHttpTransport("http://127.0.0.1:1", max_connections=0)
    with pytest.raises(ValueError, match="':'"):
        BasicAuth("pos:user", PASSWORD)
    with pytest.raises(ValueError, match="token_url"):
        OAuth2ClientCredentials("token", USER, SECRET)


# -- authentication ---------------------------------------------------------------------------


def test_basic_auth_sends_the_client_id_as_username(switch: ScriptedSwitch, make: Any) -> None:
    request = provision_request()
    switch.script(PROVISION, Reply(201, issued(request)))

    make(switch.url, auth=BasicAuth(request.client.id, PASSWORD)).provision(request)

    header = switch.seen[0].headers["authorization"]
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{USER}:{PASSWORD}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bearer_token_is_fetched_cached_and_refreshed_before_it_expires(
    switch: ScriptedSwitch, make: Any
) -> None:
    clock = FakeClock()
    auth = OAuth2ClientCredentials(
        switch.url + TOKEN, USER, SECRET, scope="vouchers", refresh_margin=30, clock=clock
    )
    switch.script(TOKEN, token_reply("token-one", 100), token_reply("token-two", 100))
    switch.script(PROVISION, Reply(201, b"{}"))
    runner = make(switch.url, auth=auth)

    runner.provision(provision_request())
    clock.now += 69  # 31 s left: still good
    runner.provision(provision_request())
    clock.now += 1  # 30 s left: inside the margin, refresh
    runner.provision(provision_request())
    runner.provision(provision_request())

    assert switch.paths() == [TOKEN, PROVISION, PROVISION, TOKEN, PROVISION, PROVISION]
    bearers = [s.headers["authorization"] for s in switch.to(PROVISION)]
    assert bearers == ["Bearer token-one"] * 2 + ["Bearer token-two"] * 2
    grant = switch.to(TOKEN)[0]
    assert grant.headers["content-type"] == "application/x-www-form-urlencoded"
    # client_secret_basic: the client's credentials in HTTP Basic, not in the form.
    assert parse_qs(grant.body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["vouchers"],
    }
    pair = base64.b64decode(grant.headers["authorization"].removeprefix("Basic ")).decode()
    assert pair == f"{quote_plus(USER)}:{quote_plus(SECRET)}"


def test_client_secret_post_puts_the_credentials_in_the_form_instead(
    switch: ScriptedSwitch, make: Any
) -> None:
    auth = OAuth2ClientCredentials(
        switch.url + TOKEN, USER, SECRET, auth_method="client_secret_post"
    )
    switch.script(TOKEN, token_reply("token-one", 100))
    switch.script(PROVISION, Reply(201, b"{}"))
    make(switch.url, auth=auth).provision(provision_request())
    grant = switch.to(TOKEN)[0]
    assert "authorization" not in grant.headers
    assert parse_qs(grant.body.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": [USER],
        "client_secret": [SECRET],
    }


def test_an_unknown_client_authentication_method_is_refused() -> None:
    with pytest.raises(ValueError, match="auth_method"):
        OAuth2ClientCredentials("https://idp.example/token", USER, SECRET, auth_method="jwt")


@pytest.mark.parametrize(
    "token_answer",
    [
        Reply(500, b"", None),
        Reply(401, b'{"error":"invalid_client"}'),
        Reply(200, b'{"token_type":"Bearer","expires_in":100}'),  # no access_token
        Reply(200, b"<html>login</html>", "text/html"),
    ],
    ids=["500", "401", "no-token", "html"],
)
def test_a_failed_token_request_makes_the_call_a_no_response_and_sends_nothing(
    switch: ScriptedSwitch, make: Any, token_answer: Reply
) -> None:
    auth = OAuth2ClientCredentials(switch.url + TOKEN, USER, SECRET)
    switch.script(TOKEN, token_answer)
    request = provision_request()
    runner = make(switch.url, auth=auth)

    provision = runner.provision(request)
    advice = runner.confirm(confirmation(request))

    assert isinstance(provision, Unknown)
    assert provision.reason is UnknownReason.NO_RESPONSE
    assert "token" in provision.detail
    assert SECRET not in provision.detail
    assert isinstance(advice, RepeatLater)
    assert advice.status is None
    assert switch.paths() == [TOKEN, TOKEN]
    assert [e.status for e in runner.seen.exchanges] == [None, None]


def test_an_unreachable_token_endpoint_is_a_no_response(switch: ScriptedSwitch, make: Any) -> None:
    with closed_port() as nowhere:
        auth = OAuth2ClientCredentials(nowhere + TOKEN, USER, SECRET)
        reply = make(switch.url, auth=auth).provision(provision_request())

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert "could not connect" in reply.detail
    assert switch.seen == []


def test_callers_waiting_on_an_expired_token_share_one_refresh(switch: ScriptedSwitch) -> None:
    auth = OAuth2ClientCredentials(switch.url + TOKEN, USER, SECRET, clock=FakeClock())
    switch.script(TOKEN, token_reply("shared"))
    switch.script(PROVISION, Reply(201, b"{}"))

    with HttpTransport(switch.url, auth=auth) as transport, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: transport.provision(provision_request(), timeout=5.0), range(8)))

    async def sell() -> None:
        auth.invalidate()
        async with AsyncHttpTransport(switch.url, auth=auth) as transport:
            await asyncio.gather(
                *(transport.provision(provision_request(), timeout=5.0) for _ in range(8))
            )

    asyncio.run(sell())

    assert len(switch.to(TOKEN)) == 2  # one per burst
    assert len(switch.to(PROVISION)) == 16
    assert {s.headers["authorization"] for s in switch.to(PROVISION)} == {"Bearer shared"}


def test_a_call_with_no_time_left_sends_nothing(switch: ScriptedSwitch, make: Any) -> None:
    runner = make(switch.url)

    reply = runner.provision(provision_request(), timeout=0)
    advice = runner.confirm(confirmation(provision_request()), timeout=-1)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert isinstance(advice, RepeatLater)
    assert switch.seen == []


def test_a_401_to_a_bearer_token_discards_it(switch: ScriptedSwitch, make: Any) -> None:
    auth = OAuth2ClientCredentials(switch.url + TOKEN, USER, SECRET, clock=FakeClock())
    switch.script(TOKEN, token_reply("revoked"), token_reply("fresh"))
    switch.script(PROVISION, Reply(401, error("AUTHENTICATION_ERROR")), Reply(201, b"{}"))
    runner = make(switch.url, auth=auth)

    first = runner.provision(provision_request())
    runner.provision(provision_request())

    assert isinstance(first, Declined)
    assert [s.headers["authorization"] for s in switch.to(PROVISION)] == [
        "Bearer revoked",
        "Bearer fresh",
    ]


# -- classifying what the switch answered ---------------------------------------------------


def test_a_201_with_a_provision_response_is_approved(switch: ScriptedSwitch, make: Any) -> None:
    request = provision_request()
    switch.script(PROVISION, Reply(201, issued(request), "application/json; charset=utf-8"))

    reply = make(switch.url).provision(request)

    assert isinstance(reply, Approved)
    assert reply.status == 201
    assert reply.response.id == request.id
    assert reply.response.voucher.code == CODE


def test_a_gzip_reply_is_decoded(switch: ScriptedSwitch, make: Any) -> None:
    request = provision_request()
    packed = gzip.compress(issued(request))
    switch.script(PROVISION, Reply(201, packed, headers={"content-encoding": "gzip"}))

    reply = make(switch.url).provision(request)

    assert isinstance(reply, Approved)
    assert reply.response.voucher.code == CODE


@pytest.mark.parametrize(
    ("answer", "expected", "words"),
    [
        (Reply(400, error(ErrorType.FORMAT_ERROR)), Declined, "FORMAT_ERROR"),
        (Reply(404, error(ErrorType.UNABLE_TO_LOCATE_RECORD)), Declined, "UNABLE_TO_LOCATE"),
        (Reply(400, error("AUTHENTICATION_ERROR", with_id=False)), Declined, "AUTHENTICATION"),
        (Reply(503, error(ErrorType.UPSTREAM_UNAVAILABLE)), Unknown, "UPSTREAM_UNAVAILABLE"),
        (Reply(400, error(ErrorType.VOUCHER_STATUS_UNKNOWN)), Unknown, "VOUCHER_STATUS_UNKNOWN"),
        (Reply(500, b"", None), Unknown, "empty body"),
        (Reply(500, b"Internal Server Error", "text/plain"), Unknown, "not an ErrorDetail"),
        (Reply(502, b"<html>bad gateway</html>", "text/html"), Unknown, "HTTP 502"),
        (Reply(201, b"{not json"), Unknown, "not a ProvisionResponse"),
        (Reply(201, b'{"id": "x"}'), Unknown, "not a ProvisionResponse"),
        (Reply(302, b"", None, {"location": "/elsewhere"}), Unknown, "HTTP 302"),
    ],
    ids=[
        "400-declined",
        "404-declined",
        "error-without-id",
        "503-upstream",
        "400-status-unknown",
        "500-empty",
        "500-text",
        "502-html",
        "201-garbage",
        "201-wrong-shape",
        "302",
    ],
)
def test_a_provision_reply_is_classified_by_the_table(
    switch: ScriptedSwitch, make: Any, answer: Reply, expected: type[Any], words: str
) -> None:
    switch.script(PROVISION, answer)

    reply = make(switch.url).provision(provision_request())

    assert type(reply) is expected
    assert reply.status == answer.status
    assert words in reply.detail
    if isinstance(reply, Unknown):
        assert reply.reason is UnknownReason.NOT_FINAL


def test_an_error_detail_without_an_id_is_still_read(switch: ScriptedSwitch, make: Any) -> None:
    switch.script(PROVISION, Reply(404, error(ErrorType.UNABLE_TO_LOCATE_RECORD, with_id=False)))

    reply = make(switch.url).provision(provision_request())

    assert isinstance(reply, Declined)
    assert reply.error is not None
    assert reply.error.id is None
    assert reply.error.error_type is ErrorType.UNABLE_TO_LOCATE_RECORD


@pytest.mark.parametrize("content_type", ["text/html", "text/plain", None])
def test_a_2xx_that_is_not_labelled_json_is_unknown_even_with_a_valid_body(
    switch: ScriptedSwitch, make: Any, content_type: str | None
) -> None:
    request = provision_request()
    switch.script(PROVISION, Reply(201, issued(request), content_type))

    reply = make(switch.url).provision(request)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NOT_FINAL
    assert reply.status == 201
    assert "Content-Type" in reply.detail


@pytest.mark.parametrize(
    ("operation", "answer", "expected"),
    [
        ("confirm", Reply(202, b"{}"), Acknowledged),
        ("confirm", Reply(200, b"", None), Acknowledged),
        ("reverse", Reply(202, b"{}"), Acknowledged),
        ("reverse", Reply(404, error(ErrorType.UNABLE_TO_LOCATE_RECORD)), Acknowledged),
        ("confirm", Reply(400, error(ErrorType.VOUCHER_ALREADY_REVERSED)), Conflict),
        ("confirm", Reply(404, error(ErrorType.UNABLE_TO_LOCATE_RECORD)), Conflict),
        ("reverse", Reply(400, error(ErrorType.VOUCHER_ALREADY_CONFIRMED)), Conflict),
        ("confirm", Reply(400, error(ErrorType.FORMAT_ERROR)), Rejected),
        ("reverse", Reply(403, b"Forbidden", "text/plain"), Rejected),
        ("confirm", Reply(500, b"", None), RepeatLater),
        ("reverse", Reply(503, error(ErrorType.UPSTREAM_UNAVAILABLE)), RepeatLater),
        ("reverse", Reply(504, b"Gateway Timeout", "text/plain"), RepeatLater),
    ],
)
def test_an_advice_reply_is_classified_by_the_table(
    switch: ScriptedSwitch, make: Any, operation: str, answer: Reply, expected: type[Any]
) -> None:
    request = provision_request()
    advice = confirmation(request) if operation == "confirm" else reversal(request)
    switch.script(CONFIRMATIONS if operation == "confirm" else REVERSALS, answer)
    runner = make(switch.url)

    reply = runner.run(operation, advice)

    assert type(reply) is expected
    assert reply.status == answer.status
    assert runner.seen.exchanges[0].reply == reply
    assert runner.seen.exchanges[0].status == answer.status


# -- the network misbehaving --------------------------------------------------------------------


def test_a_refused_connection_is_no_response_for_every_operation(make: Any) -> None:
    request = provision_request()
    with closed_port() as nowhere:
        runner = make(nowhere)
        provision = runner.provision(request)
        retry = runner.retry(request)
        advice = runner.reverse(reversal(request))
        looked = runner.lookup(request.id)

    for reply in (provision, retry):
        assert isinstance(reply, Unknown)
        assert reply.reason is UnknownReason.NO_RESPONSE
        assert reply.status is None
        assert "could not connect" in reply.detail
    assert isinstance(advice, RepeatLater)
    assert advice.status is None
    assert looked.status is None
    assert "could not connect" in looked.detail
    assert [e.status for e in runner.seen.exchanges] == [None] * 4


def test_a_server_that_never_answers_is_no_response_at_the_timeout(make: Any) -> None:
    with RawServer(silent) as server:
        runner = make(server.url)
        started = time.monotonic()
        reply = runner.provision(provision_request(), timeout=0.5)
        elapsed = time.monotonic() - started
        advice = runner.confirm(confirmation(provision_request()), timeout=0.3)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert "within 0.5 s" in reply.detail
    assert 0.45 <= elapsed < 1.5
    assert isinstance(advice, RepeatLater)
    assert "within 0.3 s" in advice.detail


def test_a_body_dripped_a_byte_at_a_time_cannot_outlast_the_timeout(make: Any) -> None:
    with RawServer(drip_body(0.2)) as server:
        runner = make(server.url)
        started = time.monotonic()
        reply = runner.provision(provision_request(), timeout=1.0)
        elapsed = time.monotonic() - started

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert "within 1 s" in reply.detail
    assert 0.9 <= elapsed < 1.5, elapsed
    assert server.sent > 80  # the headers and a few bytes did arrive


def test_headers_dripped_a_byte_at_a_time_cannot_outlast_the_timeout(make: Any) -> None:
    with RawServer(drip_headers(0.05)) as server:
        runner = make(server.url)
        started = time.monotonic()
        reply = runner.provision(provision_request(), timeout=1.0)
        elapsed = time.monotonic() - started

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert 0.9 <= elapsed < 1.5, elapsed


def test_a_reset_in_the_middle_of_the_body_is_no_response(make: Any) -> None:
    with RawServer(reset_mid_body) as server:
        runner = make(server.url)
        provision = runner.provision(provision_request())
        advice = runner.confirm(confirmation(provision_request()))

    assert isinstance(provision, Unknown)
    assert provision.reason is UnknownReason.NO_RESPONSE
    assert provision.status is None
    assert isinstance(advice, RepeatLater)
    assert advice.status is None
    assert runner.seen.exchanges[0].status is None


FIFTY_MB = 50 * 1024 * 1024


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_huge_body_is_refused_at_max_body_without_buffering_it(make: Any, declared: bool) -> None:
    limit = 1024 * 1024
    with RawServer(huge_body(FIFTY_MB, declared=declared)) as server:
        runner = make(server.url, max_body=limit)
        tracemalloc.start()
        try:
            reply = runner.provision(provision_request(), timeout=10.0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        advice = runner.reverse(reversal(provision_request()), timeout=10.0)
        looked = runner.lookup(str(uuid.uuid4()), timeout=10.0)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert f"over the {limit}-byte limit" in reply.detail
    assert ("(declared)" in reply.detail) is declared
    assert peak < 4 * limit, peak
    assert server.sent < FIFTY_MB // 2
    assert isinstance(advice, RepeatLater)
    assert "limit" in advice.detail
    assert looked.status is None


def test_a_compressed_reply_that_inflates_past_max_body_is_refused(
    switch: ScriptedSwitch, make: Any
) -> None:
    bomb = gzip.compress(b" " * (8 * 1024 * 1024))
    switch.script(PROVISION, Reply(201, bomb, headers={"content-encoding": "gzip"}))

    reply = make(switch.url).provision(provision_request())

    assert len(bomb) < 100_000
    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NO_RESPONSE
    assert "decompressed" in reply.detail


# -- pooling ---------------------------------------------------------------------------------------


def test_the_sync_transport_reuses_one_connection(switch: ScriptedSwitch) -> None:
    switch.script(PROVISION, Reply(201, b"{}"))
    with HttpTransport(switch.url) as transport:
        for _ in range(3):
            transport.provision(provision_request(), timeout=5.0)

    ports = {s.client_port for s in switch.seen}
    assert len(switch.seen) == 3
    assert len(ports) == 1


def test_the_async_transport_reuses_one_connection_and_runs_calls_concurrently(
    switch: ScriptedSwitch,
) -> None:
    switch.script(PROVISION, Reply(201, b"{}"))

    async def sell() -> list[Any]:
        async with AsyncHttpTransport(switch.url, max_connections=4) as transport:
            first = await transport.provision(provision_request(), timeout=5.0)
            second = await transport.provision(provision_request(), timeout=5.0)
            many = await asyncio.gather(
                *(transport.provision(provision_request(), timeout=5.0) for _ in range(8))
            )
            return [first, second, *many]

    replies = asyncio.run(sell())

    assert len(replies) == 10
    assert all(isinstance(reply, Unknown) and reply.status == 201 for reply in replies)
    assert switch.seen[0].client_port == switch.seen[1].client_port
    assert len({s.client_port for s in switch.seen}) <= 4


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (needs the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not available")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def test_tls_is_verified_by_default_and_a_private_ca_can_be_trusted(
    certificate: tuple[str, str], make: Any
) -> None:
    request = provision_request()
    with ScriptedSwitch(tls=certificate) as server:
        server.script(PROVISION, Reply(201, issued(request)))
        untrusted = make(server.url).provision(request)
        refused = list(server.seen)
        trusted = make(server.url, verify=certificate[0]).provision(request)

    assert isinstance(untrusted, Unknown)
    assert untrusted.reason is UnknownReason.NO_RESPONSE
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    assert refused == []
    assert isinstance(trusted, Approved)
    assert trusted.response.voucher.code == CODE


def test_a_missing_ca_file_is_a_programmer_error(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="CA certificates"):
        HttpTransport("https://switch.example", verify=str(tmp_path / "missing.pem"))


# -- secrets ---------------------------------------------------------------------------------------


def test_reprs_hold_no_secret() -> None:
    basic = BasicAuth(USER, PASSWORD)
    oauth = OAuth2ClientCredentials("https://auth.example/token", USER, SECRET)
    with HttpTransport("https://switch.example", auth=basic) as transport:
        shown = " ".join(
            [
                repr(basic),
                str(basic),
                repr(oauth),
                str(oauth),
                repr(transport),
                str(AsyncHttpTransport("https://switch.example", auth=oauth)),
            ]
        )

    assert USER in shown
    assert "auth.example" in shown
    assert PASSWORD not in shown
    assert SECRET not in shown


def test_logs_and_details_hold_no_password_secret_token_or_pin(
    switch: ScriptedSwitch, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bearer = "tok-" + uuid.uuid4().hex
    request = provision_request(pin=PIN)
    switch.script(TOKEN, token_reply(bearer))
    switch.script(PROVISION, Reply(201, issued(request)))
    switch.script(CONFIRMATIONS, Reply(400, error(ErrorType.FORMAT_ERROR)))
    basic = make(switch.url, auth=BasicAuth(USER, PASSWORD))
    oauth = make(switch.url, auth=OAuth2ClientCredentials(switch.url + TOKEN, USER, SECRET))
    caplog.set_level(logging.DEBUG)

    replies = [
        basic.provision(request),
        oauth.provision(request),
        oauth.confirm(confirmation(request)),
    ]
    switch.script(TOKEN, Reply(500, b"", None))
    with closed_port() as nowhere:
        fresh = OAuth2ClientCredentials(switch.url + TOKEN, USER, SECRET)
        replies.append(make(switch.url, auth=fresh).provision(request))
        replies.append(make(nowhere, auth=BasicAuth(USER, PASSWORD)).provision(request))

    assert PIN.encode() in switch.seen[0].body  # the PIN was on the wire ...
    assert switch.to(PROVISION)[1].headers["authorization"] == f"Bearer {bearer}"
    assert "provisionVoucher -> 201" in caplog.text  # ... and the log has lines to check
    assert "voucher_core.http" in {record.name for record in caplog.records}
    credentials = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    details = " ".join(repr(reply) for reply in replies)
    for secret in (PASSWORD, SECRET, bearer, PIN, CODE, credentials):
        assert secret not in caplog.text
        assert secret not in details
