"""A simulated run as a Mermaid sequence diagram: POS, switch and provider, every message and
reply (the switch's store-and-forward legs included), with state changes as notes.

``voucher simulate --scenario NAME --format mermaid`` prints it, and ``docs/flows.md`` is made
of these diagrams (``make diagram`` rewrites them; a test fails when they drift from the code).
"""

from __future__ import annotations

import re

from voucher_adapters.cli.timeline import TimelineEntry

__all__ = ["to_sequence_diagram"]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ARROWS = {
    "POS -> switch": "POS->>Switch",
    "switch -> POS": "Switch-->>POS",
    "switch->provider": "Switch->>Provider",
    "provider->switch": "Provider-->>Switch",
}


def _clean(text: str) -> str:
    """Short ids and no characters Mermaid reads as syntax."""
    text = _UUID.sub(lambda m: m.group(0)[:8], text)
    return text.replace(";", ",").replace("#", "no.").replace("\n", " ")


def to_sequence_diagram(title: str, entries: list[TimelineEntry]) -> str:
    lines = [
        "sequenceDiagram",
        f"    title {_clean(title)}",
        "    participant POS",
        "    participant Switch as Electrum switch",
        "    participant Provider",
    ]
    for entry in entries:
        text = _clean(entry.text)
        arrow = _ARROWS.get(entry.actor)
        if arrow is not None:
            lines.append(f"    {arrow}: {text}")
        elif entry.actor == "state":
            lines.append(f"    Note over POS: {text.replace(' -> ', ' to ')}")
        elif entry.actor == "host":
            lines.append(f"    Note left of POS: host: {text}")
        else:
            lines.append(f"    Note over POS: {text}")
    return "\n".join(lines) + "\n"
