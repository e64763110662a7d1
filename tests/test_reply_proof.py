"""Money at the transport's edge (issue 12, cases 1, 2, 6 and 7), with real parts.

A whole sale runs through the composition root's driver and a real transport: the sync and
async HTTP transports over loopback to a scripted switch (:class:`ScriptedSwitch`) or to the
simulator's own HTTP server, and the in-process transport onto the simulator. Each test says
how the sale ends and what went on the wire, and that nothing raised.

1. An approval needs proof: a 2xx that does not carry a voucher code for this sale's id (and
   this client and amount) is unknown: retried, then reversed, never approved; in dual
   messaging no confirmation is ever sent.
2. ``DUPLICATE_RECORD`` is unknown: the retry endpoint returns what was issued.
6. An exchange observer that raises is logged; the call returns its reply.
7. A reply nested a thousand deep is unreadable, never a ``RecursionError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest
from http_faults import Reply, ScriptedSwitch

from voucher_adapters.bootstrap import Settings, build, build_async_in_memory
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import cash, demo_request
from voucher_adapters.simulator import Operation, Provider, SwitchSimulator
from voucher_adapters.simulator.reply import SimReply
from voucher_adapters.simulator.server import RunningServer, create_app
from voucher_adapters.transports.exchange import Exchange
from voucher_adapters.transports.http import (
    AsyncHttpTransport,
    BasicAuth,
    HttpTransport,
    OAuth2ClientCredentials,
)
from voucher_adapters.transports.in_process import AsyncInMemoryTransport, InMemoryTransport
from voucher_core import DriverSettings, Outcome, State, Transaction
from voucher_core.messages import (
    BasicReversal,
    ProvisionRequest,
    ReversalReason,
    TenderAdvice,
    ThirdPartyIdentifier,
)
from voucher_core.policy import DUAL, NO_RETRIES, SINGLE, ProviderProfile
from voucher_core.ports import LookupReply
from voucher_core.replies import (
    Acknowledged,
    AdviceKind,
    Approved,
    Conflict,
    Rejected,
    RepeatLater,
    Unknown,
    UnknownReason,
    classify_advice,
    classify_provision,
    parse_error_detail,
)
from voucher_core.wire import MAX_DEPTH, WireFormatError, decode_json, from_json, to_wire

USER = "pos-user"
PASSWORD = "correct-horse-battery"
CODE = "5566778899001122"
WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
BASE = "/suv/v1"
PROVISION = f"{BASE}/vouchers"
CONFIRMATIONS = f"{BASE}/vouchers/confirmations"
REVERSALS = f"{BASE}/vouchers/reversals"
TOKEN = "/oauth/token"
KINDS = ["sync", "async"]
UNPROVEN = "proves no approval"

# A thousand arrays deep: 2 KB, far under any body cap, deeper than the parser's stack.
DEEP = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000
DEEP_ERROR = (
    b'{"errorType":"UPSTREAM_UNAVAILABLE","errorMessage":"x","detailMessage":' + DEEP_OBJECT + b"}"
)


def sale_request(*, client_id: str = USER, product_id: str = "AIRTIME10") -> ProvisionRequest:
    """A demo sale of 1000 (710) for ``client_id``, with a fresh id."""
    return demo_request(id=str(uuid.uuid4()), time=WHEN, client_id=client_id, product_id=product_id)


def retry_path(request: ProvisionRequest) -> str:
    return f"{BASE}/vouchers/{request.id}/retry"


def issued(request: ProvisionRequest) -> dict[str, Any]:
    """What a switch that approved ``request`` answers: the request echoed, with a voucher."""
    data = to_wire(request)
    data["voucher"] = {"code": CODE, "serialNumber": "SN-1"}
    return data


def _drop_voucher(data: dict[str, Any]) -> None:
    del data["voucher"]


def _empty_voucher(data: dict[str, Any]) -> None:
    data["voucher"] = {}


def _empty_code(data: dict[str, Any]) -> None:
    data["voucher"]["code"] = ""


def _blank_code(data: dict[str, Any]) -> None:
    data["voucher"]["code"] = "   "


def _another_sale(data: dict[str, Any]) -> None:
    data["id"] = str(uuid.uuid4())


def _another_client(data: dict[str, Any]) -> None:
    data["client"] = {"id": "someone-else", "name": "Another vendor"}


def _another_amount(data: dict[str, Any]) -> None:
    data["amounts"]["requestAmount"] = {"amount": 100, "currency": "710"}


def _another_approved_amount(data: dict[str, Any]) -> None:
    data["amounts"]["approvedAmount"] = {"amount": 500, "currency": "710"}


# (what is wrong with the approval, what the reply's detail says about it)
BAD_APPROVALS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no-voucher": (_drop_voucher, "voucher may not be null"),
    "empty-voucher": (_empty_voucher, "its voucher has no code"),
    "empty-code": (_empty_code, "its voucher has no code"),
    "blank-code": (_blank_code, "its voucher has no code"),
    "another-sale": (_another_sale, "it is the response to provision"),
    "another-client": (_another_client, "it names client 'someone-else'"),
    "another-amount": (_another_amount, "its requestAmount is 100 (710)"),
    "another-approved-amount": (_another_approved_amount, "its approvedAmount is 500 (710)"),
}


def bad_approval(request: ProvisionRequest, name: str) -> bytes:
    data = issued(request)
    BAD_APPROVALS[name][0](data)
    return json.dumps(data).encode()


# -- the core's classifier: the table, pure -----------------------------------------------------


def test_a_2xx_with_a_voucher_code_for_this_sale_is_approved() -> None:
    request = sale_request()

    reply = classify_provision(201, json.dumps(issued(request)).encode(), request)

    assert isinstance(reply, Approved)
    assert reply.response.id == request.id
    assert reply.response.voucher.code == CODE


@pytest.mark.parametrize("name", BAD_APPROVALS)
@pytest.mark.parametrize("status", [200, 201, 202])
def test_a_2xx_that_proves_no_approval_of_this_sale_is_unknown(name: str, status: int) -> None:
    request = sale_request()

    reply = classify_provision(status, bad_approval(request, name), request)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NOT_FINAL  # reversed as RESPONSE_NOT_FINAL
    assert reply.status == status
    assert BAD_APPROVALS[name][1] in reply.detail
    assert CODE not in reply.detail


def test_the_proof_is_judged_against_the_request_not_the_reply_alone() -> None:
    mine, other = sale_request(), sale_request()
    body = json.dumps(issued(other)).encode()  # a perfect approval, of another sale

    assert isinstance(classify_provision(201, body, other), Approved)
    reply = classify_provision(201, body, mine)
    assert isinstance(reply, Unknown)
    assert f"{UNPROVEN}: it is the response to provision {other.id}, not to {mine.id}" in (
        reply.detail
    )


def test_an_approval_that_names_no_amount_needs_none() -> None:
    request = sale_request()
    data = issued(request)
    del data["amounts"]

    assert isinstance(classify_provision(201, json.dumps(data).encode(), request), Approved)


@pytest.mark.parametrize("status", [400, 409])
def test_a_duplicate_record_is_unknown_not_a_decline(status: int) -> None:
    request = sale_request()
    body = json.dumps(
        {
            "id": request.id,
            "errorType": "DUPLICATE_RECORD",
            "errorMessage": "A provision with this id already exists",
            "detailMessage": {"voucher": {"code": CODE}},
        }
    ).encode()

    reply = classify_provision(status, body, request)

    assert isinstance(reply, Unknown)
    assert reply.reason is UnknownReason.NOT_FINAL
    assert reply.error is not None and reply.error.error_type == "DUPLICATE_RECORD"
    assert "DUPLICATE_RECORD" in reply.detail and "may already hold a voucher" in reply.detail
    assert CODE not in reply.detail


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, DEEP_ERROR], ids=["array", "object", "error"])
@pytest.mark.parametrize("status", [201, 400, 404, 500, 503])
def test_no_body_however_deep_makes_a_classifier_raise(body: bytes, status: int) -> None:
    request = sale_request()

    provision = classify_provision(status, body, request)
    advices = [classify_advice(kind, status, body) for kind in AdviceKind]

    # What cannot be read is read as no body at all: classified by the status alone, and a
    # 4xx without a readable ErrorDetail proves no decline.
    assert parse_error_detail(body) is None
    assert type(provision) is type(classify_provision(status, b"", request))
    assert isinstance(provision, Unknown)
    assert (provision.status, provision.error) == (status, None)
    for advice, advice_kind in zip(advices, AdviceKind, strict=True):
        assert type(advice) is type(classify_advice(advice_kind, status, b""))


def test_decode_json_bounds_the_depth_and_never_raises_recursion_error() -> None:
    at_limit = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    past_limit = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    many_flat = "[" + ",".join(["[]"] * 5000) + "]"  # many brackets, two deep
    in_strings = json.dumps({"text": "[" * 5000 + "{" * 5000, "n": [1, [2]]})

    assert decode_json(at_limit.encode()) is not None
    assert len(decode_json(many_flat)) == 5000
    assert decode_json(in_strings.encode("utf-16"))["n"] == [1, [2]]
    for hostile in (past_limit, DEEP, DEEP_OBJECT, b"[" * 200_000, b'["' + b'\\"' * 50_000):
        with pytest.raises(ValueError):
            decode_json(hostile)
    with pytest.raises(WireFormatError, match="nested deeper than"):
        from_json(ProvisionRequest, DEEP)


# -- a whole sale over real HTTP, sync and async --------------------------------------------------


@attrs.define
class Sale:
    tx: Transaction
    exchanges: list[Exchange]


def sell(
    kind: str,
    url: str,
    request: ProvisionRequest,
    *,
    profile: ProviderProfile,
    tenders: bool,
    auth: BasicAuth | OAuth2ClientCredentials | None = None,
    observer: Callable[[Exchange], None] | None = None,
) -> Sale:
    """One sale through the composition root's driver, over the HTTP transport of ``kind``."""
    exchanges: list[Exchange] = []

    def seen(exchange: Exchange) -> None:
        exchanges.append(exchange)
        if observer is not None:
            observer(exchange)

    settings = Settings(
        url=url,
        auth=auth if auth is not None else BasicAuth(request.client.id, PASSWORD),
        clock=SimulatedClock(),
        exchange_observer=seen,
        driver=DriverSettings(profile=profile),
    )
    given = cash(1000) if tenders else None
    if kind == "sync":
        with build(settings) as app:
            return Sale(app.driver.sell(request, tenders=given), exchanges)

    async def run() -> Transaction:
        app = build_async_in_memory(settings)
        try:
            return await app.driver.sell(request, tenders=given)
        finally:
            await app.aclose()

    return Sale(asyncio.run(run()), exchanges)


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


MESSAGING = {"single": (SINGLE, False), "dual-tenders-up-front": (DUAL, True)}


@pytest.mark.parametrize("messaging", MESSAGING)
@pytest.mark.parametrize("name", BAD_APPROVALS)
def test_an_approval_without_proof_is_retried_then_reversed_never_approved(
    switch: ScriptedSwitch, kind: str, name: str, messaging: str
) -> None:
    request = sale_request()
    body = bad_approval(request, name)
    switch.script(PROVISION, Reply(201, body))
    switch.script(retry_path(request), Reply(200, body))
    switch.script(REVERSALS, Reply(202, b"{}"))
    switch.script(CONFIRMATIONS, Reply(202, b"{}"))
    profile, tenders = MESSAGING[messaging]

    sale = sell(kind, switch.url, request, profile=profile, tenders=tenders)

    assert sale.tx.state is State.DECLINED
    assert sale.tx.outcome is Outcome.DECLINED
    assert sale.tx.response is None
    assert switch.paths() == [PROVISION, *[retry_path(request)] * 3, REVERSALS]
    assert switch.to(CONFIRMATIONS) == []  # never confirmed, even with tenders up front
    reversal = json.loads(switch.to(REVERSALS)[0].body)
    assert reversal["requestId"] == request.id
    assert reversal["reversalReason"] == ReversalReason.RESPONSE_NOT_FINAL
    replies = [exchange.reply for exchange in sale.exchanges]
    assert [type(reply) for reply in replies] == [Unknown] * 4 + [Acknowledged]
    for reply in replies[:4]:
        assert isinstance(reply, Unknown)
        assert BAD_APPROVALS[name][1] in reply.detail  # the timeline says why


@pytest.mark.parametrize(
    "answer",
    [
        Reply(403, b"Forbidden", "text/plain"),
        Reply(404, b"<html>no such page</html>", "text/html"),
        Reply(400, b""),
    ],
    ids=["403-text", "404-html", "400-empty"],
)
def test_a_4xx_without_an_error_detail_proves_no_decline_and_the_sale_is_reversed(
    switch: ScriptedSwitch, kind: str, answer: Reply
) -> None:
    request = sale_request()
    switch.script(PROVISION, answer)
    switch.script(retry_path(request), answer)
    switch.script(REVERSALS, Reply(202, b"{}"))

    sale = sell(kind, switch.url, request, profile=DUAL, tenders=True)

    # Not let go as a decline: a voucher may stand behind a page nobody can read.
    assert sale.tx.state is State.DECLINED and sale.tx.declined is None
    assert switch.paths() == [PROVISION, *[retry_path(request)] * 3, REVERSALS]
    assert switch.to(CONFIRMATIONS) == []


def test_an_unproven_first_answer_then_a_proven_retry_is_approved(
    switch: ScriptedSwitch, kind: str
) -> None:
    request = sale_request()
    switch.script(PROVISION, Reply(201, bad_approval(request, "empty-code")))
    switch.script(retry_path(request), Reply(200, json.dumps(issued(request)).encode()))
    switch.script(CONFIRMATIONS, Reply(202, b"{}"))

    sale = sell(kind, switch.url, request, profile=DUAL, tenders=True)

    assert sale.tx.state is State.DONE
    assert sale.tx.response is not None and sale.tx.response.voucher.code == CODE
    assert switch.paths() == [PROVISION, retry_path(request), CONFIRMATIONS]


def duplicate_record(request: ProvisionRequest) -> bytes:
    return json.dumps(
        {
            "id": request.id,
            "errorType": "DUPLICATE_RECORD",
            "errorMessage": "A provision with this id already exists",
            "detailMessage": {"voucher": {"code": CODE}},
        }
    ).encode()


def test_a_duplicate_record_is_retried_and_the_retry_returns_the_voucher(
    switch: ScriptedSwitch, kind: str
) -> None:
    request = sale_request()
    switch.script(PROVISION, Reply(400, duplicate_record(request)))
    switch.script(retry_path(request), Reply(200, json.dumps(issued(request)).encode()))
    switch.script(CONFIRMATIONS, Reply(202, b"{}"))

    sale = sell(kind, switch.url, request, profile=DUAL, tenders=True)

    assert sale.tx.state is State.DONE
    assert sale.tx.outcome is Outcome.APPROVED
    assert sale.tx.response is not None and sale.tx.response.voucher.code == CODE
    assert switch.paths() == [PROVISION, retry_path(request), CONFIRMATIONS]
    first = sale.exchanges[0].reply
    assert isinstance(first, Unknown) and "DUPLICATE_RECORD" in first.detail


@pytest.mark.parametrize(
    "answer",
    [
        Reply(503, DEEP),
        Reply(500, DEEP_OBJECT),
        Reply(503, DEEP_ERROR),
        Reply(201, DEEP),
    ],
    ids=["503-array", "500-object", "503-error-detail", "201-array"],
)
def test_a_reply_nested_a_thousand_deep_is_unknown_and_the_sale_ends(
    switch: ScriptedSwitch, kind: str, answer: Reply
) -> None:
    request = sale_request()
    switch.script(PROVISION, answer)
    switch.script(retry_path(request), answer)
    switch.script(REVERSALS, Reply(503, DEEP), Reply(202, b"{}"))

    sale = sell(kind, switch.url, request, profile=DUAL, tenders=True)

    assert sale.tx.state is State.REVERSING  # the reversal is queued, to be repeated
    assert sale.tx.outcome is Outcome.DECLINED
    assert switch.paths() == [PROVISION, *[retry_path(request)] * 3, REVERSALS]
    replies = [exchange.reply for exchange in sale.exchanges]
    assert [type(reply) for reply in replies] == [Unknown] * 4 + [RepeatLater]


# -- the transports alone: every operation, and the token answer ---------------------------------


class Runner:
    """One face for both HTTP transports; the async one gets a fresh loop per call."""

    def __init__(self, kind: str, url: str, **options: Any) -> None:
        self.kind, self.url, self.options = kind, url, options

    def run(self, operation: str, message: Any) -> Any:
        if self.kind == "sync":
            with HttpTransport(self.url, **self.options) as transport:
                return getattr(transport, operation)(message, timeout=5.0)

        async def once() -> Any:
            async with AsyncHttpTransport(self.url, **self.options) as transport:
                return await getattr(transport, operation)(message, timeout=5.0)

        return asyncio.run(once())


def confirmation(request: ProvisionRequest) -> TenderAdvice:
    return TenderAdvice(
        id=str(uuid.uuid4()),
        request_id=request.id,
        time=WHEN,
        third_party_identifiers=request.third_party_identifiers,
        tenders=cash(1000),
    )


def reversal(request: ProvisionRequest) -> BasicReversal:
    return BasicReversal(
        id=str(uuid.uuid4()),
        request_id=request.id,
        time=WHEN,
        third_party_identifiers=request.third_party_identifiers,
        reversal_reason=ReversalReason.TIMEOUT,
    )


@pytest.mark.parametrize("status", [201, 400, 404, 500, 503])
def test_no_operation_raises_on_a_deep_reply(
    switch: ScriptedSwitch, kind: str, status: int
) -> None:
    request = sale_request()
    for path in (PROVISION, retry_path(request), CONFIRMATIONS, REVERSALS):
        switch.script(path, Reply(status, DEEP))
    runner = Runner(kind, switch.url)

    provision = runner.run("provision", request)
    retry = runner.run("retry", request)
    confirmed = runner.run("confirm", confirmation(request))
    reversed_ = runner.run("reverse", reversal(request))
    looked = runner.run("lookup", request.id)

    for reply in (provision, retry):
        assert type(reply) is Unknown
        assert reply.status == status
    # classified by the status alone, as if the body were empty
    expected = {
        201: (Acknowledged, Acknowledged),
        400: (Rejected, Rejected),
        404: (Conflict, Rejected),  # a 404 to a confirmation: nothing there to confirm
        500: (RepeatLater, RepeatLater),
        503: (RepeatLater, RepeatLater),
    }[status]
    assert (type(confirmed), type(reversed_)) == expected
    assert confirmed.status == reversed_.status == status
    assert looked == LookupReply(status, DEEP)  # handed over raw; the host reads it


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
def test_a_deep_token_answer_makes_the_call_a_no_response(
    switch: ScriptedSwitch, kind: str, body: bytes
) -> None:
    switch.script(TOKEN, Reply(200, body))
    request = sale_request()
    auth = OAuth2ClientCredentials(switch.url + TOKEN, USER, "client-secret")
    runner = Runner(kind, switch.url, auth=auth)

    provision = runner.run("provision", request)
    advice = runner.run("reverse", reversal(request))

    assert isinstance(provision, Unknown)
    assert provision.reason is UnknownReason.NO_RESPONSE
    assert "not JSON" in provision.detail
    assert isinstance(advice, RepeatLater)
    assert advice.status is None
    assert switch.paths() == [TOKEN, TOKEN]  # nothing was sent without a token


def test_a_sale_whose_token_answer_is_deep_is_retried_then_reversed(
    switch: ScriptedSwitch, kind: str
) -> None:
    switch.script(TOKEN, Reply(200, DEEP))
    request = sale_request()
    auth = OAuth2ClientCredentials(switch.url + TOKEN, USER, "client-secret")

    sale = sell(kind, switch.url, request, profile=DUAL, tenders=True, auth=auth)

    assert sale.tx.state is State.REVERSING  # nothing can be sent until a token comes
    assert sale.tx.outcome is Outcome.DECLINED
    assert set(switch.paths()) == {TOKEN}
    replies = [exchange.reply for exchange in sale.exchanges]
    assert [type(reply) for reply in replies] == [Unknown] * 4 + [RepeatLater]


# -- an exchange observer that raises ---------------------------------------------------------


def broken_observer(exchange: Exchange) -> None:
    raise RuntimeError("metrics backend down")


def test_an_http_observer_that_raises_is_logged_and_every_call_returns(
    switch: ScriptedSwitch, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = sale_request()
    switch.script(PROVISION, Reply(201, json.dumps(issued(request)).encode()))
    switch.script(retry_path(request), Reply(200, json.dumps(issued(request)).encode()))
    switch.script(CONFIRMATIONS, Reply(202, b"{}"))
    switch.script(REVERSALS, Reply(202, b"{}"))
    runner = Runner(kind, switch.url, observer=broken_observer)
    caplog.set_level(logging.ERROR, logger="voucher_core")

    replies = [
        runner.run("provision", request),
        runner.run("retry", request),
        runner.run("confirm", confirmation(request)),
        runner.run("reverse", reversal(request)),
        runner.run("lookup", request.id),
    ]

    assert [type(reply) for reply in replies[:4]] == [
        Approved,
        Approved,
        Acknowledged,
        Acknowledged,
    ]
    assert isinstance(replies[4], LookupReply)
    failures = [r for r in caplog.records if "exchange observer raised" in r.getMessage()]
    assert len(failures) == 5
    assert {record.name for record in failures} == {"voucher_core.http"}
    assert all(record.exc_info is not None for record in failures)
    assert all(request.id in record.getMessage() for record in failures)


def test_a_sale_whose_exchange_observer_raises_ends_as_it_would_have(
    switch: ScriptedSwitch, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = sale_request()
    switch.script(PROVISION, Reply(201, json.dumps(issued(request)).encode()))
    switch.script(CONFIRMATIONS, Reply(202, b"{}"))
    caplog.set_level(logging.ERROR, logger="voucher_core")

    sale = sell(kind, switch.url, request, profile=DUAL, tenders=True, observer=broken_observer)

    assert sale.tx.state is State.DONE
    assert sale.tx.outcome is Outcome.APPROVED
    assert switch.paths() == [PROVISION, CONFIRMATIONS]
    assert len(sale.exchanges) == 2
    assert "metrics backend down" in caplog.text


# -- the in-process transport onto the simulator ---------------------------------------------


class TamperingSwitch(SwitchSimulator):
    """The simulator, whose approvals reach the till damaged ``times`` times: the switch and
    the provider did issue, but what arrives proves nothing."""

    def __init__(self, damage: Callable[[dict[str, Any]], None] | bytes, times: int) -> None:
        super().__init__([Provider("dualco", DUAL)], seed=5)
        self.damage = damage
        self.times = times

    def handle(self, operation: Operation, body: bytes = b"", **options: Any) -> SimReply:
        reply = super().handle(operation, body, **options)
        provision = operation in (Operation.PROVISION, Operation.RETRY)
        if provision and 200 <= reply.status < 300 and self.times > 0:
            self.times -= 1
            if isinstance(self.damage, bytes):
                return attrs.evolve(reply, body=self.damage)
            data = json.loads(reply.body)
            self.damage(data)
            return attrs.evolve(reply, body=json.dumps(data).encode())
        return reply


def in_process_sale(
    switch: SwitchSimulator,
    request: ProvisionRequest,
    *,
    profile: ProviderProfile = DUAL,
    observer: Callable[[Exchange], None] | None = None,
    run_async: bool = False,
) -> Sale:
    exchanges: list[Exchange] = []

    def seen(exchange: Exchange) -> None:
        exchanges.append(exchange)
        if observer is not None:
            observer(exchange)

    settings = Settings(
        simulator=switch,
        username=request.client.id,
        clock=SimulatedClock(),
        exchange_observer=seen,
        driver=DriverSettings(profile=profile),
    )
    if not run_async:
        with build(settings) as app:
            tx = app.driver.sell(request, tenders=cash(1000))
            app.driver.drain(timeout=60)
            return Sale(tx, exchanges)

    async def run() -> Transaction:
        app = build_async_in_memory(settings)
        try:
            tx = await app.driver.sell(request, tenders=cash(1000))
            await app.driver.drain(timeout=60)
            return tx
        finally:
            await app.aclose()

    return Sale(asyncio.run(run()), exchanges)


@pytest.mark.parametrize("name", BAD_APPROVALS)
@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
def test_in_process_an_issued_voucher_whose_approval_proves_nothing_is_reversed(
    name: str, run_async: bool
) -> None:
    switch = TamperingSwitch(BAD_APPROVALS[name][0], times=4)
    request = sale_request(client_id=USER)

    sale = in_process_sale(switch, request, run_async=run_async)
    switch.pump()

    assert sale.tx.state is State.DECLINED
    assert [e.operation for e in sale.exchanges] == [
        Operation.PROVISION,
        *[Operation.RETRY] * 3,
        Operation.REVERSE,
    ]
    assert [e.status for e in sale.exchanges] == [201, 200, 200, 200, 202]
    assert not switch.voucher_active(request.id)  # issued, then reversed: no money lost
    assert [entry.state for entry in switch.ledger()] == ["reversed"]


@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
def test_in_process_a_deep_approval_is_unknown_and_the_retry_brings_the_voucher(
    run_async: bool,
) -> None:
    switch = TamperingSwitch(DEEP, times=1)
    request = sale_request()

    sale = in_process_sale(switch, request, run_async=run_async)
    switch.pump()

    assert sale.tx.state is State.DONE
    assert [e.operation for e in sale.exchanges] == [
        Operation.PROVISION,
        Operation.RETRY,
        Operation.CONFIRM,
    ]
    assert switch.voucher_active(request.id)


def test_in_process_an_observer_that_raises_is_logged_and_the_sale_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    switch = SwitchSimulator([Provider("dualco", DUAL)], seed=5)
    request = sale_request()
    caplog.set_level(logging.ERROR, logger="voucher_core")

    sale = in_process_sale(switch, request, observer=broken_observer)
    looked = InMemoryTransport(switch, username=USER, observer=broken_observer).lookup(
        request.id, timeout=5.0
    )
    asynced = asyncio.run(
        AsyncInMemoryTransport(switch, username=USER, observer=broken_observer).lookup(
            request.id, timeout=5.0
        )
    )
    switch.pump()

    assert sale.tx.state is State.DONE
    assert switch.voucher_active(request.id)
    assert looked.status == asynced.status == 200
    failures = [r for r in caplog.records if "exchange observer raised" in r.getMessage()]
    assert len(failures) == 4  # provision, confirmation, two lookups
    assert {record.name for record in failures} == {"voucher_core.transport"}


# -- DUPLICATE_RECORD from the simulator itself: in process and over its HTTP server ----------


PROVIDERS = (
    Provider("dualco", DUAL, frozenset({"AIRTIME10"})),
    Provider("singleco", SINGLE, frozenset({"SINGLE1"})),
    Provider("netcare", NO_RETRIES, frozenset({"NETCARE1"})),
)
# product, the host's profile for it, how the sale ends, what the provider then holds
DUPLICATES = {
    "dual": ("AIRTIME10", DUAL, State.DONE, "confirmed"),
    "single": ("SINGLE1", SINGLE, State.DONE, "issued"),
    "no-retries": ("NETCARE1", NO_RETRIES, State.DECLINED, "reversed"),
}


def landed_earlier(transport: InMemoryTransport | HttpTransport, request: ProvisionRequest) -> str:
    """An earlier attempt with this id that landed (its till never read the answer)."""
    first = transport.provision(request, timeout=5.0)
    assert isinstance(first, Approved)
    code = first.response.voucher.code
    assert code
    return code


@pytest.mark.parametrize("case", DUPLICATES)
def test_in_process_a_duplicate_record_ends_with_the_voucher_already_issued(case: str) -> None:
    product, profile, final, held = DUPLICATES[case]
    switch = SwitchSimulator(PROVIDERS, seed=9)
    request = sale_request(product_id=product)
    code = landed_earlier(InMemoryTransport(switch, username=USER), request)

    sale = in_process_sale(switch, request, profile=profile)
    switch.pump()

    first = sale.exchanges[0]
    assert first.status == 400 and isinstance(first.reply, Unknown)
    assert sale.tx.state is final
    if final is State.DONE:
        assert sale.tx.response is not None and sale.tx.response.voucher.code == code
        assert sale.exchanges[1].operation is Operation.RETRY
    else:  # the provider takes no retries: reversed at once
        assert [e.operation for e in sale.exchanges] == [Operation.PROVISION, Operation.REVERSE]
    assert [(e.provision_id, e.state) for e in switch.ledger()] == [(request.id, held)]
    assert switch.voucher_active(request.id) is (final is State.DONE)


@pytest.fixture(scope="module")
def simulator_server() -> Iterator[tuple[RunningServer, SwitchSimulator]]:
    switch = SwitchSimulator(PROVIDERS, seed=11)
    with RunningServer(create_app(switch, pump_interval=0)) as server:
        yield server, switch


@pytest.mark.parametrize("case", DUPLICATES)
def test_over_http_a_duplicate_record_ends_with_the_voucher_already_issued(
    simulator_server: tuple[RunningServer, SwitchSimulator], kind: str, case: str
) -> None:
    server, _ = simulator_server
    product, profile, final, held = DUPLICATES[case]
    user = f"pos-{uuid.uuid4().hex[:12]}"  # records of its own on the shared server
    request = sale_request(client_id=user, product_id=product)
    with HttpTransport(server.url, auth=BasicAuth(user, PASSWORD)) as transport:
        code = landed_earlier(transport, request)

    sale = sell(kind, server.url, request, profile=profile, tenders=True)
    with httpx.Client(base_url=f"{server.url}/testServerAdmin", timeout=5.0) as admin:
        assert admin.post("/pump").status_code == 200
        ledger = {entry["provisionId"]: entry["state"] for entry in admin.get("/ledger").json()}

    first = sale.exchanges[0]
    assert first.status == 400 and isinstance(first.reply, Unknown)
    assert sale.tx.state is final
    if final is State.DONE:
        assert sale.tx.response is not None and sale.tx.response.voucher.code == code
    assert ledger[request.id] == held


def test_the_third_party_identifiers_of_an_approved_retry_are_the_switchs() -> None:
    """After a duplicate, the advices carry the identifiers the retry returned."""
    switch = SwitchSimulator(PROVIDERS, seed=9)
    request = sale_request()
    landed_earlier(InMemoryTransport(switch, username=USER), request)

    sale = in_process_sale(switch, request)

    confirmation_body = json.loads(sale.exchanges[-1].body)
    sent = tuple(
        ThirdPartyIdentifier(
            institution_id=item["institutionId"],
            transaction_identifier=item["transactionIdentifier"],
        )
        for item in confirmation_body["thirdPartyIdentifiers"]
    )
    assert sale.tx.response is not None
    assert sent == sale.tx.response.third_party_identifiers
    assert len(sent) == 3
