"""Sphinx directives that write parts of the manual from the code itself,
so that they cannot drift from it:

    ```{debpulse-topics}
    ```

renders the table of every registered message type (topic, the program
that publishes it, what it says, what its body carries), read from the
`debpulse.messages` entry points as `debpulse-tail` reads them.

    ```{debpulse-configuration}
    ```

renders the configuration reference: a section per declared table (who
reads it, then each key with its type, default and meaning), from the
declarations the programs read their configuration with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from debpulse.emitters.config import Key, Table

PRODUCERS = {"dak": "debpulse-dak", "wannabuild": "debpulse-wanna-build", "debbugs": "debpulse-debbugs",
             "scm": "debpulse-git", "emitters": "debpulse-logger"}


def topic_rows() -> list[tuple[str, str, str, list[str]]]:
    """(topic, producer, meaning, required body keys) per registered type."""
    from debpulse.emitters import messages

    messages.load_message_types()
    rows = []
    for topic, cls in sorted(messages.registered().items()):
        package = cls.__module__.split(".")[2] if cls.__module__.startswith("debpulse.adapters.") else "emitters"
        meaning = " ".join((cls.__doc__ or "").split()) or "(undocumented)"
        required = list(cls.body_schema.get("required", []))
        rows.append((topic, PRODUCERS.get(package, package), meaning, required))
    return rows


Cell = nodes.Node | str | list[nodes.Node | str]  # a list: one paragraph each


def table(header: list[str], rows: list[list[Cell]], widths: list[int]) -> nodes.table:
    """A docutils table (built from nodes: the page around it is MyST)."""
    group = nodes.tgroup(cols=len(header))
    group += [nodes.colspec(colwidth=w) for w in widths]
    head, body = nodes.thead(), nodes.tbody()
    for target, cells in ((head, [header]), (body, rows)):
        for cells_of_row in cells:
            row = nodes.row()
            for cell in cells_of_row:
                entry = nodes.entry()
                for part in cell if isinstance(cell, list) else [cell]:
                    entry += nodes.paragraph("", "", part if isinstance(part, nodes.Node) else nodes.Text(part))
                row += entry
            target += row
    group += head
    group += body
    out = nodes.table()
    out += group
    return out


def literals(names: list[str]) -> nodes.inline:
    out = nodes.inline()
    for n, name in enumerate(names):
        if n:
            out += nodes.Text(", ")
        out += nodes.literal(name, name)
    return out


class TopicsDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        rows: list[list[nodes.Node | str]] = [
            [nodes.literal(topic, topic), producer, meaning, literals(required)]
            for topic, producer, meaning, required in topic_rows()
        ]
        return [table(["topic (after org.debian.<env>.)", "published by", "what it says", "the body carries at least"],
                      rows, [22, 14, 34, 30])]


# The tables every program shares first, then each program's in the order of
# the flow; a table not named here comes after them, by name.
TABLE_ORDER = ["bus", "subscribe", "signer", "dns", "dak", "wannabuild", "debbugs", "git", "trigger", "bridge",
               "irc", "notify", "desktop", "archive", "web", "rule file"]


def ordered_tables() -> list[Table]:
    """Every declared table, each followed by the tables inside it (once:
    the first time one is reached)."""
    from debpulse.emitters.config import declared_tables

    tables = declared_tables()
    inside = {sub.name for t in tables.values() for k in t.keys.values() if (sub := k.sub) is not None}
    roots = sorted((n for n in tables if n not in inside),
                   key=lambda n: (TABLE_ORDER.index(n) if n in TABLE_ORDER else len(TABLE_ORDER), n))
    out: list[Table] = []

    def walk(name: str) -> None:
        if any(t.name == name for t in out):
            return
        out.append(tables[name])
        for key in tables[name].keys.values():
            if (sub := key.sub) is not None:
                walk(sub.name)

    for name in roots:
        walk(name)
    return out


def table_label(name: str) -> str:
    """The label a page refers to a table by: {ref}`[dak] <config-dak>`."""
    return "config-" + nodes.make_id(name)


def inline(text: str) -> nodes.inline:
    """Text with its `backquoted` parts as code (flags, paths, values: no
    typographic dashes or quotes there)."""
    out = nodes.inline()
    for n, part in enumerate(text.split("`")):
        if part:
            out += nodes.literal(part, part) if n % 2 else nodes.Text(part)
    return out


def _default(key: Key) -> nodes.Node:
    from debpulse.emitters.config import Derived, Required

    words = key.default_words()
    if isinstance(key.default, Derived | Required) or key.default is None:
        return inline(words)
    return nodes.literal(words, words)


class ConfigurationDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for t in ordered_tables():
            label = table_label(t.name)
            section = nodes.section(ids=[label], names=[label])
            heading = t.heading
            section += nodes.title(heading, "", nodes.literal(heading, heading) if heading.startswith("[")
                                   else nodes.Text(heading))
            self.state.document.note_explicit_target(section)
            section += nodes.paragraph("", "", inline(t.doc))
            about = nodes.paragraph("", "Read by ")
            for n, reader in enumerate(t.read_by):
                if n:
                    about += nodes.Text(", ")
                about += nodes.literal(reader, reader) if reader.startswith("debpulse-") else inline(reader)
            if t.own_file:
                about += nodes.Text("; written in ")
                about += inline(t.own_file)
            about += nodes.Text(".")
            section += about
            rows: list[list[Cell]] = [
                [[nodes.literal(name, name), nodes.emphasis("", "", inline(key.kind_words()))], _default(key),
                 inline(key.help)]
                for name, key in t.keys.items()
            ]
            section += table(["key and type", "default", "meaning"], rows, [26, 30, 44])
            out.append(section)
        return out


def setup(app):  # type: ignore[no-untyped-def]
    app.add_directive("debpulse-topics", TopicsDirective)
    app.add_directive("debpulse-configuration", ConfigurationDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
