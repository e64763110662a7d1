"""Write the sync twin of each async module: the async code is the one source of both.

    python scripts/unasync.py           # (re)write every generated module
    python scripts/unasync.py --check   # exit 1, naming each stale module, if any would change

The rewrite works on tokens, as httpcore's ``scripts/unasync.py`` does: ``async`` and ``await``
are dropped from the code, and the names in ``NAMES`` become their sync twins in code, strings
and comments. Other prose differs between the twins only through the exact pairs in ``TEXT``.
Names in import lists are put back in order, and the result goes through ``ruff check --select
I --fix`` and ``ruff format`` when ruff is installed, so the generated module is lint- and
format-clean; ``--check`` renders the same way before comparing. Anything async left over (a
name with no twin in ``NAMES``, prose that still says async or await) stops the script with
the place to fix rather than producing a sync module that is not sync.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (async source, generated sync module), relative to the repository root.
TWINS: tuple[tuple[str, str], ...] = (
    ("voucher_core/drivers/async_driver.py", "voucher_core/drivers/driver.py"),
)

# Code names (identifiers and attributes) and their sync twins.
NAMES: dict[str, str] = {
    "AsyncDriver": "Driver",
    "AsyncTransport": "Transport",
    "AsyncAdviceQueue": "AdviceQueue",
    "AsyncTransactionJournal": "TransactionJournal",
    "AsyncJournalQueue": "JournalQueue",
    "asleep": "sleep",
    "aclose": "close",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "StopAsyncIteration": "StopIteration",
}

# Prose that differs between the twins: each async text must occur in the source.
TEXT: tuple[tuple[str, str], ...] = (
    (
        '"""The asyncio driver: runs each sale over an async transport, queue and journal.\n\n'
        "This module is the one source of both drivers: ``scripts/unasync.py`` writes the sync\n"
        "``Driver`` (``voucher_core/drivers/driver.py``) from it, so edit here and run\n"
        '``make unasync``.\n"""\n',
        '"""The synchronous driver: runs each sale over a blocking transport, queue and '
        'journal."""\n',
    ),
)

HEADER = (
    "# Generated from {source} by scripts/unasync.py: do not edit it by hand.\n"
    "# Edit the async module and run `make unasync`; `make lint` fails while this file is stale.\n"
)

KEYWORDS = frozenset({"async", "await"})
ASYNC_CODE = re.compile(r"^(async|await|asyncio|Async[A-Z]\w*)$")
ASYNC_PROSE = re.compile(r"\b(async|await|asyncio)\b|\bAsync[A-Z]")
NAME_IN_PROSE = re.compile(r"\b(" + "|".join(map(re.escape, NAMES)) + r")\b")
MEMBER = re.compile(r"[A-Za-z_]\w*( as [A-Za-z_]\w*)?")
IMPORT_LIST = re.compile(r"^(from \S+ import \(\n)(.*?)(^\)\n)", flags=re.M | re.S)


class UnasyncError(Exception):
    """The source cannot be rewritten as it stands: the message says where and why."""


def unasync(source: str, *, source_name: str, prose: tuple[tuple[str, str], ...] = TEXT) -> str:
    """The sync twin of ``source`` (the text of the async module ``source_name``), its
    prose rewritten by the exact pairs in ``prose``."""
    text = source
    for async_text, sync_text in prose:
        if async_text not in text:
            raise UnasyncError(
                f"{source_name}: a text that scripts/unasync.py rewrites is gone; "
                f"update its TEXT pair:\n{async_text}"
            )
        text = text.replace(async_text, sync_text)
    text = _sort_import_lists(_rewrite_code(text))
    _refuse_leftovers(text, source_name)
    return HEADER.format(source=source_name) + text


def _rewrite_code(text: str) -> str:
    """Drop ``async``/``await`` from the code; rename ``NAMES`` in code, strings and comments."""
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in ``text``
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        start = offsets[token.start[0] - 1] + token.start[1]
        end = offsets[token.end[0] - 1] + token.end[1]
        if token.type == tokenize.NAME and token.string in KEYWORDS:
            while text[end] == " ":
                end += 1  # the keyword goes with the space after it
            edits.append((start, end, ""))
        elif token.type == tokenize.NAME and token.string in NAMES:
            edits.append((start, end, NAMES[token.string]))
        elif token.type in (tokenize.STRING, tokenize.COMMENT):
            renamed = NAME_IN_PROSE.sub(lambda match: NAMES[match.group(0)], token.string)
            if renamed != token.string:
                edits.append((start, end, renamed))
    for start, end, replacement in reversed(edits):  # back to front keeps offsets valid
        text = text[:start] + replacement + text[end:]
    return text


def _member_key(name: str) -> tuple[int, str, str]:
    """isort's order by type, as ruff applies it: constants, classes, then the rest."""
    bare = name.split(" as ", maxsplit=1)[0]
    kind = 0 if bare.isupper() and len(bare) > 1 else 1 if bare[:1].isupper() else 2
    return kind, bare.lower(), bare


def _sort_import_lists(text: str) -> str:
    """Renames move names within ``from x import (...)`` lists: put each back in order."""

    def sort(match: re.Match[str]) -> str:
        members = [line.strip().rstrip(",") for line in match.group(2).splitlines()]
        if not all(MEMBER.fullmatch(member) for member in members):
            return match.group(0)  # comments or odd layout: leave it to ruff
        body = "".join(f"    {member},\n" for member in sorted(members, key=_member_key))
        return match.group(1) + body + match.group(3)

    return IMPORT_LIST.sub(sort, text)


def _refuse_leftovers(text: str, source_name: str) -> None:
    header_lines = HEADER.count("\n")
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        where = f"{source_name}, sync twin line {token.start[0] + header_lines}"
        if token.type == tokenize.NAME:
            if ASYNC_CODE.search(token.string) is not None:
                raise UnasyncError(
                    f"{where}: `{token.string}` has no sync twin; "
                    "add it to NAMES in scripts/unasync.py"
                )
        elif token.type in (tokenize.STRING, tokenize.COMMENT):
            match = ASYNC_PROSE.search(token.string)
            if match is not None:
                raise UnasyncError(
                    f"{where}: the text still says `{match.group(0)}`; "
                    "add a TEXT pair to scripts/unasync.py"
                )


def _ruff() -> list[str] | None:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    return [found] if found is not None else None


def formatted(code: str, *, filename: str, root: Path) -> str:
    """``code`` with its imports sorted and formatted by ruff under ``root``'s settings, or
    as it is when ruff is not installed (the rewrite itself keeps this repository's twins
    formatted; ruff covers an edit that would not be)."""
    ruff = _ruff()
    if ruff is None:
        return code
    for step in (
        ["check", "--select", "I", "--fix-only", "--exit-zero", "--quiet"],
        ["format", "--quiet"],
    ):
        done = subprocess.run(
            [*ruff, *step, "--stdin-filename", filename, "-"],
            input=code,
            capture_output=True,
            text=True,
            cwd=root,
            check=False,
        )
        if done.returncode != 0:
            raise UnasyncError(
                f"ruff {step[0]} failed on the output for {filename}:\n{done.stderr}"
            )
        code = done.stdout
    return code


def render(source: str, target: str, *, root: Path = ROOT) -> str:
    """What the generated module ``target`` must hold, from the async module ``source``."""
    text = (root / source).read_text(encoding="utf-8")
    return formatted(unasync(text, source_name=source), filename=target, root=root)


def stale(*, root: Path = ROOT, twins: tuple[tuple[str, str], ...] = TWINS) -> list[str]:
    """The generated modules under ``root`` that differ from what their source gives now."""
    out_of_date = []
    for source, target in twins:
        path = root / target
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != render(source, target, root=root):
            out_of_date.append(target)
    return out_of_date


def write(*, root: Path = ROOT, twins: tuple[tuple[str, str], ...] = TWINS) -> list[str]:
    """(Re)write every generated module that is stale. Returns those written."""
    written = []
    for source, target in twins:
        path = root / target
        wanted = render(source, target, root=root)
        if not path.exists() or path.read_text(encoding="utf-8") != wanted:
            path.write_text(wanted, encoding="utf-8")
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a generated module is stale"
    )
    args = parser.parse_args(argv)
    try:
        if not args.check:
            for target in write():
                print(f"wrote {target}")
            return 0
        out_of_date = stale()
        for source, target in TWINS:
            if target not in out_of_date:
                continue
            print(
                f"{target} is stale: it is not what scripts/unasync.py generates from {source}; "
                "run `make unasync`",
                file=sys.stderr,
            )
            path = ROOT / target
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            wanted = render(source, target)
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                wanted.splitlines(keepends=True),
                target,
                f"{target} (generated)",
            )
            sys.stderr.writelines(list(diff)[:60])
        return 1 if out_of_date else 0
    except UnasyncError as error:
        print(f"unasync: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
