"""The configuration reference cannot drift from the code: every table a
program accepts is declared, readers take types and defaults from the
declarations, each program a table names as its reader reads it, the
example configurations hold only declared keys of the declared types, and
the built reference lists exactly the declared tables and keys."""

from __future__ import annotations

import ast
import html
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from docutils.nodes import make_id
from testbus import ROOT, free_port

from debpulse.emitters.config import (
    KNOWN_TABLES,
    Derived,
    Key,
    Required,
    Section,
    Table,
    Values,
    declared_tables,
    top_tables,
)
from debpulse.emitters.errors import ConfigError

TABLES = declared_tables()
COMMANDS = {name for name in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
            if name.startswith("debpulse-")}
# What each command needs on its command line to get as far as reading its
# configuration (before `--config`; after it, what follows `--`).
ARGV: dict[str, tuple[list[str], list[str]]] = {
    "debpulse-relay": ([], []), "debpulse-logger": (["--message", "x"], []), "debpulse-tail": ([], []),
    "debpulse-dns": (["lookup"], []), "debpulse-trigger": (["--topic", "x"], ["--", "true"]),
    "debpulse-bridge": ([], []), "debpulse-irc": (["--check"], []), "debpulse-notify": (["--check"], []),
    "debpulse-desktop": (["--check"], []), "debpulse-archive": ([], []), "debpulse-web": ([], []),
    "debpulse-dak": (["--once"], []), "debpulse-wanna-build": (["--once"], []),
    "debpulse-debbugs": (["maildir"], []), "debpulse-git": (["webhook"], []),
}
TAKES_NO_CONFIGURATION = {"debpulse-demo": "writes a configuration of its own in its temporary directory"}


def run(argv: list[str], tmp: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A command as installed, with a state and runtime directory of its own."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env={
        **os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp),
        "DEBPULSE_STATE_DIR": str(tmp / "state"), "DEBPULSE_RUNTIME_DIR": str(tmp / "run"), **(env or {})})


# -- the registry ---------------------------------------------------------------------

def test_known_tables_are_the_declared_ones() -> None:
    """KNOWN_TABLES (what every program accepts) is spelled out for speed;
    it must say what the declarations say."""
    assert KNOWN_TABLES == top_tables(TABLES)
    assert {"bus", "dns.announce", "irc.channels", "rule"} <= set(TABLES)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_declaration_is_complete(name: str) -> None:
    table = TABLES[name]
    assert table.doc and table.read_by, name
    for reader in table.read_by:
        assert not reader.startswith("debpulse-") or reader in COMMANDS, f"[{name}] read by {reader}: no such command"
    for key_name, key in table.keys.items():
        assert key.help, f"[{name}] {key_name} says nothing"
        default = key.default
        if not isinstance(default, Derived | Required) and default is not None:
            assert isinstance(default, key.kinds), f"[{name}] {key_name}: default {default!r} is not {key.kinds}"
        if key.sub is not None:
            assert key.sub.name in TABLES


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_program_refuses_an_unknown_table(command: str, tmp_path: Path) -> None:
    if command in TAKES_NO_CONFIGURATION:
        pytest.skip(f"{command} {TAKES_NO_CONFIGURATION[command]}")
    config = tmp_path / "debpulse.toml"
    config.write_text("[no_such_table]\nkey = 1\n")
    before, after = ARGV[command]
    done = run([command, *before, "--config", str(config), *after], tmp_path,
               {"DEBPULSE_GIT_WEBHOOK_TOKEN": "x"})
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"{command}: {config}: unknown table [no_such_table]\n", done.stderr


def test_readers_take_types_and_defaults_from_the_declarations() -> None:
    """No table is read around its declaration: no `config.section(...)`,
    no `check_keys`, no `section.get("key", type, default)` outside
    emitters/config.py."""
    found = []
    for path in sorted(ROOT.glob("adapters/**/*.py")) + sorted(ROOT.glob("emitters/**/*.py")) + \
            sorted(ROOT.glob("consumers/**/*.py")):
        if path == ROOT / "emitters" / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            attr, args = node.func.attr, node.args
            typed_get = attr == "get" and len(args) >= 2 and _is_type(args[1])
            if attr in ("section", "check_keys", "strings") or typed_get:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{attr}(...)")
    assert not found, "\n".join(found)


def _is_type(node: ast.expr) -> bool:
    names = {"str", "int", "float", "bool", "list", "dict"}
    if isinstance(node, ast.Tuple):
        return bool(node.elts) and all(_is_type(e) for e in node.elts)
    return isinstance(node, ast.Name) and node.id in names


# -- who reads what ---------------------------------------------------------------------

BAD = "no_such_key = 1\n"
NETWORK = '[irc.networks.x]\nhost = "irc.example.org"\n'
CHANNEL = '[[irc.channels]]\nname = "#x"\n'
RULE = '[[rule]]\ntopics = ["dak"]\nto = ["desktop"]\n'
# A configuration, or a rule file, holding each table with a key it does not have.
IN_CONFIGURATION = {
    "dns": '[subscribe]\nsrv_domains = ["example.org"]\n[dns]\n' + BAD,  # asked only for SRV domains
    "irc.networks.NAME": NETWORK + BAD,
    "irc.channels": NETWORK + CHANNEL + BAD,
    "criteria": NETWORK + CHANNEL + "include = { no_such_key = 1 }\n",
}
IN_RULE_FILE = {"rule file": BAD + RULE, "rule": RULE + BAD, "rule.digest": RULE + "digest = { no_such_key = 1 }\n",
                "criteria": RULE + "exclude = { no_such_key = 1 }\n"}
# What each command needs beyond its ARGV to get to the tables it reads.
BASE = {"debpulse-irc": NETWORK}
RUN_ARGV: dict[str, list[str]] = {
    "debpulse-dak": ["--maildir", "{tmp}/Maildir", "--once"],
    "debpulse-wanna-build": ["--once", "--arch", "amd64"],
    "debpulse-debbugs": ["--no-soap", "maildir", "{tmp}/Maildir"],
    "debpulse-git": ["webhook", "--listen", "127.0.0.1:0"],
    "debpulse-tail": ["--timeout", "1"],
    "debpulse-irc": [], "debpulse-notify": ["--rules", "{tmp}/rules"], "debpulse-desktop": ["--rules", "{rules}"],
    "debpulse-dns": ["lookup", "example.org"],
}
SAYS = {"rule.digest": "digest is a table of every (seconds) and/or count"}
NOT_PROBED = {("subscribe", "debpulse-archive"): "reads [subscribe] once connected to its database (tests/archive)"}
PAIRS = [(t.name, reader) for t in TABLES.values() for reader in t.read_by if reader.startswith("debpulse-")]


@pytest.mark.parametrize(("table", "command"), PAIRS, ids=[f"{t}-{c}" for t, c in PAIRS])
def test_each_named_reader_reads_the_table(table: str, command: str, tmp_path: Path) -> None:
    """The program a table names as its reader refuses a key the table does
    not have: it does read the table, through its declaration."""
    if (table, command) in NOT_PROBED:
        pytest.skip(NOT_PROBED[table, command])
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    rule_file = rules_dir / "alice.toml"
    if TABLES[table].own_file is not None or (table == "criteria" and command != "debpulse-irc"):
        rule_file.write_text(IN_RULE_FILE[table])
        text = ""
    else:
        rule_file.write_text(RULE)
        text = IN_CONFIGURATION.get(table, f"[{table}]\n{BAD}")
    if not text.startswith("[irc"):
        text = BASE.get(command, "") + text
    config = tmp_path / "debpulse.toml"
    config.write_text(text)
    argv = RUN_ARGV.get(command, ARGV[command][0])
    if command == "debpulse-relay":
        argv = ["--publish", f"tcp://127.0.0.1:{free_port()}", "--replay", f"tcp://127.0.0.1:{free_port()}"]
    if command == "debpulse-dns" and table == "dns.announce":
        argv = ["announce", "--domain", "example.org", "--server", "127.0.0.1:1"]
    argv = [a.format(tmp=tmp_path, rules=rule_file) for a in argv]
    done = run([command, *argv, "--config", str(config), *ARGV[command][1]], tmp_path,
               {"DEBPULSE_GIT_WEBHOOK_TOKEN": "x"})
    says = SAYS.get(table, "unknown key 'no_such_key'")
    assert done.returncode == 2 and says in done.stderr, (done.returncode, done.stderr[-2000:])


# -- the examples ---------------------------------------------------------------------------

EXAMPLES = sorted(ROOT.glob("deploy/examples/**/*.toml")) + sorted(ROOT.glob("deploy/dns/*.toml.example"))
RULE_FILES = {"desktop-notify.toml"}


def _read(table: Table, data: Any, name: str, where: str, parent: Values | None, seen: set[tuple[str, str]]) -> None:
    """Every key of `data` read through `table`'s declaration, and the tables in it."""
    assert isinstance(data, dict), f"{where}: [{name}] is not a table"
    values = table.wrap(Section(name, data, where), parent)
    for key_name in data:
        key: Key = table.keys[key_name]
        values[key_name]
        seen.add((table.name, key_name))
        sub = key.sub
        if sub is None:
            continue
        if key.named:
            inner = [(f"{name}.{n}", t) for n, t in data[key_name].items()]
        elif isinstance(data[key_name], list):
            inner = [(f"{sub.name} {i}", t) for i, t in enumerate(data[key_name], 1)]
        else:
            inner = [(sub.name, data[key_name])]
        for inner_name, inner_data in inner:
            _read(sub, inner_data, inner_name, where, values, seen)


def read_example(path: Path, seen: set[tuple[str, str]]) -> None:
    """Every key of an example file read through its declaration, as its
    program reads it; `seen` gets each (table, key) read."""
    data = tomllib.loads(path.read_text())
    where = str(path.relative_to(ROOT))
    if path.parent.name == "notify.d" or path.name in RULE_FILES:
        _read(TABLES["rule file"], data, "rule file", where, None, seen)
        return
    for name, value in data.items():
        table = TABLES[name]
        for n, t in enumerate(value if table.array else [value], 1):
            _read(table, t, f"{name} {n}" if table.array else name, where, None, seen)


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(ROOT)) for p in EXAMPLES])
def test_example_holds_only_declared_keys_of_the_declared_types(path: Path) -> None:
    seen: set[tuple[str, str]] = set()
    try:
        read_example(path, seen)
    except ConfigError as exc:
        pytest.fail(str(exc))
    assert len(seen) >= 3, seen


def test_the_examples_cover_the_tables_inside_tables() -> None:
    """The test above walked into every kind of table that is in another
    (or in an array, or in a file of its own)."""
    seen: set[tuple[str, str]] = set()
    for path in EXAMPLES:
        read_example(path, seen)
    tables = {t for t, _ in seen}
    assert {"dns.announce", "irc.networks.NAME", "irc.channels", "criteria", "rule", "rule.digest",
            "signer"} <= tables, tables


# -- the page ------------------------------------------------------------------------------

def test_reference_lists_exactly_the_declared_tables_and_keys(built_manual: Path) -> None:
    page = (built_manual / "configuration.html").read_text()
    listed: dict[str, list[str]] = {}
    for part in page.split("<section id=")[1:]:
        label = part[1:part.index('"', 1)]
        body = part[part.find("<tbody>"):part.find("</tbody>")]
        listed[label] = [html.unescape(k) for k in re.findall(
            r'<tr class="row-(?:odd|even)"><td><p><code[^>]*><span class="pre">([^<]+)</span>', body)]
    declared = {"config-" + make_id(t.name): list(t.keys) for t in TABLES.values()}
    listed = {label: keys for label, keys in listed.items() if label.startswith("config-")}
    assert listed == declared
