"""Draw the state diagram from :data:`voucher_core.table.TRANSITIONS`.

``docs/state-diagram.md`` is this module's output; a test regenerates it and fails when the
file differs, so the documentation always shows the table the code runs.
"""

from __future__ import annotations

from voucher_core.table import TERMINAL, TRANSITIONS, Rule, Send, State

__all__ = ["FORMATS", "render", "to_dot", "to_mermaid"]


def _label(rule: Rule) -> str:
    parts = [rule.event.value]
    if rule.guard is not None:
        parts[0] += f" [{rule.guard.value}]"
    if rule.sends is not Send.NOTHING:
        parts.append(f"sends {rule.sends.value}")
    if rule.flags_reconciliation:
        parts.append("flags reconciliation")
    return " / ".join(parts)


def _drawn() -> list[Rule]:
    # Internal transitions (repeated acknowledgements) change nothing and are left out.
    return [rule for rule in TRANSITIONS if rule.dest is not None]


def to_mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {State.PROVISIONING.value}: sends provisionVoucher"]
    for rule in _drawn():
        assert rule.dest is not None
        lines.append(f"    {rule.source.value} --> {rule.dest.value}: {_label(rule)}")
    lines.extend(f"    {state.value} --> [*]" for state in State if state in TERMINAL)
    return "\n".join(lines) + "\n"


def to_dot() -> str:
    lines = [
        "digraph transaction {",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        '    start [shape=point, label=""];',
    ]
    lines.extend(f"    {state.value} [peripheries=2];" for state in State if state in TERMINAL)
    lines.append(f'    start -> {State.PROVISIONING.value} [label="sends provisionVoucher"];')
    for rule in _drawn():
        assert rule.dest is not None
        label = _label(rule).replace('"', '\\"')
        lines.append(f'    {rule.source.value} -> {rule.dest.value} [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


FORMATS = {"mermaid": to_mermaid, "dot": to_dot}


def render(fmt: str) -> str:
    """The diagram in ``fmt`` ("mermaid" or "dot")."""
    try:
        return FORMATS[fmt]()
    except KeyError:
        raise ValueError(f"unknown diagram format {fmt!r}; choose from {sorted(FORMATS)}") from None
