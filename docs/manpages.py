"""Man pages for every debpulse-* command: the options from the command's
own argparse definitions (argparse-manpage), the DESCRIPTION, EXAMPLES and
the rest from a hand-written docs/man/<command>.txt.

    python docs/manpages.py            # (re)write man/<command>.1
    python docs/manpages.py --check    # exit 1 when a page is missing or differs

The pages are committed (man/, installed to share/man/man1 with the
package) and a test runs --check, so that a page cannot drift from its
command.  The .txt files use argparse-manpage's include format: a line
[SECTION] (or [>SECTION] to append) and roff text below it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAND_WRITTEN = ROOT / "docs" / "man"
OUT = ROOT / "man"
# The date on every page: the release the pages describe, not the day they
# were generated (the committed pages must be reproducible).
DATE = "2026-11"
# Commands whose first word picks between parsers of their own (none now:
# every command's subcommands are subparsers of one parser, walked below).
VARIANTS: dict[str, list[list[str]]] = {}


class _Captured(Exception):
    pass


def commands() -> dict[str, str]:
    """Console script -> "module:function", from pyproject.toml."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return {name: target for name, target in sorted(scripts.items()) if name.startswith("debpulse-")}


@contextlib.contextmanager
def _capturing() -> Iterator[None]:
    """parse_args hands the parser over instead of parsing: what a command
    builds is its real definition, with no need to run it."""
    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> argparse.Namespace:
        raise _Captured(self)

    saved = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign,assignment]
    argparse.ArgumentParser.parse_known_args = capture  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = saved  # type: ignore[method-assign]


def parsers(name: str, target: str) -> list[argparse.ArgumentParser]:
    module, function = target.split(":")
    main = getattr(importlib.import_module(module), function)
    found = []
    with _capturing():
        for argv in VARIANTS.get(name, [[]]):
            try:
                main(argv)
            except _Captured as got:
                found.append(got.args[0])
    if not found:
        raise RuntimeError(f"{name}: its main() never parsed its arguments")
    return found


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option a parser and its subcommands take."""
    out: set[str] = set()
    for action in parser._actions:  # noqa: SLF001 (argparse has no public walk)
        out.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub in action.choices.values():
                out |= option_strings(sub)
    return out


def page(name: str, target: str) -> str:
    from argparse_manpage.manpage import Manpage

    include = HAND_WRITTEN / f"{name}.txt"
    if not include.is_file():
        raise FileNotFoundError(f"{include.relative_to(ROOT)}: no hand-written DESCRIPTION and EXAMPLES for {name}")
    text = ""
    for n, parser in enumerate(parsers(name, target)):
        _once_per_page(parser)
        # The one-line description names the page; the epilog's examples and
        # pointer are in the hand-written part.
        summary = (parser.description or "").strip().rstrip(".")
        parser.description = parser.epilog = None
        parser.prog = parser.prog if n else name
        manpage = Manpage(parser, _data={
            "project_name": "debpulse", "version": _version(), "manual_title": "debpulse manual",
            "manual_section": 1, "date": DATE, "include": str(include) if n == 0 else None,
            "description": summary[:1].lower() + summary[1:],
        })
        body = str(manpage)
        if n == 0:
            text = body
        else:  # a further parser of the same command: its options as a section of the page
            options = body[body.index(".SH OPTIONS"):] if ".SH OPTIONS" in body else ""
            text += f'.SH "{parser.prog.upper()}"\n' + options.replace(".SH OPTIONS", ".SS OPTIONS", 1)
    return text


def _once_per_page(parser: argparse.ArgumentParser) -> None:
    """A subcommand takes its command's options after it too (cli.after_command:
    their dest ends in "__after_command"); the page lists them once, under the
    command, rather than again under every subcommand."""
    for action in parser._actions:  # noqa: SLF001
        if not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            continue
        for sub in action.choices.values():
            for copy in [a for a in sub._actions if a.dest.endswith("__after_command")]:  # noqa: SLF001
                sub._remove_action(copy)  # noqa: SLF001
                for group in sub._action_groups:  # noqa: SLF001
                    if copy in group._group_actions:  # noqa: SLF001
                        group._group_actions.remove(copy)  # noqa: SLF001
            sub._action_groups = [g for g in sub._action_groups if g._group_actions]  # noqa: SLF001


def _version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only check that every page is there and current")
    args = p.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    stale = []
    for name, target in commands().items():
        text = page(name, target)
        path = OUT / f"{name}.1"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        elif not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python docs/manpages.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
