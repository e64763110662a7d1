"""Which process drives an owner's sales: an exclusive lock per (database file, owner).

Two processes that resume the same owner's unfinished sales would both act on them: each
would build its own confirmation or reversal for a sale, under a different advice id, and
the switch would see both. So the right to resume an owner's sales is claimed first, and
held until the journal is closed or the process ends.

The claim is an advisory ``flock`` on a small file beside the database,
``<database>.owner-<digest>.lock`` (the digest is of the owner's name; ``None`` has its own).
The kernel drops the lock when the process ends in any way, SIGKILL and power loss included,
so a crashed process never leaves a claim behind. The holder writes its pid, host and owner
name into the file, which is how a refused claim can say who holds it.

Claims are per process: journals opened more than once in one process under one owner share
the one lock, which goes when the last of them is closed. Where ``fcntl`` is missing
(Windows), claims are not made.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading

from voucher_adapters.errors import OwnerBusy, StorageError

__all__ = ["OwnerBusy", "OwnerClaim", "claim_owner", "lock_path"]

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]


def _label(owner: str | None) -> str:
    if owner is None:
        return "the sales recorded without an owner"
    return f"the sales of owner {owner!r}"


def lock_path(database: str, owner: str | None) -> str:
    """The lock file for ``owner``'s claim on ``database`` (an absolute path)."""
    name = "\0none" if owner is None else f"owner:{owner}"
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{database}.owner-{digest}.lock"


class OwnerClaim:
    """One process's hold on one owner's sales; shared by that process's journals."""

    def __init__(self, key: tuple[str, str | None], fd: int) -> None:
        self.key = key
        self._fd = fd
        self.holders = 1

    def release(self) -> None:
        """Let go of one holder's share; the lock goes with the last."""
        with _LOCK:
            self.holders -= 1
            if self.holders > 0 or self._fd < 0:
                return
            if _CLAIMS.get(self.key) is self:  # not a newer claim on the same key
                del _CLAIMS[self.key]
            fd, self._fd = self._fd, -1
        os.close(fd)  # closing the descriptor drops the flock


_LOCK = threading.Lock()
_CLAIMS: dict[tuple[str, str | None], OwnerClaim] = {}


def claim_owner(database: str, owner: str | None) -> OwnerClaim | None:
    """Claim ``owner``'s sales in ``database`` for this process, or raise :class:`OwnerBusy`.

    Returns None where claims cannot be made (no ``fcntl``).
    """
    if fcntl is None:  # pragma: no cover - not on POSIX
        return None
    database = os.path.realpath(database)
    key = (database, owner)
    with _LOCK:
        held = _CLAIMS.get(key)
        if held is not None:
            held.holders += 1
            return held
        path = lock_path(database, owner)
        operation = f"resume {_label(owner)}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            reason = f"cannot open the owner lock file {path}: {os.strerror(error.errno or 0)}"
            raise StorageError(database, operation, reason) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OwnerBusy(
                database,
                operation,
                f"another live process{holder} is driving them; stop it first, or give this "
                "process an owner of its own",
            ) from None
        except OSError as error:
            os.close(fd)
            reason = f"cannot lock {path}: {os.strerror(error.errno or 0)}"
            raise StorageError(database, operation, reason) from error
        who = f"pid {os.getpid()} on {socket.gethostname()}, owner {owner!r}\n"
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, who.encode(), 0)
        except OSError:  # only a diagnostic: the lock itself is what counts
            pass
        claim = _CLAIMS[key] = OwnerClaim(key, fd)
        return claim


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return f" ({text.split(', owner')[0]})" if text else ""
