"""A simulated Electrum switch: raw request bytes in, raw reply bytes out. No I/O, no clock.

Theory of operation
-------------------
:meth:`SwitchSimulator.handle` takes one request as it arrived (operation, body bytes, the
Basic-auth username, the path id of a retry, the query of a lookup) and returns a
:class:`SimReply`. The in-memory transport calls it directly; an HTTP server maps paths to
operations and relays the reply. Neither needs to know anything else.

Each request goes through three steps:

1. The fault plan is asked for a fault, with the ids
:func:`~voucher_adapters.simulator.validation.peek`
   finds in the body. A fault that strikes before processing (dropped, 503, 500, decline)
   answers at once and nothing is recorded.
2. The request is processed as Electrum's test server does: credentials, strict validation,
   then the operation against the account's records
   (:mod:`voucher_adapters.simulator.records`) and the providers' books
   (:mod:`voucher_adapters.simulator.ledger`). An account is a username and password, as the
   test server keeps them: an advice sent with another password finds no provision.
3. A fault that strikes after processing (delay, lost, 504) changes only the answer.

Advices are acknowledged at once and owed to the provider through the switch's own queue
(:mod:`voucher_adapters.simulator.forwarding`), which only :meth:`SwitchSimulator.pump` drains, so a
test decides when providers hear about them. A provider that takes no advices never does: the
switch consumes them, and its own record is then the one that says whether a voucher stands.

Everything random (voucher codes, serial numbers, references) comes from one
``random.Random(seed)``; random faults have their own seeded source in the fault plan.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from voucher_adapters.simulator.faults import ADVICES, FaultKind, FaultPlan
from voucher_adapters.simulator.forwarding import Forward, StoreAndForward, SwitchEvent
from voucher_adapters.simulator.injection import after_processing, instead_of_processing
from voucher_adapters.simulator.ledger import LedgerEntry, ProviderLedger
from voucher_adapters.simulator.providers import DEFAULT_PROVIDER, Provider, Routing
from voucher_adapters.simulator.records import ProvisionRecord, SwitchRecords
from voucher_adapters.simulator.refusals import About, FormatProblem, refuse, refuse_format
from voucher_adapters.simulator.reply import Operation, SimReply
from voucher_adapters.simulator.validation import UUID_MSG, is_uuid, parse, peek, read_object
from voucher_adapters.simulator.vouchers import SWITCH_INSTITUTION_ID, VoucherMint
from voucher_core.errors import InvalidArgument
from voucher_core.messages import BasicReversal, ErrorType, ProvisionRequest, TenderAdvice

__all__ = ["RESET_BODY", "SwitchSimulator"]

RESET_BODY = {"userDataWillBeLost": "TRUE", "resetUserData": "TRUE"}
VOUCHERS_PATH = "/suv/v1/vouchers"
_LOOKUP_KEYS = ("posInfo", "settlementEntity", "receiver", "amounts", "voucher", "product")
# A lookup's institution parameters, and the part of the voucher's record each must match.
_DIRECTED = (("receiverInstId", "receiver"), ("settlementEntityInstId", "settlementEntity"))


def _directed_to(record: ProvisionRecord, query: Mapping[str, str]) -> bool:
    """Whether the voucher is one the institutions the lookup names issued and settle."""
    return all(
        query[param] == record.institution_id(role) for param, role in _DIRECTED if query.get(param)
    )


_PLAIN = "text/plain; charset=utf-8"


@attrs.frozen
class _Target:
    """Whom a request is about, as far as can be told before validating it."""

    about: About
    provision_id: str | None
    product_id: str | None


def _ok(status: int, document: Mapping[str, Any], *, location: str | None = None) -> SimReply:
    return SimReply(status, json.dumps(document).encode(), location=location)


class SwitchSimulator:
    """The switch and its providers, with fault injection. See the module docstring."""

    faults: FaultPlan

    def __init__(
        self,
        providers: Sequence[Provider] = (DEFAULT_PROVIDER,),
        *,
        default_provider: str | None = None,
        faults: FaultPlan | None = None,
        seed: int = 0,
        listener: Callable[[SwitchEvent], None] | None = None,
    ) -> None:
        self._routing = Routing.of(providers, default_provider)
        self.faults = faults if faults is not None else FaultPlan()
        self._mint = VoucherMint(random.Random(seed))
        self._records = SwitchRecords()
        self._ledger = ProviderLedger()
        self._forwarding = StoreAndForward(self._ledger, listener)
        self._server_errors = 0
        self._accounts: dict[str, set[str]] = {}

    def _account(self, username: str | None, password: str | None) -> str | None:
        """The key the records of these credentials are kept under (``None``: no username).

        Without a password (the in-memory transport's default) the username alone is the key.
        """
        if username is None:
            return None
        account = username if password is None else f"{username}\x00{password}"
        self._accounts.setdefault(username, set()).add(account)
        return account

    # -- the front door -----------------------------------------------------------------------

    def handle(
        self,
        operation: Operation,
        body: bytes = b"",
        *,
        username: str | None,
        password: str | None = None,
        provision_id: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> SimReply:
        """Answer one request. Never raises: whatever arrives gets a :class:`SimReply`.

        The records are those of *username* and *password* together (of *username* alone when
        *password* is ``None``).
        """
        try:
            return self._handle(
                Operation(operation),
                bytes(body),
                username=username,
                password=password,
                path_id=provision_id,
                query=query,
            )
        except Exception as exc:  # a server answers its own crash with a 500; it never raises
            return SimReply(500, f"simulator failure: {type(exc).__name__}".encode(), _PLAIN)

    def _handle(
        self,
        operation: Operation,
        body: bytes,
        *,
        username: str | None,
        password: str | None,
        path_id: str | None,
        query: Mapping[str, str] | None,
    ) -> SimReply:
        query = dict(query or {})
        account = self._account(username, password)
        target = self._target(operation, body, account, path_id, query)
        fault = self.faults.next_fault(
            operation, product_id=target.product_id, provision_id=target.provision_id
        )
        if fault is not None and not fault.kind.processed:
            # Crashing servers are seen sending empty and plain-text 500s: alternate them.
            if fault.kind is FaultKind.SERVER_ERROR:
                self._server_errors += 1
            plain_text = self._server_errors % 2 == 0
            return instead_of_processing(fault, target.about, plain_text=plain_text)
        if operation is Operation.RESET:
            reply = self._reset(body, username, password)
        else:
            reply = self._process(
                operation,
                body,
                target,
                username=username,
                account=account,
                path_id=path_id,
                query=query,
            )
        if fault is None:
            return reply
        return after_processing(fault, operation, reply, target.about)

    # -- faults -------------------------------------------------------------------------------

    def _target(
        self,
        operation: Operation,
        body: bytes,
        account: str | None,
        path_id: str | None,
        query: Mapping[str, str],
    ) -> _Target:
        if operation is Operation.RESET:
            return _Target(About(), None, None)
        if operation is Operation.LOOKUP:
            provision_id = query.get("provisionRequestId")
            return _Target(
                About(provision_id), provision_id, self._product_of(account, provision_id)
            )
        seen = peek(body)
        if operation in ADVICES:
            return _Target(
                About(seen.id, seen.request_id),
                seen.request_id,
                self._product_of(account, seen.request_id),
            )
        if operation is Operation.RETRY:
            return _Target(About(seen.id or path_id), path_id or seen.id, seen.product_id)
        return _Target(About(seen.id), seen.id, seen.product_id)

    def _product_of(self, account: str | None, provision_id: str | None) -> str | None:
        if account is None or provision_id is None:
            return None
        record = self._records.get(account, provision_id)
        return None if record is None else record.product_id

    # -- processing ---------------------------------------------------------------------------

    def _process(
        self,
        operation: Operation,
        body: bytes,
        target: _Target,
        *,
        username: str | None,
        account: str | None,
        path_id: str | None,
        query: Mapping[str, str],
    ) -> SimReply:
        if username is None or account is None:
            return refuse(
                400, ErrorType.AUTHENTICATION_ERROR, "No credentials were presented", target.about
            )
        if operation is Operation.PROVISION:
            return self._provision(body, username, account, target, path_id=None, retry=False)
        if operation is Operation.RETRY:
            return self._provision(body, username, account, target, path_id=path_id, retry=True)
        if operation is Operation.CONFIRM:
            return self._confirm(body, account, target)
        if operation is Operation.REVERSE:
            return self._reverse(body, account, target)
        return self._lookup(account, query)

    def _provision(
        self,
        body: bytes,
        username: str,
        account: str,
        target: _Target,
        *,
        path_id: str | None,
        retry: bool,
    ) -> SimReply:
        problems: list[FormatProblem] = []
        if retry and not is_uuid(path_id):
            problems.append(FormatProblem("provisionId", UUID_MSG))
        parsed = parse(ProvisionRequest, body, id_fields=("id",))
        if isinstance(parsed, list):
            return refuse_format(target.about, problems + parsed)
        request = parsed.message
        about = About(request.id)
        if retry and not problems and path_id != request.id:
            problems.append(FormatProblem("id", "id must equal the provisionId of the path"))
        if problems:
            return refuse_format(about, problems)
        if request.client.id != username:
            return refuse(
                400,
                ErrorType.AUTHENTICATION_ERROR,
                "The credentials do not match client.id",
                about,
            )
        product_id = request.product.product_id if request.product is not None else None
        record = self._records.get(account, request.id)
        provider = self._routing.route(product_id)
        if record is not None and record.landed:
            provider = self._routing.named(record.provider)
        if retry and not provider.profile.retries_supported:
            return refuse(
                400,
                ErrorType.TRANSACTION_NOT_SUPPORTED,
                f"Provider {provider.name} does not support retries",
                about,
            )
        if record is not None and record.response is not None:
            if not retry:
                return refuse(
                    400,
                    ErrorType.DUPLICATE_RECORD,
                    "A provision with this id already exists",
                    about,
                    detail={"voucher": record.voucher},
                )
            if record.reversed:
                return refuse(
                    400,
                    ErrorType.VOUCHER_ALREADY_REVERSED,
                    "The voucher was reversed",
                    About(request.id, record.reversal_id),
                )
            return _ok(200, record.response)
        if record is not None:
            # The test server names the reversal that came first as the original.
            return refuse(
                400,
                ErrorType.VOUCHER_ALREADY_REVERSED,
                "A reversal for this id arrived before the provision",
                About(request.id, record.reversal_id),
            )
        response = self._issue(account, parsed.data, request, provider, product_id)
        if retry:
            return _ok(200, response)
        return _ok(201, response, location=f"{VOUCHERS_PATH}/{request.id}")

    def _issue(
        self,
        account: str,
        data: dict[str, Any],
        request: ProvisionRequest,
        provider: Provider,
        product_id: str | None,
    ) -> dict[str, Any]:
        # ``data`` was written from the parsed request and is not kept anywhere else, so a
        # shallow copy is enough: the nested parts are never changed afterwards.
        response = dict(data)
        # A response has no room for the payment the request still had to collect.
        response.pop("customer", None)
        response.pop("paymentMethods", None)
        response["voucher"] = self._mint.voucher(request.time, data.get("voucher"))
        response.setdefault("settlementEntity", provider.institution)
        response.setdefault("receiver", provider.institution)
        response["thirdPartyIdentifiers"] = [
            *data["thirdPartyIdentifiers"],
            self._mint.reference(SWITCH_INSTITUTION_ID),
            self._mint.reference(provider.name),
        ]
        record = ProvisionRecord(request.id, provider.name, product_id, response)
        self._records.put(account, record)
        self._ledger.issue(account, request.id, provider.name)
        return response

    def _confirm(self, body: bytes, account: str, target: _Target) -> SimReply:
        parsed = parse(
            TenderAdvice,
            body,
            id_fields=("id", "requestId"),
            empty_if_missing=("thirdPartyIdentifiers", "tenders"),
        )
        if isinstance(parsed, list):
            return refuse_format(target.about, parsed)
        advice = parsed.message
        about = About(advice.id, advice.request_id)
        record = self._records.get(account, advice.request_id)
        if record is None:
            return refuse(
                404, ErrorType.UNABLE_TO_LOCATE_RECORD, "No provision with this requestId", about
            )
        if record.reversed:
            return refuse(
                400, ErrorType.VOUCHER_ALREADY_REVERSED, "The voucher was already reversed", about
            )
        if not record.confirmed:
            record.confirmed = True
            self._owe(account, Operation.CONFIRM, advice.id, record)
        return _ok(202, parsed.data)

    def _reverse(self, body: bytes, account: str, target: _Target) -> SimReply:
        parsed = parse(BasicReversal, body, id_fields=("id", "requestId"))
        if isinstance(parsed, list):
            return refuse_format(target.about, parsed)
        advice = parsed.message
        about = About(advice.id, advice.request_id)
        record = self._records.get(account, advice.request_id)
        if record is None or not record.landed:
            if record is None:
                # Remembered, so that the provision arriving late is refused.
                orphan = ProvisionRecord(
                    advice.request_id,
                    self._routing.default.name,
                    None,
                    reversed=True,
                    reversal_id=advice.id,
                )
                self._records.put(account, orphan)
            return refuse(
                404, ErrorType.UNABLE_TO_LOCATE_RECORD, "No provision with this requestId", about
            )
        if record.confirmed:
            return refuse(
                400, ErrorType.VOUCHER_ALREADY_CONFIRMED, "The voucher was already confirmed", about
            )
        if not record.reversed:
            record.reversed = True
            record.reversal_id = advice.id
            self._owe(account, Operation.REVERSE, advice.id, record)
        return _ok(202, parsed.data)

    def _owe(
        self, account: str, operation: Operation, advice_id: str, record: ProvisionRecord
    ) -> None:
        """Queue the advice for the provider, unless the provider takes none."""
        if self._routing.named(record.provider).profile.advices_supported:
            self._forwarding.enqueue(
                Forward(account, operation, advice_id, record.provision_id, record.provider)
            )

    def _lookup(self, account: str, query: Mapping[str, str]) -> SimReply:
        """By ``provisionRequestId``, ``voucherCode`` or ``voucherSerialNumber``, or by several
        (then one voucher must match them all). ``receiverInstId`` and
        ``settlementEntityInstId`` direct the lookup to an institution: a voucher that
        institution did not issue (receiver) or settle (settlement entity) is not found."""
        provision_id = query.get("provisionRequestId")
        code = query.get("voucherCode")
        serial = query.get("voucherSerialNumber")
        # An error about a lookup by code alone names no id: the code is no id, and a secret.
        about = About(provision_id)
        if provision_id is None and not code and not serial:
            problem = FormatProblem(
                "provisionRequestId",
                "provisionRequestId, voucherCode or voucherSerialNumber may not be null",
            )
            return refuse_format(about, [problem])
        if provision_id is not None and not is_uuid(provision_id):
            return refuse_format(about, [FormatProblem("provisionRequestId", UUID_MSG)])
        if provision_id is not None:
            record = self._records.get(account, provision_id)
        elif code:
            record = self._records.with_code(account, code)
        else:
            record = self._records.with_serial_number(account, serial or "")
        if record is not None and (
            (code and record.voucher_code != code)
            or (serial and record.serial_number != serial)
            or not _directed_to(record, query)
        ):
            record = None
        if record is None or record.response is None:
            return refuse(
                404, ErrorType.UNABLE_TO_LOCATE_RECORD, "No voucher for this lookup", about
            )
        found = {key: record.response[key] for key in _LOOKUP_KEYS if key in record.response}
        return _ok(200, found)

    def _reset(self, body: bytes, username: str | None, password: str | None) -> SimReply:
        if username is None:
            return refuse(
                400, ErrorType.AUTHENTICATION_ERROR, "No credentials were presented", About()
            )
        data = read_object(body)
        if data != RESET_BODY:
            problem = FormatProblem(
                "body", 'a reset needs {"userDataWillBeLost":"TRUE","resetUserData":"TRUE"}'
            )
            return refuse_format(About(), [problem])
        self.reset(username, password)
        return _ok(200, RESET_BODY)

    # -- for tests and timelines ----------------------------------------------------------------

    def pump(self, max_rounds: int = 1000) -> int:
        """Drain the switch's store-and-forward queue towards the providers.

        Each round tries every queued advice once; a failed provider leg leaves it queued.
        Stops when the queue is empty or after ``max_rounds``; returns how many were delivered.
        """
        return self._forwarding.pump(max_rounds, self.faults.provider_leg_fails)

    def configure_providers(
        self, providers: Sequence[Provider], *, default_provider: str | None = None
    ) -> None:
        """Replace the providers behind the switch (and which one is the default).

        A provider that some record, ledger entry or queued forward still names must stay, by
        the same name: its profile may change, but it cannot vanish while the switch holds
        history with it. Reset the users concerned first to drop one.
        """
        routing = Routing.of(providers, default_provider)
        kept = {provider.name for provider in routing.providers}
        named = (
            self._records.providers()
            | self._forwarding.providers()
            | {entry.provider for entry in self._ledger.entries()}
        )
        missing = sorted(named - kept)
        if missing:
            raise InvalidArgument(
                f"providers {missing} still hold records, ledger entries or queued advices; "
                "keep them or reset the users that used them first"
            )
        self._routing = routing

    @property
    def providers(self) -> tuple[Provider, ...]:
        """The providers behind the switch, in the order they were given."""
        return tuple(self._routing.providers)

    @property
    def default_provider(self) -> Provider:
        """Where a request whose product no provider serves is routed."""
        return self._routing.default

    def pending_forwards(self) -> int:
        """How many advices the switch still owes its providers."""
        return len(self._forwarding)

    def ledger(self) -> list[LedgerEntry]:
        """What each provider issued, confirmed and reversed, in the order first issued."""
        return self._ledger.entries()

    def issued_code(self, provision_id: str) -> str | None:
        """The code of the voucher the switch issued for this provision, if it issued one:
        what a till must hold before it calls the sale approved."""
        for _, record in self._records.find(provision_id):
            voucher = record.voucher
            if isinstance(voucher, dict) and isinstance(voucher.get("code"), str):
                return str(voucher["code"])
        return None

    def voucher_active(self, provision_id: str) -> bool:
        """Whether a voucher for this provision is worth money, judged where it counts.

        The provider's ledger judges when the provider takes advices; otherwise the switch's
        own record does, since the switch consumed the advices. Active means issued and, for a
        dual-messaging provider, confirmed; never reversed.
        """
        for username, record in self._records.find(provision_id):
            if record.response is None:
                continue
            provider = self._routing.named(record.provider)
            dual = provider.profile.dual
            if provider.profile.advices_supported:
                state = self._ledger.state(username, provision_id)
                if state is None:
                    continue
                confirmed, reversed_ = state == "confirmed", state == "reversed"
            else:
                confirmed, reversed_ = record.confirmed, record.reversed
            if not reversed_ and (confirmed or not dual):
                return True
        return False

    def reset(self, username: str, password: str | None = None) -> None:
        """Forget everything about this user: records, owed advices, the providers' entries.

        With *password*, only what was done with that password; without, every password's.
        """
        if password is None:
            accounts = self._accounts.pop(username, set()) | {username}
        else:
            accounts = {self._account(username, password) or username}
            self._accounts.get(username, set()).difference_update(accounts)
        for account in accounts:
            self._records.forget(account)
            self._forwarding.forget(account)
            self._ledger.forget(account)
