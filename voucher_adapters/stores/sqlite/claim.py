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

:func:`claim_owner` also says whether the lock was taken just now: then the previous holder,
if there was one, is proven gone, and what it had leased can be handed out again at once.
:func:`is_claimed` tells, without taking anything, whether a live process holds a claim.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading

from voucher_adapters.errors import OwnerBusy, StorageError

__all__ = ["OwnerBusy", "OwnerClaim", "claim_owner", "is_claimed", "lock_path"]

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


def claim_owner(database: str, owner: str | None) -> tuple[OwnerClaim | None, bool]:
    """Claim ``owner``'s sales in ``database`` for this process, or raise :class:`OwnerBusy`.

    Returns the claim (None where claims cannot be made: no ``fcntl``) and whether the lock
    was taken just now (False when another journal of this process already held it).
    """
    if fcntl is None:  # pragma: no cover - not on POSIX
        return None, False
    database = os.path.realpath(database)
    key = (database, owner)
    with _LOCK:
        held = _CLAIMS.get(key)
        if held is not None:
            held.holders += 1
            return held, False
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
        return claim, True


def is_claimed(database: str, owner: str | None) -> bool | None:
    """Whether a live process holds ``owner``'s claim on ``database``, found without taking
    the lock (a probe that took it, however briefly, could turn away a host starting at that
    moment). True when this process holds it; otherwise read from the kernel's table of locks
    (``/proc/locks``, Linux). None when that cannot be told here."""
    database = os.path.realpath(database)
    with _LOCK:
        if (database, owner) in _CLAIMS:
            return True
    try:
        status = os.stat(lock_path(database, owner))
    except FileNotFoundError:
        return False  # never claimed: the file is made by the first claim and never removed
    except OSError:
        return None
    where = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:
        return None
    # "1: FLOCK  ADVISORY  WRITE 6681 fe:00:2146705 0 EOF": kind, mode, pid, device:inode.
    return any(
        len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where
        for fields in (line.split() for line in lines)
    )


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return f" ({text.split(', owner')[0]})" if text else ""
