"""The documentation's claims, checked against the code.

Covered here: the API reference lists every public name and nothing else; every relative link
resolves; every default in a table of docs/configuration.md marked ``<!-- defaults: ... -->``
(and every "``Policy.field`` (default N)" phrase anywhere) is the code's own; the quickstart's
commands are the README's and parse; every ``voucher ...`` subcommand the docs name exists; the
index lists every page.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import random
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from voucher_adapters.cli.main import build_parser
from voucher_adapters.cli.scenarios import SCENARIOS
from voucher_core import DriverSettings
from voucher_core import policy as policy_module
from voucher_core.policy import (
    DUAL,
    BackoffPolicy,
    DecisionPolicy,
    Messaging,
    ProviderProfile,
    RetryPolicy,
)
from voucher_core.transaction import random_id

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))
ALL_MARKDOWN = [README, *PAGES]

# Every public module and package the API reference must cover, in its order.
API_MODULES = (
    "voucher_core",
    "voucher_core.policy",
    "voucher_core.ports",
    "voucher_core.drivers",
    "voucher_core.transaction",
    "voucher_core.replies",
    "voucher_core.table",
    "voucher_core.commands",
    "voucher_core.errors",
    "voucher_core.reconciliation",
    "voucher_core.snapshot",
    "voucher_core.wire",
    "voucher_core.messages",
    "voucher_core.diagram",
    "voucher_adapters.clock",
    "voucher_adapters.errors",
    "voucher_adapters.stores.memory",
    "voucher_adapters.stores.sqlite",
    "voucher_adapters.stores.postgres",
    "voucher_adapters.transports.http",
    "voucher_adapters.transports.tls",
    "voucher_adapters.simulator.server",
    "voucher_adapters.simulator",
    "voucher_adapters.testing",
    "voucher_adapters.forwarder",
)

# What a default written in configuration.md may name besides Python literals.
DEFAULT_NAMES: dict[str, object] = {
    "RetryPolicy": RetryPolicy,
    "DecisionPolicy": DecisionPolicy,
    "BackoffPolicy": BackoffPolicy,
    "DriverSettings": DriverSettings,
    "Messaging": Messaging,
    "DUAL": DUAL,
    "random_id": random_id,
    "random": random,
    "time": time,
}
REQUIRED = "required"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", flags=re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}  # unlabelled blocks are output


# -- reading markdown ---------------------------------------------------------------------------


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced code block as (language, body)."""
    return [(match.group(1).strip(), match.group(2)) for match in FENCE.finditer(text)]


def prose(text: str) -> str:
    """The text without fenced blocks and inline code (where links are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def shell_code(text: str) -> list[str]:
    """Every piece of code a reader could type: shell blocks and inline code spans."""
    pieces = [body for language, body in fenced_blocks(text) if language in SHELL_LANGUAGES]
    pieces += INLINE_CODE.findall(FENCE.sub("", text))
    return pieces


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def unquote(cell: str) -> str:
    return cell[1:-1] if len(cell) > 1 and cell[0] == cell[-1] == "`" else cell


def table_after(lines: list[str], start: int, *, text_between: bool = False) -> list[list[str]]:
    """The data rows of the first table at or after line ``start`` (0-based); only blank lines
    may come before it, unless ``text_between``."""
    index = start
    while index < len(lines) and not lines[index].startswith("|"):
        assert text_between or not lines[index].strip(), f"line {index + 1}: expected a table"
        assert not lines[index].startswith("#"), f"line {index + 1}: a heading but no table"
        index += 1
    rows = []
    while index < len(lines) and lines[index].startswith("|"):
        rows.append(cells(lines[index]))
        index += 1
    assert len(rows) > 2, f"line {start}: a table needs a header, a rule and rows"
    assert set(rows[1][0]) <= set("-: "), f"line {start}: the second table row is not a rule"
    return rows[2:]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for match in re.finditer(r"^#{1,6} +(.+)$", FENCE.sub("", text), flags=re.M):
        base = slug(match.group(1))
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


# -- the API reference ----------------------------------------------------------------------


def api_sections() -> dict[str, list[list[str]]]:
    """docs/api.md as module name -> its table rows."""
    lines = (DOCS / "api.md").read_text().splitlines()
    sections: dict[str, list[list[str]]] = {}
    for index, line in enumerate(lines):
        match = re.fullmatch(r"## `([\w.]+)`", line)
        if match:
            assert match.group(1) not in sections, f"{match.group(1)} has two sections"
            sections[match.group(1)] = table_after(lines, index + 1, text_between=True)
    return sections


def test_the_api_reference_has_one_section_per_public_module() -> None:
    assert list(api_sections()) == list(API_MODULES)


@pytest.mark.parametrize("module_name", API_MODULES)
def test_the_api_reference_lists_exactly_what_the_module_exports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = list(module.__all__)
    rows = api_sections().get(module_name, [])
    documented = [unquote(row[0]) for row in rows]
    assert len(documented) == len(set(documented)), f"{module_name}: a name is listed twice"
    missing = sorted(set(exported) - set(documented))
    stale = sorted(set(documented) - set(exported))
    assert not missing, f"docs/api.md lacks {module_name}.{', '.join(missing)}"
    assert not stale, f"docs/api.md lists {', '.join(stale)}, not in {module_name}.__all__"
    for row in rows:
        assert len(row) == 2, f"{module_name}: row {row} is not `name | description`"
        assert len(row[1]) > 10, f"{module_name}.{unquote(row[0])} has no real description"
    for name in exported:  # an __all__ entry that does not resolve would be a doc of nothing
        assert hasattr(module, name), f"{module_name}.__all__ names a missing {name}"


# -- links ------------------------------------------------------------------------------------


def links(path: Path) -> Iterator[str]:
    for match in re.finditer(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose(path.read_text())):
        yield match.group(1)


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target} (no file {resolved})")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    return broken


@pytest.mark.parametrize("path", ALL_MARKDOWN, ids=lambda path: path.name)
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_link_check_sees_links_and_catches_a_broken_one(tmp_path: Path) -> None:
    assert sum(1 for path in ALL_MARKDOWN for _ in links(path)) > 30
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A heading\n")
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading) [no](missing.md) [no](there.md#nope)\n"
        "`[not a link](missing.md)`\n"
    )
    assert [entry.split(" ")[0] for entry in broken_links(page)] == [
        "missing.md",
        "there.md#nope",
    ]


# -- defaults in configuration.md ---------------------------------------------------------------


@attrs.frozen
class Parameter:
    required: bool
    default: Any = None


def parameters_of(target: str) -> dict[str, Parameter]:
    """What a marker names: a Python class or function, or a ``voucher`` subcommand."""
    if target.startswith("voucher "):
        return cli_options(target.split()[1:])
    module_name, _, name = target.rpartition(".")
    obj = getattr(importlib.import_module(module_name), name)
    if attrs.has(obj):
        return {field.name: attrs_parameter(field) for field in attrs.fields(obj)}
    signature = inspect.signature(obj)
    return {
        p.name: Parameter(p.default is inspect.Parameter.empty, p.default)
        for p in signature.parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }


def attrs_parameter(field: attrs.Attribute[Any]) -> Parameter:
    if field.default is attrs.NOTHING:
        return Parameter(required=True)
    factory = getattr(field.default, "factory", None)
    if callable(factory):  # an attrs.Factory: the default is what it makes
        return Parameter(False, factory())
    return Parameter(False, field.default)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_parser(words: list[str]) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in words:
        choices = subcommands(parser)
        assert word in choices, f"`voucher {' '.join(words)}`: no subcommand {word!r}"
        parser = choices[word]
    return parser


def cli_options(words: list[str]) -> dict[str, Parameter]:
    options = {}
    for action in cli_parser(words)._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        options[action.option_strings[-1]] = Parameter(action.required, action.default)
    return options


def documented_default(cell: str) -> Parameter:
    text = unquote(cell)
    if text == REQUIRED:
        return Parameter(required=True)
    try:
        return Parameter(False, ast.literal_eval(text))
    except (ValueError, SyntaxError):
        pass
    node = ast.parse(text, mode="eval")
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    assert names <= set(DEFAULT_NAMES), f"default {cell} names something unknown: {names}"
    return Parameter(False, eval(compile(node, "<default>", "eval"), dict(DEFAULT_NAMES)))


def same(documented: Parameter, actual: Parameter) -> bool:
    if documented.required or actual.required:
        return documented.required == actual.required
    a, b = documented.default, actual.default
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    return bool(a == b)


@attrs.frozen
class DefaultsTable:
    line: int
    targets: tuple[str, ...]
    rows: tuple[tuple[str, str], ...]


def defaults_tables() -> list[DefaultsTable]:
    lines = (DOCS / "configuration.md").read_text().splitlines()
    tables = []
    for index, line in enumerate(lines):
        match = re.fullmatch(r"<!-- defaults: (.+) -->", line.strip())
        if match:
            targets = tuple(t.strip() for t in match.group(1).split(","))
            rows = tuple((unquote(r[0]), r[1]) for r in table_after(lines, index + 1))
            tables.append(DefaultsTable(index + 1, targets, rows))
    return tables


def test_configuration_marks_the_settings_it_promises() -> None:
    targets = {target for table in defaults_tables() for target in table.targets}
    for expected in (
        "voucher_core.policy.RetryPolicy",
        "voucher_core.policy.ProviderProfile",
        "voucher_core.policy.DecisionPolicy",
        "voucher_core.policy.BackoffPolicy",
        "voucher_core.drivers.shared.DriverSettings",
        "voucher_adapters.transports.http.HttpTransport",
        "voucher_adapters.transports.http.BasicAuth",
        "voucher_adapters.transports.http.OAuth2ClientCredentials",
        "voucher_adapters.stores.sqlite.SqliteAdviceQueue",
        "voucher_adapters.stores.sqlite.SqliteJournal",
        "voucher_adapters.stores.postgres.PostgresAdviceQueue",
        "voucher_adapters.stores.postgres.PostgresJournal",
        "voucher_adapters.simulator.server.create_app",
        "voucher_adapters.simulator.server.serve",
        "voucher provision",
        "voucher queue drain",
        "voucher recover",
        "voucher serve",
    ):
        assert expected in targets, f"configuration.md has no defaults table for {expected}"


@pytest.mark.parametrize("table", defaults_tables(), ids=lambda table: ", ".join(table.targets))
def test_every_documented_default_is_the_codes(table: DefaultsTable) -> None:
    where = f"docs/configuration.md line {table.line}"
    signatures = {target: parameters_of(target) for target in table.targets}
    rows = dict(table.rows)
    assert len(rows) == len(table.rows), f"{where}: a name is listed twice"
    for target, parameters in signatures.items():
        missing = sorted(set(parameters) - set(rows))
        assert not missing, f"{where}: {target} also takes {', '.join(missing)}"
    for name, cell in table.rows:
        takers = {t: p[name] for t, p in signatures.items() if name in p}
        assert takers, f"{where}: none of {', '.join(table.targets)} takes {name}"
        documented = documented_default(cell)
        for target, actual in takers.items():
            assert same(documented, actual), (
                f"{where}: {target} {name} is documented as {cell}, "
                f"but the code says {REQUIRED if actual.required else repr(actual.default)}"
            )


def test_the_ready_made_profiles_are_as_documented() -> None:
    lines = (DOCS / "configuration.md").read_text().splitlines()
    start = lines.index("<!-- ready-made profiles -->")
    rows = table_after(lines, start + 1)
    flags = {"yes": True, "no": False}
    documented = {
        unquote(name): (Messaging(unquote(messaging)), flags[retries], flags[advices])
        for name, messaging, retries, advices in rows
    }
    actual = {
        name: (profile.messaging, profile.retries_supported, profile.advices_supported)
        for name in policy_module.__all__
        if isinstance(profile := getattr(policy_module, name), ProviderProfile)
    }
    assert documented == actual


# Phrases such as "`RetryPolicy.max_retries` (default 3)" or "`DecisionPolicy.limit` (300 s by
# default)", anywhere in the README or docs.
PROSE_DEFAULT = re.compile(
    r"`(?P<cls>RetryPolicy|DecisionPolicy|BackoffPolicy)\.(?P<field>\w+)`\s+"
    r"\((?:default (?P<a>[\d.]+)|(?P<b>[\d.]+) s by default)"
)


def test_defaults_stated_in_prose_are_the_codes() -> None:
    classes = {cls.__name__: cls for cls in (RetryPolicy, DecisionPolicy, BackoffPolicy)}
    claims = [
        (path.name, match)
        for path in ALL_MARKDOWN
        for match in PROSE_DEFAULT.finditer(path.read_text())
    ]
    assert len(claims) >= 3, "expected default values stated in prose"
    for page, match in claims:
        field = attrs.fields_dict(classes[match["cls"]])[match["field"]]
        stated = float(match["a"] or match["b"])
        assert stated == field.default, f"{page}: {match.group(0)}; the code says {field.default}"


# -- the quickstart and the README ------------------------------------------------------------


def shell_commands(path: Path) -> list[list[str]]:
    """Each command line of the shell blocks, without comments, split into words."""
    return [
        shlex.split(line, comments=True)
        for language, body in fenced_blocks(path.read_text())
        if language in SHELL_LANGUAGES
        for line in body.splitlines()
        if shlex.split(line, comments=True)
    ]


def test_the_quickstart_starts_with_the_readmes_two_commands() -> None:
    quickstart = [body for _, body in fenced_blocks((DOCS / "quickstart.md").read_text())]
    readme = [body for language, body in fenced_blocks(README.read_text()) if language == "sh"]
    assert quickstart[0] == readme[0], "the quickstart's first block is not the README's"
    assert [shlex.split(line, comments=True) for line in quickstart[0].splitlines()] == [
        ["make", "demo"],
        ["make", "test"],
    ]


def test_every_make_target_in_the_quickstart_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    used = {words[1] for words in shell_commands(DOCS / "quickstart.md") if words[0] == "make"}
    assert used == {"demo", "test"}
    assert used <= targets
    demo = re.search(r"^demo:.*\n\t(.+)$", makefile, flags=re.M)
    assert demo is not None
    assert demo.group(1).endswith("voucher simulate --scenario all")
    assert "`.venv/bin/voucher simulate --scenario all`" in (DOCS / "quickstart.md").read_text()


def test_every_voucher_command_in_the_quickstart_parses() -> None:
    commands = [
        words[1:]
        for words in shell_commands(DOCS / "quickstart.md")
        if words[0] in ("voucher", ".venv/bin/voucher")
    ]
    assert len(commands) >= 8
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"`voucher {shlex.join(argv)}` does not parse")


def test_the_quickstart_counts_the_seed_flows_right() -> None:
    numbers = {"six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
    match = re.search(r"the (\w+) seed flows", (DOCS / "quickstart.md").read_text())
    assert match is not None, "the quickstart no longer says how many seed flows there are"
    assert numbers.get(match.group(1)) == len(SCENARIOS), f"there are {len(SCENARIOS)} flows"


# -- subcommands the docs name ------------------------------------------------------------------


VOUCHER_COMMAND = re.compile(r"(?<![\w./-])(?:\.venv/bin/)?voucher((?:[ \t]+[a-z][a-z-]*)+)")


def unknown_subcommands(code: str) -> list[str]:
    """Each ``voucher word [word]`` in ``code`` whose words are not subcommands."""
    unknown = []
    for match in VOUCHER_COMMAND.finditer(code):
        words = match.group(1).split()
        choices = subcommands(build_parser())
        if words[0] not in choices:
            unknown.append(f"voucher {words[0]}")
            continue
        actions = subcommands(choices[words[0]])
        if actions and len(words) > 1 and words[1] not in actions:
            unknown.append(f"voucher {words[0]} {words[1]}")
    return unknown


def mentioned_commands() -> set[str]:
    found = set()
    for path in ALL_MARKDOWN:
        for code in shell_code(path.read_text()):
            for match in VOUCHER_COMMAND.finditer(code):
                found.add(" ".join(match.group(1).split()[:2]))
    return found


@pytest.mark.parametrize("path", ALL_MARKDOWN, ids=lambda path: path.name)
def test_every_voucher_subcommand_the_docs_name_exists(path: Path) -> None:
    unknown = [bad for code in shell_code(path.read_text()) for bad in unknown_subcommands(code)]
    assert unknown == []


def test_the_subcommand_check_sees_commands_and_catches_a_wrong_one() -> None:
    assert {"queue drain", "recover", "reconcile", "provision", "serve"} <= mentioned_commands()
    assert unknown_subcommands("voucher queue drain --url U") == []
    assert unknown_subcommands("voucher queue flush; voucher frobnicate") == [
        "voucher queue flush",
        "voucher frobnicate",
    ]
    assert unknown_subcommands("voucher-core voucher_core the voucher") == []


# -- the index ----------------------------------------------------------------------------------


def test_the_first_sale_page_runs_as_written() -> None:
    blocks = [body for language, body in fenced_blocks((DOCS / "first-sale.md").read_text())
              if language == "python"]  # fmt: skip
    assert len(blocks) == 3
    namespace: dict[str, object] = {"__name__": "first_sale"}
    exec(compile("".join(blocks), str(DOCS / "first-sale.md"), "exec"), namespace)
    voucher = namespace["voucher"]
    assert voucher.code and voucher.serial_number  # type: ignore[attr-defined]


def test_the_site_builds_every_page_into_the_table_of_contents() -> None:
    index = (DOCS / "index.md").read_text()
    tocs = re.findall(r"```\{toctree\}\n(.*?)```", index, flags=re.S)
    entries = {
        line.strip()
        for toc in tocs
        for line in toc.splitlines()
        if line.strip() and not line.startswith(":")
    }
    pages = {path.stem for path in PAGES if path.name != "index.md"}
    assert entries == pages | {"reference/index"}


def test_the_index_lists_every_page_once() -> None:
    listed = re.findall(r"^- \[[^\]]+\]\(([^)#]+\.md)\)", (DOCS / "index.md").read_text(), re.M)
    pages = sorted(path.name for path in PAGES if path.name != "index.md")
    # The generated API reference has its own index, one folder down.
    assert sorted(listed) == sorted([*pages, "reference/index.md"])
