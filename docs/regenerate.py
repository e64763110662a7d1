"""Rewrite the generated parts of docs/ from the code (run by `make diagram`)."""

from __future__ import annotations

import re
from pathlib import Path

from voucher_core.diagram import to_dot, to_mermaid

DOCS = Path(__file__).resolve().parent


def main() -> None:
    mermaid = to_mermaid()
    (DOCS / "state-diagram.mmd").write_text(mermaid)
    (DOCS / "state-diagram.dot").write_text(to_dot())
    page = DOCS / "state-machine.md"
    fence = "`" * 3
    block = re.compile(rf"{fence}mermaid\n.*?{fence}", flags=re.S)
    page.write_text(block.sub(lambda _: f"{fence}mermaid\n{mermaid}{fence}", page.read_text(), 1))


if __name__ == "__main__":
    main()
