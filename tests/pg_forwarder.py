"""Run as a script: one forwarder draining a PostgreSQL advice queue, logging each delivery.

``python pg_forwarder.py DSN SCHEMA NAME LOG GO LEASE`` opens the queue as holder NAME,
writes ``LOG.ready``, waits for the file GO (so the forwarders start together), then takes
due advices in small batches until none is left queued or leased. It "delivers" each one
(the bytes it would send, between two readings of the monotonic clock), appends a line per
delivery to LOG and flushes it, and only then acknowledges the batch. A line is the JSON
list ``[advice id, body hex, pid, start, end, lease end, attempts]``; ``lease end`` is the
``now`` given to ``take_due`` plus the lease, on the same clock.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from voucher_adapters.stores.postgres import PostgresAdviceQueue
from voucher_core.wire import to_json

GIVE_UP_AFTER = 50.0  # seconds: a stuck test must not hang CI


def main() -> None:
    dsn, schema, name, log_path, go, lease = sys.argv[1:7]
    queue = PostgresAdviceQueue(dsn, schema=schema, holder=name, lease=float(lease), pool_size=1)
    Path(f"{log_path}.ready").touch()
    while not Path(go).exists():
        time.sleep(0.001)
    deadline = time.monotonic() + GIVE_UP_AFTER
    with open(log_path, "a", encoding="ascii") as log:
        while time.monotonic() < deadline:
            now = time.monotonic()
            taken = queue.take_due(now, limit=8)
            if not taken:
                if len(queue) == 0:
                    break
                time.sleep(0.02)  # what is left is leased elsewhere: wait for it
                continue
            lines = []
            for queued in taken:
                start = time.monotonic()
                body = to_json(queued.advice)  # "sending" it
                time.sleep(0.0001)
                end = time.monotonic()
                record = [queued.id, body.hex(), os.getpid(), start, end, now + float(lease)]
                lines.append(json.dumps([*record, queued.attempts]))
            log.write("\n".join(lines) + "\n")
            log.flush()
            for queued in taken:
                queue.acknowledge(queued.id)
    queue.close()


if __name__ == "__main__":
    main()
