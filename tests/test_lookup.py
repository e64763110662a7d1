"""Looking a voucher up by its provision request's id, by its code, by its serial number, or
by several, directed to the institutions that issued and settle it.

On every transport (in memory, HTTP blocking and asyncio) and in the simulator; the answer is
read into a ``VoucherLookupResponse``; a sale is looked up only once it is final; and the
``voucher lookup`` command does the same from a shell.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from voucher_adapters.cli.main import main
from voucher_adapters.clock import SimulatedClock
from voucher_adapters.demo import DEMO_CLIENT_ID, cash, demo_request
from voucher_adapters.simulator import FaultKind, Operation, Provider, SwitchSimulator
from voucher_adapters.simulator.server import RunningServer, create_app
from voucher_adapters.stores.memory import InMemoryAdviceQueue
from voucher_adapters.transports.http import AsyncHttpTransport, BasicAuth, HttpTransport
from voucher_adapters.transports.in_process import InMemoryTransport
from voucher_core import Driver, DriverSettings, InvalidArgument, LookupRefused, State
from voucher_core.errors import InvalidFieldValueError
from voucher_core.messages import ErrorType, VoucherLookupResponse
from voucher_core.policy import DUAL, RetryPolicy
from voucher_core.ports import LookupQuery, LookupReply

PASSWORD = "lookup-secret"
UNKNOWN_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def driver_for(switch: SwitchSimulator) -> Driver:
    transport = InMemoryTransport(switch, username=DEMO_CLIENT_ID, password=PASSWORD)
    settings = DriverSettings(policy=RetryPolicy(timeout=5.0), profile=DUAL)
    return Driver(transport, InMemoryAdviceQueue(), clock=SimulatedClock(), settings=settings)


def sell(driver: Driver) -> Any:
    tx = driver.sell(demo_request(id=str(uuid.uuid4()), time=driver.clock.now()))
    assert tx.state is State.PROVISIONED
    return driver.confirm(tx, cash(1000))


@pytest.fixture
def switch() -> SwitchSimulator:
    return SwitchSimulator([Provider("airtimeco", DUAL, frozenset({"AIRTIME10"}))], seed=21)


# -- the query and the reply --------------------------------------------------------------------


def test_a_query_names_a_provision_id_a_code_or_both() -> None:
    assert LookupQuery(provision_request_id=UNKNOWN_ID).params() == {
        "provisionRequestId": UNKNOWN_ID
    }
    both = LookupQuery(provision_request_id=UNKNOWN_ID, voucher_code="1234567890")
    assert both.params() == {"provisionRequestId": UNKNOWN_ID, "voucherCode": "1234567890"}
    assert "1234567890" not in repr(both)
    assert LookupQuery.of(UNKNOWN_ID) == LookupQuery(provision_request_id=UNKNOWN_ID)


def test_a_query_names_a_serial_number_and_the_institutions_in_the_swaggers_names() -> None:
    query = LookupQuery(
        voucher_code="1234567890",
        voucher_serial_number="SN00000000AB",
        receiver_inst_id="airtimeco",
        settlement_entity_inst_id="settler",
    )
    assert query.params() == {
        "voucherCode": "1234567890",
        "voucherSerialNumber": "SN00000000AB",
        "receiverInstId": "airtimeco",
        "settlementEntityInstId": "settler",
    }
    shown = repr(query)
    assert "1234567890" not in shown  # the code redeems the voucher
    assert "SN00000000AB" in shown and "airtimeco" in shown  # the serial number cannot
    assert LookupQuery(voucher_serial_number="SN1").params() == {"voucherSerialNumber": "SN1"}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, InvalidArgument),
        ({"voucher_code": ""}, InvalidArgument),
        ({"voucher_serial_number": ""}, InvalidArgument),
        ({"voucher_serial_number": "S" * 41}, InvalidFieldValueError),
        ({"receiver_inst_id": "airtimeco"}, InvalidArgument),  # directs, but names no voucher
        ({"settlement_entity_inst_id": "settler"}, InvalidArgument),
        ({"voucher_serial_number": "SN1", "receiver_inst_id": ""}, InvalidArgument),
        ({"voucher_serial_number": "SN1", "settlement_entity_inst_id": ""}, InvalidArgument),
        ({"provision_request_id": "not-a-uuid"}, InvalidFieldValueError),
        ({"voucher_code": "9" * 41}, InvalidFieldValueError),
    ],
)
def test_a_query_that_names_nothing_usable_is_refused(
    fields: dict[str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        LookupQuery(**fields)


def test_a_reply_is_read_into_a_lookup_response_or_an_error_and_never_raises() -> None:
    found = LookupReply(200, b'{"voucher":{"code":"123","serialNumber":"S1"},"futureField":1}')
    assert isinstance(found.response, VoucherLookupResponse)
    assert found.response.voucher.serial_number == "S1"
    assert found.error is None
    missing = LookupReply(404, b'{"errorType":"UNABLE_TO_LOCATE_RECORD","errorMessage":"no"}')
    assert missing.response is None
    assert missing.error is not None
    assert missing.error.error_type is ErrorType.UNABLE_TO_LOCATE_RECORD
    for garbage in (LookupReply(200, b"<html>"), LookupReply(500, b""), LookupReply(None, b"")):
        assert garbage.response is None
        assert garbage.error is None


# -- in memory, through the driver --------------------------------------------------------------


def test_a_finished_sale_is_found_by_its_provision_id(switch: SwitchSimulator) -> None:
    driver = driver_for(switch)
    tx = sell(driver)
    reply = driver.lookup(tx)
    assert reply.status == 200
    assert reply.response is not None
    assert reply.response.voucher.code == tx.response.voucher.code
    assert reply.response.product is not None
    assert reply.response.product.product_id == "AIRTIME10"


def test_a_finished_sale_is_found_by_its_voucher_code(switch: SwitchSimulator) -> None:
    driver = driver_for(switch)
    sell(driver)  # another voucher of the same client, which must not be the one found
    tx = sell(driver)
    reply = driver.lookup(tx, by_code=True)
    assert reply.response is not None
    assert reply.response.voucher.serial_number == tx.response.voucher.serial_number


def test_a_sale_in_flight_is_not_looked_up_by_id_or_by_code(switch: SwitchSimulator) -> None:
    driver = driver_for(switch)
    tx = driver.sell(demo_request(id=str(uuid.uuid4()), time=driver.clock.now()))
    assert tx.state is State.PROVISIONED
    with pytest.raises(LookupRefused):
        driver.lookup(tx)
    with pytest.raises(LookupRefused):
        driver.lookup(tx, by_code=True)


def test_a_sale_without_a_voucher_has_no_code_to_look_up_by(switch: SwitchSimulator) -> None:
    driver = driver_for(switch)
    switch.faults.script(Operation.PROVISION, FaultKind.DECLINE)
    tx = driver.sell(demo_request(id=str(uuid.uuid4()), time=driver.clock.now()))
    assert tx.terminal
    assert driver.lookup(tx).status == 404
    with pytest.raises(InvalidArgument):
        driver.lookup(tx, by_code=True)


def test_an_id_and_a_code_of_different_vouchers_find_nothing(switch: SwitchSimulator) -> None:
    driver = driver_for(switch)
    first, second = sell(driver), sell(driver)
    transport = driver.transport
    mixed = LookupQuery(provision_request_id=first.id, voucher_code=second.response.voucher.code)
    reply = transport.lookup(mixed, timeout=5.0)
    assert reply.status == 404
    assert reply.error is not None and reply.error.id == first.id
    same = LookupQuery(provision_request_id=first.id, voucher_code=first.response.voucher.code)
    assert transport.lookup(same, timeout=5.0).status == 200


def test_a_finished_sale_is_found_by_its_serial_number(switch: SwitchSimulator) -> None:
    driver = driver_for(switch)
    first, tx = sell(driver), sell(driver)
    serial = tx.response.voucher.serial_number
    assert serial and serial != first.response.voucher.serial_number
    reply = driver.transport.lookup(LookupQuery(voucher_serial_number=serial), timeout=5.0)
    assert reply.status == 200 and reply.response is not None
    assert reply.response.voucher.code == tx.response.voucher.code
    mixed = LookupQuery(provision_request_id=first.id, voucher_serial_number=serial)
    assert driver.transport.lookup(mixed, timeout=5.0).status == 404
    unknown = LookupQuery(voucher_serial_number="SN-NOT-ISSUED")
    assert driver.transport.lookup(unknown, timeout=5.0).status == 404


@pytest.mark.parametrize(
    ("receiver", "settlement_entity", "status"),
    [
        ("airtimeco", None, 200),
        (None, "airtimeco", 200),
        ("airtimeco", "airtimeco", 200),
        ("otherco", None, 404),
        (None, "otherco", 404),
        ("airtimeco", "otherco", 404),
    ],
)
def test_a_lookup_directed_to_an_institution_finds_only_the_vouchers_it_issued_or_settles(
    switch: SwitchSimulator, receiver: str | None, settlement_entity: str | None, status: int
) -> None:
    driver = driver_for(switch)
    tx = sell(driver)
    assert tx.response.receiver.id == tx.response.settlement_entity.id == "airtimeco"
    query = LookupQuery(
        provision_request_id=tx.id,
        receiver_inst_id=receiver,
        settlement_entity_inst_id=settlement_entity,
    )
    assert driver.transport.lookup(query, timeout=5.0).status == status
    by_serial = LookupQuery(
        voucher_serial_number=tx.response.voucher.serial_number,
        receiver_inst_id=receiver,
        settlement_entity_inst_id=settlement_entity,
    )
    assert driver.transport.lookup(by_serial, timeout=5.0).status == status


def test_a_lookup_under_another_password_finds_nothing(switch: SwitchSimulator) -> None:
    tx = sell(driver_for(switch))
    other = InMemoryTransport(switch, username=DEMO_CLIENT_ID, password="another")
    assert other.lookup(tx.id, timeout=5.0).status == 404


# -- the simulator's answers --------------------------------------------------------------------


def test_a_lookup_by_an_unknown_code_is_unable_to_locate_and_names_no_id(
    switch: SwitchSimulator,
) -> None:
    reply = switch.handle(
        Operation.LOOKUP, username=DEMO_CLIENT_ID, query={"voucherCode": "000000"}
    )
    assert reply.status == 404
    detail = json.loads(reply.body)
    assert detail["errorType"] == "UNABLE_TO_LOCATE_RECORD"
    assert "id" not in detail
    assert "000000" not in reply.body.decode()


@pytest.mark.parametrize(
    "query", [{}, {"receiverInstId": "airtimeco", "settlementEntityInstId": "airtimeco"}]
)
def test_a_lookup_naming_no_voucher_is_a_format_error(
    switch: SwitchSimulator, query: dict[str, str]
) -> None:
    reply = switch.handle(Operation.LOOKUP, username=DEMO_CLIENT_ID, query=query)
    assert reply.status == 400
    assert json.loads(reply.body)["errorType"] == "FORMAT_ERROR"


# -- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with RunningServer(create_app(SwitchSimulator(seed=22), pump_interval=0)) as running:
        yield running


def provisioned(server: RunningServer) -> tuple[str, str]:
    """A sale provisioned over HTTP with the test's credentials: its id and voucher code."""
    transport = HttpTransport(server.url, auth=BasicAuth(DEMO_CLIENT_ID, PASSWORD))
    request = demo_request(id=str(uuid.uuid4()), time=SimulatedClock().now())
    reply = transport.provision(request, timeout=5.0)
    transport.close()
    code = reply.response.voucher.code  # type: ignore[union-attr]
    assert code
    return request.id, code


def test_the_blocking_http_transport_looks_up_by_id_and_by_code(server: RunningServer) -> None:
    provision_id, code = provisioned(server)
    transport = HttpTransport(server.url, auth=BasicAuth(DEMO_CLIENT_ID, PASSWORD))
    by_id = transport.lookup(LookupQuery(provision_request_id=provision_id), timeout=5.0)
    by_code = transport.lookup(LookupQuery(voucher_code=code), timeout=5.0)
    transport.close()
    assert by_id.response is not None and by_id.response.voucher.code == code
    assert by_code.response == by_id.response


def test_the_http_transports_look_up_by_serial_number_directed_to_an_institution(
    server: RunningServer,
) -> None:
    provision_id, _ = provisioned(server)
    transport = HttpTransport(server.url, auth=BasicAuth(DEMO_CLIENT_ID, PASSWORD))
    try:
        found = transport.lookup(provision_id, timeout=5.0).response
        assert found is not None and found.receiver is not None
        serial, receiver = found.voucher.serial_number, found.receiver.id
        assert serial
        by_serial = LookupQuery(voucher_serial_number=serial, receiver_inst_id=receiver)
        assert transport.lookup(by_serial, timeout=5.0).response == found
        elsewhere = LookupQuery(voucher_serial_number=serial, settlement_entity_inst_id="other")
        assert transport.lookup(elsewhere, timeout=5.0).status == 404
    finally:
        transport.close()

    async def look() -> LookupReply:
        transport = AsyncHttpTransport(server.url, auth=BasicAuth(DEMO_CLIENT_ID, PASSWORD))
        try:
            return await transport.lookup(by_serial, timeout=5.0)
        finally:
            await transport.aclose()

    assert asyncio.run(look()).response == found


def test_the_asyncio_http_transport_looks_up_by_id_and_by_code(server: RunningServer) -> None:
    provision_id, code = provisioned(server)

    async def look() -> tuple[LookupReply, LookupReply]:
        transport = AsyncHttpTransport(server.url, auth=BasicAuth(DEMO_CLIENT_ID, PASSWORD))
        try:
            by_id = await transport.lookup(provision_id, timeout=5.0)
            by_code = await transport.lookup(LookupQuery(voucher_code=code), timeout=5.0)
        finally:
            await transport.aclose()
        return by_id, by_code

    by_id, by_code = asyncio.run(look())
    assert by_id.response is not None and by_id.response.voucher.code == code
    assert by_code.response == by_id.response


# -- voucher lookup -----------------------------------------------------------------------------


def cli(server: RunningServer, *args: str) -> list[str]:
    base = ["lookup", "--url", server.url, "--username", DEMO_CLIENT_ID, "--password", PASSWORD]
    return [*base, *args]


def test_voucher_lookup_prints_the_voucher_with_its_code_masked(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    provision_id, code = provisioned(server)
    assert main(cli(server, "--provision-id", provision_id)) == 0
    out = capsys.readouterr().out
    assert "voucher found (200)" in out
    assert "***" in out and code not in out and PASSWORD not in out
    assert main(cli(server, "--voucher-code", code, "--json", "--show-code")) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["voucher"]["code"] == code


def test_voucher_lookup_of_nothing_known_exits_1_and_of_nothing_at_all_2(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(cli(server, "--provision-id", UNKNOWN_ID)) == 1
    assert "404 UNABLE_TO_LOCATE_RECORD" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(cli(server))
    assert usage.value.code == 2
    with pytest.raises(SystemExit) as bad_id:
        main(cli(server, "--provision-id", "nope"))
    assert bad_id.value.code == 2
    assert "--provision-id" in capsys.readouterr().err


def test_voucher_lookup_by_serial_number_and_institutions(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    provision_id, code = provisioned(server)
    assert main(cli(server, "--provision-id", provision_id, "--json")) == 0
    found = json.loads(capsys.readouterr().out)
    serial, receiver = found["voucher"]["serialNumber"], found["receiver"]["id"]
    settler = found["settlementEntity"]["id"]
    directed = ("--receiver-inst-id", receiver, "--settlement-entity-inst-id", settler)
    assert main(cli(server, "--serial-number", serial, *directed, "--json")) == 0
    assert json.loads(capsys.readouterr().out) == found  # the code masked in both
    assert main(cli(server, "--serial-number", serial)) == 0
    out = capsys.readouterr().out
    assert serial in out and code not in out
    assert main(cli(server, "--serial-number", serial, "--receiver-inst-id", "other")) == 1
    assert "404 UNABLE_TO_LOCATE_RECORD" in capsys.readouterr().err
    with pytest.raises(SystemExit) as undirected:
        main(cli(server, "--receiver-inst-id", receiver))
    assert undirected.value.code == 2
    assert "--serial-number" in capsys.readouterr().err
    with pytest.raises(SystemExit) as too_long:
        main(cli(server, "--serial-number", "S" * 41))
    assert too_long.value.code == 2
    assert "--serial-number must be at most 40 characters" in capsys.readouterr().err
