"""The conformance checks themselves: strict enough to mean something, loud when they cannot run.

``tests/swagger.py`` anchors the swagger's patterns and checks formats; ``tests/conftest.py``
watches every request the client sends and every answer the simulator gives. Here each is
shown to catch what it is there to catch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import swagger
from conftest import WireWatch
from hypothesis import given
from strategies import REQUEST, basic_reversals, provision_requests, tender_advices

from voucher_adapters.simulator import Operation, SimReply
from voucher_core.wire import to_json, to_wire


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"time": "yesterday"}, "time"),
        ({"time": "2026-11-23 18:01:30"}, "time"),
        ({"amounts": {"requestAmount": {"amount": 1, "currency": "7100"}}}, "currency"),
        ({"amounts": {"requestAmount": {"amount": 2**63, "currency": "710"}}}, "amount"),
        ({"product": {"productId": "AIRTIME10-and-more"}}, "productId"),
        ({"tranType": "FOO"}, "tranType"),
        ({"customer": {"nickname": "T"}}, "customer"),
    ],
)
def test_a_body_that_breaks_a_format_or_a_whole_pattern_is_caught(
    change: dict[str, Any], path: str
) -> None:
    body = {**to_wire(REQUEST), **change}
    found = swagger.problems("ProvisionRequest", body)
    assert found and all(path in problem for problem in found), found


def test_the_fixed_request_conforms() -> None:
    assert swagger.problems("ProvisionRequest", to_wire(REQUEST)) == []


@given(provision_requests())
def test_every_request_the_kit_builds_conforms(request: Any) -> None:
    assert swagger.problems("ProvisionRequest", to_json(request)) == []


@given(tender_advices())
def test_every_confirmation_the_kit_builds_conforms(advice: Any) -> None:
    assert swagger.problems("TenderAdvice", to_json(advice)) == []


@given(basic_reversals())
def test_every_reversal_the_kit_builds_conforms(reversal: Any) -> None:
    assert swagger.problems("BasicReversal", to_json(reversal)) == []


# -- finding the swagger ------------------------------------------------------------------------


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VOUCHER_ELECTRUM_DIR", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("VOUCHER_REQUIRE_SWAGGER", raising=False)
    return tmp_path


def test_voucher_electrum_dir_says_where_the_swagger_is(nowhere: Path) -> None:
    assert swagger.swagger_path() == nowhere / swagger.FILE_NAME


def test_a_missing_swagger_skips_with_the_variable_to_set(nowhere: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match="VOUCHER_ELECTRUM_DIR"):
        swagger.definitions()


@pytest.mark.parametrize(("name", "value"), [("CI", "true"), ("VOUCHER_REQUIRE_SWAGGER", "1")])
def test_a_missing_swagger_fails_under_ci(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.fail.Exception, match="VOUCHER_ELECTRUM_DIR"):
        swagger.definitions()


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_ci_set_to_nothing_or_false_still_skips(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception):
        swagger.definitions()


# -- the watch on the wire ----------------------------------------------------------------------


def test_the_watch_catches_a_2xx_that_breaks_the_swagger_and_spares_a_damaged_one() -> None:
    watch = WireWatch()
    bad = SimReply(201, b'{"id": "x"}')
    watch.answer(Operation.PROVISION, bad)
    assert watch.failures and "ProvisionResponse" in watch.failures[0]
    spared = WireWatch()
    spared.answer(Operation.PROVISION, SimReply(201, b'{"id": "x"}', damaged=True))
    spared.answer(Operation.PROVISION, SimReply(500, b"", "text/plain; charset=utf-8"))
    spared.answer(
        Operation.LOOKUP, SimReply(404, b'{"errorType":"GENERAL_ERROR","errorMessage":"m"}')
    )
    assert spared.failures == []


def test_the_watch_catches_an_error_detail_with_too_long_a_message() -> None:
    watch = WireWatch()
    body = b'{"id":"i","errorType":"GENERAL_ERROR","errorMessage":"' + b"m" * 81 + b'"}'
    watch.answer(Operation.CONFIRM, SimReply(400, body))
    assert watch.failures


def test_the_watch_sees_what_the_client_sends_and_what_the_simulator_answers(
    voucher_wire_watch: WireWatch | None,
) -> None:
    if voucher_wire_watch is None:
        pytest.skip("the swagger is not found, so nothing is watched")
    from voucher_adapters.testing import Till  # noqa: PLC0415  (the kit pulls in the switch)

    till = Till()
    till.sell("AIRTIME10", 1000)
    assert voucher_wire_watch.checked >= 2  # the request sent and the answer given
    assert voucher_wire_watch.failures == []
