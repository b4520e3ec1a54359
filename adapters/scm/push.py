"""A push -> Events (pure).

Per ref update, in the order git gave them:
- a branch created or updated: `git.ref.create` / `git.ref.update` (the
  push summary: how many new commits, how many described, forced or not),
  then one `git.receive` per new commit, oldest first, for the first
  `max_commits` only, so that an import of thousands of commits does not
  flood the bus;
- a branch, tag or other ref deleted: `git.ref.delete`;
- a tag created: `git.tag.create` (annotated or lightweight);
- anything else created or updated (a moved tag, refs/notes/...):
  `git.ref.create` / `git.ref.update` without commits.

The webhook builds the same events from GitLab's payload with the same
functions, so both routes give the same topics and idempotency keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from debpulse.emitters.event import Event

from .commits import PushFacts, RefCommits
from .refs import RefUpdate

DEFAULT_MAX_COMMITS = 100


@dataclass(frozen=True)
class Context:
    repo: str                  # "hello", or "debian/hello" under a repository root
    path: str                  # the bare repository's directory (webhook: the project's web page)
    agent: str                 # who pushed
    web_url: str | None = None  # the repository's web page, GitLab layout (".../-/commit/<rev>")
    max_commits: int = DEFAULT_MAX_COMMITS


def commit_key(repo: str, branch: str, rev: str) -> str:
    return f"git.receive:{repo}:{branch}:{rev}"


def ref_key(repo: str, update: RefUpdate) -> str:
    return f"git.ref:{repo}:{update.ref}:{update.old}:{update.new}"


def _url(ctx: Context, suffix: str) -> str | None:
    return f"{ctx.web_url.rstrip('/')}/-/{suffix}" if ctx.web_url else None


# What a commit may list before its message would be too large for the bus:
# an upstream import adds tens of thousands of files in one commit.  The
# rest is counted (stats.total.files stays the full number) and said.
MAX_FILES = 500
MAX_MESSAGE_CHARS = 64 * 1024


def receive(ctx: Context, branch: str, commit: dict[str, Any], origin: str = "") -> Event:
    """`commit` holds name, email, summary, message, stats, rev, seen, url;
    the rest of fedmsg's fields come from the context."""
    body = {
        **_bounded(commit),
        "username": ctx.agent,
        "agent": ctx.agent,
        "repo": ctx.repo,
        "path": ctx.path,
        "branch": branch,
    }
    return Event("git.receive", {"commit": body}, key=commit_key(ctx.repo, branch, commit["rev"]), origin=origin)


def _bounded(commit: dict[str, Any]) -> dict[str, Any]:
    """The commit with its file list and message shortened to what the bus
    takes, saying how much was left out (`stats.files_omitted`,
    `message_truncated`)."""
    stats = commit.get("stats") or {}
    files = stats.get("files") or {}
    if len(files) > MAX_FILES:
        kept = dict(sorted(files.items())[:MAX_FILES])
        commit = {**commit, "stats": {**stats, "files": kept, "files_omitted": len(files) - MAX_FILES}}
    message = commit.get("message")
    if isinstance(message, str) and len(message) > MAX_MESSAGE_CHARS:
        commit = {**commit, "message": message[:MAX_MESSAGE_CHARS], "message_truncated": True,
                  "summary": commit.get("summary", "")[:1000]}
    return commit


def _ref_body(ctx: Context, u: RefUpdate) -> dict[str, Any]:
    return {
        "repo": ctx.repo,
        "path": ctx.path,
        "ref": u.ref,
        "kind": u.kind,
        "name": u.name,
        "old": u.old,
        "new": u.new,
        "agent": ctx.agent,
    }


def ref_changed(ctx: Context, u: RefUpdate, *, commits: int, detailed: int,
                dropped: int | None, origin: str = "") -> Event:
    """git.ref.create or git.ref.update; `dropped` is None where unknown (the
    webhook cannot tell a forced push)."""
    body = _ref_body(ctx, u)
    body["commits"] = commits
    body["detailed"] = detailed
    if u.created:
        topic = "git.ref.create"
        body["url"] = _url(ctx, f"tree/{u.name}") if u.kind == "branch" else None
    else:
        topic = "git.ref.update"
        body["forced"] = None if dropped is None else dropped > 0
        body["dropped"] = dropped
        body["url"] = _url(ctx, f"compare/{u.old}...{u.new}") if u.kind == "branch" else None
    return Event(topic, body, key=ref_key(ctx.repo, u), origin=origin)


def ref_deleted(ctx: Context, u: RefUpdate, origin: str = "") -> Event:
    return Event("git.ref.delete", _ref_body(ctx, u), key=ref_key(ctx.repo, u), origin=origin)


def tag_created(ctx: Context, u: RefUpdate, *, annotated: bool, target: str, tagger: dict[str, str] | None,
                message: str | None, origin: str = "") -> Event:
    body = {
        "repo": ctx.repo,
        "path": ctx.path,
        "ref": u.ref,
        "tag": u.name,
        "old": u.old,
        "new": u.new,
        "annotated": annotated,
        "target": target,
        "tagger": tagger,
        "message": message,
        "agent": ctx.agent,
        "url": _url(ctx, f"tags/{u.name}"),
    }
    return Event("git.tag.create", body, key=ref_key(ctx.repo, u), origin=origin)


def events(ctx: Context, facts: PushFacts, origin: str = "") -> list[Event]:
    out: list[Event] = []
    described: set[str] = set()  # fedmsg marks a commit seen once another branch of this push described it
    for rc in facts.updates:
        u = rc.update
        if u.deleted:
            out.append(ref_deleted(ctx, u, origin))
        elif u.kind == "tag" and u.created:
            out.append(_tag(ctx, facts, u, origin))
        elif u.kind == "branch":
            out.extend(_branch(ctx, facts, rc, described, origin))
        else:
            out.append(ref_changed(ctx, u, commits=0, detailed=0, dropped=None if u.created else 0, origin=origin))
    return out


def _branch(ctx: Context, facts: PushFacts, rc: RefCommits, described: set[str], origin: str) -> list[Event]:
    u = rc.update
    detail = rc.revs[: ctx.max_commits]
    out = [ref_changed(ctx, u, commits=len(rc.revs), detailed=len(detail), dropped=rc.dropped, origin=origin)]
    for rev in detail:
        c = facts.commits[rev]
        stats = facts.stats.get(rev)
        commit = {
            "name": c.author.name,
            "email": c.author.email,
            "summary": c.summary,
            "message": c.message,
            "stats": stats.as_body() if stats else {"files": {}, "total": _no_lines()},
            "rev": rev,
            "seen": rev in rc.seen or rev in described,
            "url": _url(ctx, f"commit/{rev}"),
        }
        described.add(rev)
        out.append(receive(ctx, u.name, commit, origin))
    return out


def _no_lines() -> dict[str, int]:
    return {"additions": 0, "deletions": 0, "lines": 0, "files": 0}


def _tag(ctx: Context, facts: PushFacts, u: RefUpdate, origin: str) -> Event:
    tag = facts.tags.get(u.new)
    if tag is None:  # lightweight: the ref names the commit itself
        return tag_created(ctx, u, annotated=False, target=u.new, tagger=None, message=None, origin=origin)
    tagger = {"name": tag.tagger.name, "email": tag.tagger.email} if tag.tagger else None
    return tag_created(ctx, u, annotated=True, target=tag.target, tagger=tagger, message=tag.message, origin=origin)
