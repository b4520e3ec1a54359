"""Sphinx directives that write parts of the manual from the code itself,
so that they cannot drift from it:

    ```{debpulse-topics}
    ```

renders the table of every registered message type (topic, the program
that publishes it, what it says, what its body carries), read from the
`debpulse.messages` entry points as `debpulse-tail` reads them.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

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


def table(header: list[str], rows: list[list[nodes.Node | str]], widths: list[int]) -> nodes.table:
    """A docutils table (built from nodes: the page around it is MyST)."""
    group = nodes.tgroup(cols=len(header))
    group += [nodes.colspec(colwidth=w) for w in widths]
    head, body = nodes.thead(), nodes.tbody()
    for target, cells in ((head, [header]), (body, rows)):
        for cells_of_row in cells:
            row = nodes.row()
            for cell in cells_of_row:
                entry = nodes.entry()
                entry += nodes.paragraph("", "", cell if isinstance(cell, nodes.Node) else nodes.Text(cell))
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


def setup(app):  # type: ignore[no-untyped-def]
    app.add_directive("debpulse-topics", TopicsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
