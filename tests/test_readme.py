"""The README's embedding example runs as written."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from voucher_adapters.demo import cash, demo_request

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_embedding_example_sells_and_confirms_a_voucher() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    namespace: dict[str, object] = {
        "request": demo_request(
            id="0b3e7a1c-2f4d-4e5a-9b6c-7d8e9f0a1b2c",
            time=datetime(2026, 11, 23, tzinfo=UTC),
            client_id="my-client-id",
        ),
        "tenders": cash(1000),
    }
    exec(compile(blocks[0], str(README), "exec"), namespace)
    tx = namespace["tx"]
    assert getattr(tx, "state", None) == "DONE"
