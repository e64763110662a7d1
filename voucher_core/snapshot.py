"""A transaction as plain JSON-able data, and back: what a journal stores.

The snapshot holds everything the core needs to carry on after a restart: the request as it
went on the wire, the profile and policy it was sold under, the state, the retries spent, the
response and advice as exchanged (so a repeated advice is byte-for-byte the same), and the
flags. Messages are kept in their wire form through :mod:`voucher_core.wire`, so a snapshot
is readable by anyone who knows the SUV interface.

Versions: 2 added ``unattended`` (the sale's host is gone: a voucher that arrives is reversed
or flagged, never handed over in silence). A snapshot carries the lowest version that holds
it whole: 1 unless the sale is unattended, 2 if it is. So a reader of version 1 still reads
every other snapshot, and refuses, rather than misreads, one it would finish as if its host
were there; :func:`restore` reads both.
"""

from __future__ import annotations

import json
from typing import Any

from voucher_core.errors import InvalidArgument, SnapshotError
from voucher_core.messages import (
    BasicReversal,
    ErrorDetail,
    ProvisionRequest,
    ProvisionResponse,
    Tender,
    TenderAdvice,
)
from voucher_core.policy import Messaging, ProviderProfile, RetryPolicy
from voucher_core.replies import Declined, UnknownReason
from voucher_core.table import State
from voucher_core.transaction import Transaction
from voucher_core.wire import from_wire, to_json, to_wire

__all__ = ["SNAPSHOT_VERSION", "SnapshotError", "restore", "snapshot", "snapshot_json"]

SNAPSHOT_VERSION = 2  # the newest version written and read
_READABLE = frozenset({1, 2})


def _version(tx: Transaction) -> int:
    """The lowest version that holds ``tx`` whole."""
    return 2 if tx.unattended else 1


def _head(tx: Transaction) -> dict[str, Any]:
    """What never changes in a transaction's life (but for the version, once)."""
    return {
        "version": _version(tx),
        "id": tx.id,
        "profile": {
            "messaging": tx.profile.messaging.value,
            "retriesSupported": tx.profile.retries_supported,
            "advicesSupported": tx.profile.advices_supported,
        },
        "policy": {
            "maxRetries": tx.policy.max_retries,
            "timeout": tx.policy.timeout,
            "retryDelay": tx.policy.retry_delay,
        },
    }


def _flags(tx: Transaction) -> dict[str, Any]:
    """What is set only on some paths (left out when unset)."""
    data: dict[str, Any] = {}
    if tx.unanswered is not None:
        data["unanswered"] = tx.unanswered.value
    if tx.declined is not None:
        declined: dict[str, Any] = {"status": tx.declined.status}
        if tx.declined.error is not None:
            declined["error"] = to_wire(tx.declined.error)
        data["declined"] = declined
    if tx.reconciliation is not None:
        data["reconciliation"] = tx.reconciliation
    if tx.host_timed_out:
        data["hostTimedOut"] = True
    if tx.unattended:
        data["unattended"] = True
    return data


def snapshot(tx: Transaction) -> dict[str, Any]:
    """The transaction as JSON-able data."""
    data = _head(tx)
    data["state"] = tx.state.value
    data["retries"] = tx.retries
    data["request"] = to_wire(tx.request)
    if tx.tenders is not None:
        data["tenders"] = [to_wire(tender) for tender in tx.tenders]
    if tx.response is not None:
        data["response"] = to_wire(tx.response)
    if tx.advice is not None:
        kind = "confirmation" if isinstance(tx.advice, TenderAdvice) else "reversal"
        data["advice"] = {"kind": kind, "message": to_wire(tx.advice)}
    data.update(_flags(tx))
    return data


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _memo(tx: Transaction, part: str, message: Any) -> str:
    """The JSON text of ``message``, made once per message object and kept on ``tx``."""
    memo = tx._wire_memo
    if memo is None:
        memo = tx._wire_memo = {}
    kept = memo.get(part)
    if kept is not None and kept[0] is message:
        return kept[1]
    if isinstance(message, tuple):
        text = _text([to_wire(item) for item in message])
    else:
        text = to_json(message).decode()
    memo[part] = (message, text)
    return text


def snapshot_json(tx: Transaction) -> str:
    """The snapshot as compact JSON text: what the durable journals store.

    It reads back to the same data as :func:`snapshot` (keys may come in another order). The
    messages in it are serialised once per transaction and reused by later snapshots, which
    is what makes recording every state change cheap.
    """
    memo = tx._wire_memo
    if memo is None:
        memo = tx._wire_memo = {}
    kept = memo.get("head")
    key = (tx.profile, tx.policy, tx.unattended)
    if kept is not None and kept[0] == key:
        head = kept[1]
    else:
        head = _text(_head(tx))[:-1]
        memo["head"] = (key, head)
    parts = [head, ',"state":"', tx.state.value, '","retries":', str(tx.retries)]
    flags = _flags(tx)
    if flags:
        parts += [",", _text(flags)[1:-1]]
    parts += [',"request":', _memo(tx, "request", tx.request)]
    if tx.tenders is not None:
        parts += [',"tenders":', _memo(tx, "tenders", tx.tenders)]
    if tx.response is not None:
        parts += [',"response":', _memo(tx, "response", tx.response)]
    if tx.advice is not None:
        kind = "confirmation" if isinstance(tx.advice, TenderAdvice) else "reversal"
        parts += [',"advice":{"kind":"', kind, '","message":', _memo(tx, "advice", tx.advice)]
        parts.append("}")
    parts.append("}")
    return "".join(parts)


def restore(data: dict[str, Any]) -> Transaction:
    """Rebuild a transaction from :func:`snapshot` data."""
    name = data.get("id", "?") if isinstance(data, dict) else "?"
    try:
        if data.get("version") not in _READABLE:
            raise InvalidArgument(f"unsupported snapshot version {data.get('version')!r}")
        profile = data["profile"]
        policy = data["policy"]
        tx = Transaction(
            from_wire(ProvisionRequest, data["request"]),
            ProviderProfile(
                messaging=Messaging(profile["messaging"]),
                retries_supported=bool(profile["retriesSupported"]),
                advices_supported=bool(profile["advicesSupported"]),
            ),
            RetryPolicy(
                max_retries=int(policy["maxRetries"]),
                timeout=float(policy["timeout"]),
                retry_delay=float(policy["retryDelay"]),
            ),
            state=State(data["state"]),
            retries=int(data["retries"]),
        )
        if "tenders" in data:
            tx.tenders = tuple(from_wire(Tender, tender) for tender in data["tenders"])
        if "response" in data:
            tx.response = from_wire(ProvisionResponse, data["response"])
        if "advice" in data:
            advice = data["advice"]
            if advice["kind"] == "confirmation":
                tx.advice = from_wire(TenderAdvice, advice["message"])
            else:
                tx.advice = from_wire(BasicReversal, advice["message"])
        if "unanswered" in data:
            tx.unanswered = UnknownReason(data["unanswered"])
        if "declined" in data:
            declined = data["declined"]
            error = declined.get("error")
            tx.declined = Declined(
                int(declined["status"]),
                from_wire(ErrorDetail, error) if error is not None else None,
            )
        tx.reconciliation = data.get("reconciliation")
        tx.host_timed_out = bool(data.get("hostTimedOut", False))
        tx.unattended = bool(data.get("unattended", False))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SnapshotError(
            f"transaction {name}: stored snapshot is unreadable: {error}"
        ) from error
    if tx.id != name:
        raise SnapshotError(f"transaction {name}: stored snapshot holds request {tx.id}")
    tx.checkpoint()  # what the journal holds
    return tx
