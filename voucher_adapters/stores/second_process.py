"""Start a second process on a durable journal, to see the owner claim refuse it.

A journal on SQLite or PostgreSQL is claimed by the process that opened it; a second till or a
``voucher recover`` started on it while the first lives must stop before it sends or writes
anything (:class:`~voucher_adapters.errors.OwnerBusy`). :func:`start_second_process` starts a
real Python process that builds the application from ``settings`` through the composition root
and would run ``recover()``, and says how it ended. The chaos run and the property tests use it.

    tried = start_second_process({"db": "till.db"})
    assert tried.refused, tried.output
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping

import attrs

__all__ = ["REFUSED_EXIT", "SecondProcess", "start_second_process"]

#: The exit status of a second process refused by the owner claim.
REFUSED_EXIT = 3

_SCRIPT = f"""
import json, sys
from voucher_adapters.bootstrap import Settings, build
from voucher_adapters.errors import OwnerBusy
given = json.loads(sys.argv[1])
wait = given.pop("claim_wait", None)
if wait is not None:
    # A PostgreSQL claim that finds the lock taken waits for the server to notice a holder
    # that died; the holder here is alive, so a long wait only costs time.
    from voucher_adapters.stores.postgres import journal as pg_journal
    claim_owner = pg_journal.claim_owner
    pg_journal.claim_owner = lambda *args, timeout: claim_owner(*args, timeout=wait)
try:
    with build(Settings(**given)) as app:
        app.driver.recover()
except OwnerBusy as busy:
    print(busy)
    sys.exit({REFUSED_EXIT})
"""


@attrs.frozen
class SecondProcess:
    """How a second process on the journal ended: its exit status and what it printed."""

    returncode: int
    output: str

    @property
    def refused(self) -> bool:
        """True when the owner claim stopped it (``OwnerBusy``)."""
        return self.returncode == REFUSED_EXIT


def start_second_process(
    settings: Mapping[str, object], *, claim_wait: float | None = None, timeout: float = 120.0
) -> SecondProcess:
    """Run a second process built from ``settings`` (the fields of
    :class:`~voucher_adapters.bootstrap.Settings` that JSON carries, e.g. ``{"db": path}`` or
    ``{"dsn": dsn}``) and wait at most ``timeout`` seconds for it to end. ``claim_wait`` cuts
    how long a PostgreSQL claim waits on a taken lock (a live holder never lets go)."""
    given = dict(settings)
    if claim_wait is not None:
        given["claim_wait"] = claim_wait
    child = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(given)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return SecondProcess(child.returncode, (child.stdout + child.stderr)[-2000:])
