"""What the bot says (pure): one line per message from its type's summary
and link, and one line for a squashed burst ("alice pushed 214 commits to
hello (master)", "37 packages accepted into unstable: ...")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from debpulse.consumers.common.facts import Facts

from .protocol import COLOUR, RESET, clean_text

# mIRC colour numbers per service, as fedmsg-irc coloured by category.
SERVICE_COLOURS = {"dak": "03", "wannabuild": "07", "debbugs": "04", "git": "06", "logger": "14"}
LINK_COLOUR = "10"
DEFAULT_COLOUR = "15"
SHOWN = 3  # names listed in a squashed line before "and N more"


def decorate(service: str, text: str, link: str | None, colours: bool) -> str:
    text = clean_text(text)
    link = clean_text(link).replace(" ", "%20") if link else None
    if not colours:
        return f"{text} {link}" if link else text
    tag = f"{COLOUR}{SERVICE_COLOURS.get(service, DEFAULT_COLOUR)}{clean_text(service)}{RESET}"
    out = f"{tag} {text}"
    return f"{out} {COLOUR}{LINK_COLOUR}{link}{RESET}" if link else out


def single(f: Facts, colours: bool = False) -> str:
    return decorate(f.service, f.summary, f.link, colours)


# -- bursts -------------------------------------------------------------------


def group_key(f: Facts) -> tuple[str, ...]:
    """Messages that read well as one line share a key: the commits and ref
    update of one branch push, the uploads accepted into one suite, else
    the messages of one topic."""
    b = f.body
    if f.relative == "git.receive" and isinstance(b.get("commit"), dict):
        c = b["commit"]
        return ("git", str(c.get("repo")), str(c.get("branch")))
    if f.relative in ("git.ref.update", "git.ref.create") and b.get("kind") == "branch":
        return ("git", str(b.get("repo")), str(b.get("name")))
    if f.relative in ("dak.package.accept", "dak.package.new") and isinstance(b.get("suites"), list):
        return (f.relative, " ".join(str(s) for s in b["suites"]))
    return (f.relative,)


def expected_commits(f: Facts) -> int:
    """A branch push announces how many git.receive messages follow it."""
    if f.relative in ("git.ref.update", "git.ref.create") and f.body.get("kind") == "branch":
        n = f.body.get("detailed")
        return n if isinstance(n, int) and n > 0 else 0
    return 0


def _listed(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def squashed(members: Sequence[Facts], colours: bool = False) -> str:
    """One line for the messages of one group (see group_key)."""
    first = members[0]
    n = len(members)
    if first.service == "git":
        refs = [m for m in members if m.relative.startswith("git.ref.")]
        if refs:  # the push's own summary says how many commits, and more
            ref = refs[-1]
            return decorate("git", ref.summary, ref.link, colours)
        c = first.body.get("commit", {})
        commits = [m for m in members if m.relative == "git.receive"]
        who = c.get("username") or c.get("name") or "someone"
        text = f"{who} pushed {len(commits)} commits to {c.get('repo')} ({c.get('branch')})"
        return decorate("git", text, commits[-1].link, colours)
    if first.relative in ("dak.package.accept", "dak.package.new"):
        suites = " and ".join(str(s) for s in first.body.get("suites") or []) or "the archive"
        verb = "accepted into" if first.relative == "dak.package.accept" else "NEW for"
        names = [f"{m.body.get('source')} {m.body.get('version')}" for m in members]
        return decorate(first.service, f"{n} packages {verb} {suites}: {_listed(names)}", None, colours)
    return decorate(first.service, f"{n} × {first.relative}: {_listed([m.summary for m in members])}", None,
                    colours)


def backlog(members: Sequence[Facts], colours: bool = False) -> str:
    """The last resort when even squashed groups would take too long to
    send: one line counting everything waiting, by topic."""
    counts = Counter(m.relative for m in members)
    parts = ", ".join(f"{n} {topic}" for topic, n in counts.most_common(5))
    more = f" and {len(counts) - 5} more topics" if len(counts) > 5 else ""
    return decorate("debpulse", f"{len(members)} messages squashed to keep up: {parts}{more}", None, colours)
