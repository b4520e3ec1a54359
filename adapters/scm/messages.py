"""Message types of the git topics.

`git.receive` keeps the body of fedmsg's git hook
(fedora-infra/fedmsg: extras/git-hooks/post-receive) so its consumers read
it unchanged, plus `url`.  Line counts are null where the route cannot know
them (GitLab's webhook lists changed paths, not lines).
"""

from __future__ import annotations

from typing import Any, ClassVar

from debpulse.emitters.messages import Message, people, register

_OID = {"type": "string", "pattern": "^([0-9a-f]{40}|[0-9a-f]{64})$"}
_COUNT = {"type": ["integer", "null"], "minimum": 0}
_URL = {"type": ["string", "null"]}
_TEXT = {"type": "string"}


def _short(oid: str) -> str:
    return oid[:7]


def _package(repo: str) -> list[str]:
    # Salsa's packaging repositories are named after the source package.
    name = repo.rstrip("/").rsplit("/", 1)[-1]
    return [name] if name else []


@register
class ReceiveMessage(Message):
    """A new commit was pushed to a branch (fedmsg's git hook fields)."""
    topic = "git.receive"
    body_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["commit"],
        "properties": {
            "commit": {
                "type": "object",
                "required": ["name", "email", "username", "summary", "message", "stats", "rev",
                             "path", "repo", "branch", "agent", "seen"],
                "properties": {
                    "name": _TEXT,
                    "email": _TEXT,
                    "username": _TEXT,
                    "summary": _TEXT,
                    "message": _TEXT,
                    "rev": _OID,
                    "path": _TEXT,
                    "repo": {"type": "string", "minLength": 1},
                    "branch": {"type": "string", "minLength": 1},
                    "agent": _TEXT,
                    "seen": {"type": "boolean"},
                    "message_truncated": {"type": "boolean"},
                    "url": _URL,
                    "stats": {
                        "type": "object",
                        "required": ["files", "total"],
                        "properties": {
                            "files": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "object",
                                    "required": ["additions", "deletions", "lines"],
                                    "properties": {"additions": _COUNT, "deletions": _COUNT, "lines": _COUNT},
                                },
                            },
                            "files_omitted": {"type": "integer", "minimum": 1},
                            "total": {
                                "type": "object",
                                "required": ["additions", "deletions", "lines", "files"],
                                "properties": {"additions": _COUNT, "deletions": _COUNT, "lines": _COUNT,
                                               "files": {"type": "integer", "minimum": 0}},
                            },
                        },
                    },
                },
            },
        },
    }

    @property
    def commit(self) -> dict[str, Any]:
        return self.body["commit"]

    def summary(self) -> str:
        c = self.commit
        return f"{c['name']} committed {_short(c['rev'])} to {c['repo']} ({c['branch']}): {c['summary']}"

    def link(self) -> str | None:
        return self.commit.get("url")

    def packages(self) -> list[str]:
        return _package(self.commit["repo"])

    def usernames(self) -> list[str]:
        # The pusher and the commit's author (by address: a Debian login or the address).
        names = [self.commit["username"], self.commit["agent"], *people(self.commit.get("email"))]
        return [u for u in dict.fromkeys(names) if u]

    def agent(self) -> str | None:
        return self.commit["agent"] or None


_REF_PROPS: dict[str, Any] = {
    "repo": {"type": "string", "minLength": 1},
    "path": _TEXT,
    "ref": {"type": "string", "pattern": "^refs/"},
    "kind": {"enum": ["branch", "tag", "other"]},
    "name": {"type": "string", "minLength": 1},
    "old": _OID,
    "new": _OID,
    "agent": _TEXT,
}
_REF_REQUIRED = ["repo", "path", "ref", "kind", "name", "old", "new", "agent"]


class _RefMessage(Message):
    def _what(self) -> str:
        b = self.body
        return f"{b['kind']} {b['name']}" if b["kind"] != "other" else b["ref"]

    def link(self) -> str | None:
        return self.body.get("url")

    def packages(self) -> list[str]:
        return _package(self.body["repo"])

    def usernames(self) -> list[str]:
        return [self.body["agent"]] if self.body["agent"] else []

    def agent(self) -> str | None:
        return self.body["agent"] or None


def _commits(n: int) -> str:
    return f"{n} commit" if n == 1 else f"{n} commits"


def _detail_note(b: dict[str, Any]) -> str:
    return f" (first {b['detailed']} described)" if b["detailed"] < b["commits"] else ""


@register
class RefCreateMessage(_RefMessage):
    """A branch (or another ref) was created by a push."""
    topic = "git.ref.create"
    body_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": [*_REF_REQUIRED, "commits", "detailed", "url"],
        "properties": {**_REF_PROPS, "commits": {"type": "integer", "minimum": 0},
                       "detailed": {"type": "integer", "minimum": 0}, "url": _URL},
    }

    def summary(self) -> str:
        b = self.body
        text = f"{b['agent']} created {self._what()} in {b['repo']} at {_short(b['new'])}"
        if b["commits"]:
            text += f" with {_commits(b['commits'])}{_detail_note(b)}"
        return text


@register
class RefUpdateMessage(_RefMessage):
    """A branch moved: one summary per pushed branch, forced or not."""
    topic = "git.ref.update"
    body_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": [*_REF_REQUIRED, "commits", "detailed", "forced", "dropped", "url"],
        "properties": {**_REF_PROPS, "commits": {"type": "integer", "minimum": 0},
                       "detailed": {"type": "integer", "minimum": 0},
                       "forced": {"type": ["boolean", "null"]}, "dropped": _COUNT, "url": _URL},
    }

    def summary(self) -> str:
        b = self.body
        if b["kind"] != "branch":
            return f"{b['agent']} moved {self._what()} in {b['repo']} to {_short(b['new'])}"
        verb = "force-pushed" if b["forced"] else "pushed"
        text = f"{b['agent']} {verb} {_commits(b['commits'])} to {b['repo']} ({b['name']}){_detail_note(b)}"
        if b["dropped"]:
            text += f", dropping {_commits(b['dropped'])}"
        return text


@register
class RefDeleteMessage(_RefMessage):
    """A branch or tag was deleted by a push."""
    topic = "git.ref.delete"
    body_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": _REF_REQUIRED,
        "properties": _REF_PROPS,
    }

    def summary(self) -> str:
        b = self.body
        return f"{b['agent']} deleted {self._what()} in {b['repo']} (was {_short(b['old'])})"


@register
class TagCreateMessage(Message):
    """A tag was pushed (annotated or lightweight)."""
    topic = "git.tag.create"
    body_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["repo", "path", "ref", "tag", "old", "new", "annotated", "target", "tagger", "message",
                     "agent", "url"],
        "properties": {
            "repo": {"type": "string", "minLength": 1},
            "path": _TEXT,
            "ref": {"type": "string", "pattern": "^refs/tags/"},
            "tag": {"type": "string", "minLength": 1},
            "old": _OID,
            "new": _OID,
            "annotated": {"type": "boolean"},
            "target": _OID,
            "tagger": {
                "type": ["object", "null"],
                "required": ["name", "email"],
                "properties": {"name": _TEXT, "email": _TEXT},
            },
            "message": {"type": ["string", "null"]},
            "agent": _TEXT,
            "url": _URL,
        },
    }

    def summary(self) -> str:
        b = self.body
        text = f"{b['agent']} tagged {_short(b['target'])} as {b['tag']} in {b['repo']}"
        first = (b["message"] or "").strip().split("\n", 1)[0]
        return f"{text}: {first}" if first else text

    def link(self) -> str | None:
        return self.body.get("url")

    def packages(self) -> list[str]:
        return _package(self.body["repo"])

    def usernames(self) -> list[str]:
        tagger = self.body.get("tagger") or {}
        names = [self.body["agent"], *people(tagger.get("email"))]
        return [u for u in dict.fromkeys(names) if u]

    def agent(self) -> str | None:
        return self.body["agent"] or None
