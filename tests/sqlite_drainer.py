"""Run as a script: drain a SQLite advice queue, logging when this process held each advice.

``python sqlite_drainer.py DB HOLDER LOG GO`` opens the queue, writes ``LOG.ready`` and waits
for the file GO to appear (so several drainers begin together), then takes due advices in
small batches until
none are left queued or leased, and puts each back (at most twice) or acknowledges it. The
log is a JSON list of ``[advice id, taken at, released at, action, attempts]``; the two
times bound the span in which this process held the advice.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from voucher_adapters.stores.sqlite import SqliteAdviceQueue


def main() -> None:
    path, holder, log_path, go = sys.argv[1:5]
    queue = SqliteAdviceQueue(path, holder=holder, lease=60.0)
    rng = random.Random(holder)
    log: list[list[object]] = []
    Path(f"{log_path}.ready").touch()
    while not Path(go).exists():
        time.sleep(0.001)
    while True:
        taken = queue.take_due(time.monotonic(), limit=rng.randint(1, 4))
        taken_at = time.monotonic()
        if not taken:
            if len(queue) == 0:
                break
            time.sleep(0.002)
            continue
        time.sleep(0.001)  # "sending"
        for queued in taken:
            released_at = time.monotonic()
            if queued.attempts < 3 and rng.random() < 0.5:
                queue.repeat_later(queued.id, due=released_at)
                action = "repeat"
            else:
                queue.acknowledge(queued.id)
                action = "ack"
            log.append([queued.id, taken_at, released_at, action, queued.attempts])
    queue.close()
    with open(log_path, "w", encoding="utf-8") as file:
        json.dump(log, file)


if __name__ == "__main__":
    main()
