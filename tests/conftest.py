"""Every test checks, as it goes, what crosses the wire against Electrum's swagger.

An autouse fixture watches two places for the whole test:

* every message this project's transports put on the wire (in memory and HTTP): a
  ``ProvisionRequest``, ``TenderAdvice`` or ``BasicReversal`` must satisfy its definition;
* every answer the switch simulator gives: a 2xx carries the operation's definition
  (``ProvisionResponse``, the advice echoed, ``VoucherLookupResponse``), and any other JSON
  answer is an ``ErrorDetail``. An answer a fault spoiled on purpose (``SimReply.damaged``)
  is left alone, and an error may lack ``id`` (the simulator omits it when nothing names the
  request, as real servers do).

What breaks a definition fails the test at its end, listing each body and problem. Where the
swagger is not found the checks are off (``tests/swagger.py`` says where it is looked for; the
tests that check it explicitly skip or, under CI, fail).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import swagger
from hypothesis import HealthCheck, settings

from voucher_adapters.simulator import Operation, SimReply, SwitchSimulator
from voucher_core.messages import BasicReversal, ProvisionRequest, TenderAdvice

# The suite runs on several workers, on machines busy with other work: a slow draw or a slow
# example is the machine's doing, not a finding. Tests that need a deadline set their own.
settings.register_profile("voucher", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("voucher")

_SENT = {
    ProvisionRequest: "ProvisionRequest",
    TenderAdvice: "TenderAdvice",
    BasicReversal: "BasicReversal",
}
# Modules whose to_json puts a message on the wire; one that no longer has it is skipped.
_TRANSPORT_MODULES = (
    "voucher_adapters.transports.in_process",
    "voucher_adapters.transports.http.base",
)
_NO_ID = "(root): 'id' is a required property"


class WireWatch:
    """What was seen to break the swagger during one test."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.checked = 0
        self._passed: set[tuple[str, bytes]] = set()

    def check(self, definition: str, body: bytes, what: str, *, id_optional: bool = False) -> None:
        self.checked += 1
        if (definition, body) in self._passed:
            return
        try:
            document = json.loads(body)
        except ValueError:
            self.failures.append(f"{what}: not JSON: {body[:200]!r}")
            return
        found = swagger.problems(definition, document)
        if id_optional:
            found = [problem for problem in found if problem != _NO_ID]
        if found:
            self.failures.append(f"{what} breaks {definition}:\n  " + "\n  ".join(found))
        else:
            self._passed.add((definition, body))

    def answer(self, operation: Operation, reply: SimReply) -> None:
        if reply.damaged or reply.status == 0 or operation is Operation.RESET:
            return
        if not reply.content_type.startswith("application/json"):
            return
        what = f"the simulator's {reply.status} to {operation.value}"
        if 200 <= reply.status < 300:
            self.check(swagger.OPERATION_ANSWERS[operation.value], reply.body, what)
        else:
            self.check("ErrorDetail", reply.body, what, id_optional=True)


def _swagger_found() -> bool:
    return swagger.swagger_path().is_file()


@pytest.fixture(autouse=True)
def voucher_wire_watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[WireWatch | None]:
    """Checks the wire against the swagger for the whole test (see the module docstring)."""
    if not _swagger_found():
        yield None
        return
    watch = WireWatch()
    handle = SwitchSimulator.handle

    def handle_checked(self: SwitchSimulator, operation: Any, *args: Any, **kwargs: Any) -> Any:
        reply = handle(self, operation, *args, **kwargs)
        try:
            known = Operation(operation)
        except ValueError:
            return reply
        watch.answer(known, reply)
        return reply

    monkeypatch.setattr(SwitchSimulator, "handle", handle_checked)
    for name in _TRANSPORT_MODULES:
        module = __import__(name, fromlist=["to_json"])
        encode = getattr(module, "to_json", None)
        if encode is None:
            continue

        def to_json_checked(message: Any, _encode: Any = encode) -> bytes:
            body: bytes = _encode(message)
            definition = _SENT.get(type(message))
            if definition is not None:
                watch.check(definition, body, f"the {definition} the client sent")
            return body

        monkeypatch.setattr(module, "to_json", to_json_checked)
    yield watch
    if watch.failures:
        pytest.fail("\n".join(watch.failures), pytrace=False)
