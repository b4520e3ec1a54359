"""GitLab's "Push Hook" and "Tag Push Hook" (Salsa) -> the hook's Events.

`decode_body` and `gitlab_events` are pure: a body's bytes in, its JSON
out; a decoded payload in, Events out, built with the same functions as
the post-receive route so both give the same topics and idempotency keys.
What the payload cannot tell is left null: line counts (GitLab lists
changed paths only), whether an update was forced, and `seen`, which is
false.  GitLab sends at most 20 commits per push
(`total_commits_count` has the real number); the ref event carries both.

`WebhookServer` is the HTTP side: the secret token in `X-Gitlab-Token`
compared in constant time (401), a bounded body (413, 411 without a
length), JSON that does not parse or is not a push (400).  It answers 200
only once every event is handed over, and 503 when the bus cannot take
them, so GitLab shows the delivery as failed.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from debpulse.adapters.common.quarantine import Quarantine
from debpulse.emitters import metrics
from debpulse.emitters.emitter import Emitter
from debpulse.emitters.errors import EmitError, InputError
from debpulse.emitters.event import Event

from . import push
from .refs import RefUpdate, check_oid, parse_line

log = logging.getLogger("debpulse.git.webhook")

KINDS = {"push", "tag_push"}


def _field(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str = "payload") -> Any:
    value = d.get(key)
    if not isinstance(value, kind):
        raise InputError(f"{where}: {key} is missing or not {getattr(kind, '__name__', kind)}")
    return value


def _context(payload: Mapping[str, Any], max_commits: int) -> push.Context:
    project = _field(payload, "project", dict)
    repo = project.get("path_with_namespace")
    if not isinstance(repo, str) or not repo:
        raise InputError("payload: project.path_with_namespace is missing")
    web = project.get("web_url") if isinstance(project.get("web_url"), str) else None
    agent = payload.get("user_username") or payload.get("user_name") or ""
    if not isinstance(agent, str):
        raise InputError("payload: user_username is not a string")
    return push.Context(repo=repo, path=web or repo, agent=agent, web_url=web, max_commits=max_commits)


def _update(payload: Mapping[str, Any]) -> RefUpdate:
    line = " ".join((_field(payload, "before", str), _field(payload, "after", str), _field(payload, "ref", str)))
    try:
        return parse_line(line.encode())
    except UnicodeEncodeError:  # JSON's "\ud800": a lone surrogate, which no ref name holds
        raise InputError(f"payload: before, after or ref is not text: {line[:120]!r}") from None


def _commit(c: Any, n: int) -> dict[str, Any]:
    where = f"payload: commits[{n}]"
    if not isinstance(c, dict):
        raise InputError(f"{where} is not an object")
    author = _field(c, "author", dict, where)
    message = _field(c, "message", str, where)
    files: dict[str, dict[str, None]] = {}
    for key in ("added", "modified", "removed"):
        paths = c.get(key) or []
        if not isinstance(paths, list):
            raise InputError(f"{where}.{key} is not a list")
        for path in paths:
            if isinstance(path, str):
                files[path] = {"additions": None, "deletions": None, "lines": None}
    rev = check_oid(c.get("id"), f"{where}.id")
    return {
        "name": str(author.get("name") or ""),
        "email": str(author.get("email") or ""),
        "summary": message.split("\n", 1)[0],
        "message": message,
        "stats": {"files": files,
                  "total": {"additions": None, "deletions": None, "lines": None, "files": len(files)}},
        "rev": rev,
        "seen": False,
        "url": c.get("url") if isinstance(c.get("url"), str) else None,
    }


def is_push(kind: Any) -> bool:
    """Whether an object_kind (any JSON value) is one this receiver reads."""
    return isinstance(kind, str) and kind in KINDS


def decode_body(data: bytes) -> Any:
    """The JSON of a delivery's body; InputError when it is not JSON."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON: {exc}") from None
    except RecursionError:
        raise InputError("not JSON this receiver reads: nested too deeply") from None


def gitlab_events(payload: Any, *, max_commits: int = push.DEFAULT_MAX_COMMITS, origin: str = "") -> list[Event]:
    """A decoded "Push Hook" or "Tag Push Hook" payload -> Events."""
    if not isinstance(payload, dict):
        raise InputError("payload is not a JSON object")
    kind = payload.get("object_kind")
    if not is_push(kind):
        raise InputError(f"object_kind {str(kind)[:80]!r} is not a push")
    ctx = _context(payload, max_commits)
    u = _update(payload)
    if u.deleted:
        return [push.ref_deleted(ctx, u, origin)]
    if kind == "tag_push" or u.kind == "tag":
        if u.kind != "tag":
            raise InputError(f"a tag push for {u.ref!r}, which is not a tag")
        if not u.created:
            return [push.ref_changed(ctx, u, commits=0, detailed=0, dropped=None, origin=origin)]
        target = check_oid(payload.get("checkout_sha") or u.new, "payload: checkout_sha")
        message = payload.get("message") if isinstance(payload.get("message"), str) else None
        # An annotated tag's ref names the tag object, not the commit it tags.
        annotated = target != u.new
        return [push.tag_created(ctx, u, annotated=annotated, target=target, tagger=None,
                                 message=(message or None) if annotated else None, origin=origin)]
    commits = payload.get("commits") or []
    if not isinstance(commits, list):
        raise InputError("payload: commits is not a list")
    total = payload.get("total_commits_count")
    total = total if isinstance(total, int) and total >= len(commits) else len(commits)
    detail = [_commit(c, n) for n, c in enumerate(commits[:max_commits])]
    out = [push.ref_changed(ctx, u, commits=total, detailed=len(detail), dropped=None, origin=origin)]
    if u.kind == "branch":
        out += [push.receive(ctx, u.name, c, origin) for c in detail]
    return out


def _hand_over(emitter: Emitter, events: list[Event]) -> int | None:
    """Emit a push's events; how many went out as new messages (None when
    not known yet: the relay was away and they wait in its spool)."""
    publish_events = getattr(emitter, "publish_events", None)
    emit_many = getattr(emitter, "emit_many", None)
    if publish_events is not None:  # a direct publisher: one outbox transaction
        publish_events(events)
    elif emit_many is not None:  # the relay client: one round trip per push
        emit_many(events)
    else:  # any other emitter: one at a time, and it does not tell what was new
        for ev in events:
            emitter.emit(ev)
        return len(events)
    published = getattr(emitter, "last_published", None)
    return published if isinstance(published, int) else None


def _count(n: int) -> str:
    return f"{n} event" if n == 1 else f"{n} events"


def outcome(handed: int, published: int | None) -> str:
    """The 200 answer's text: what the push gave on the bus.  A redelivery
    (GitLab's "Resend request", a retry after a timeout) publishes nothing
    new: every event has the key of one published before."""
    if published is None:
        return f"accepted {_count(handed)} (the relay publishes them from its spool when it is back)"
    if published == 0:
        return f"nothing new: {_count(handed)} published before"
    if published < handed:
        return f"published {_count(published)} ({handed - published} published before)"
    return f"published {_count(published)}"


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, token: str, emitter: Emitter,
                 quarantine: Quarantine, max_body: int,
                 max_commits: int = push.DEFAULT_MAX_COMMITS, timeout: float = 10.0) -> None:
        if not token:
            raise ValueError("the webhook needs a secret token")
        self.token = token.encode()
        self.emitter = emitter
        self.quarantine = quarantine
        self.max_body = max_body
        self.max_commits = max_commits
        self.request_timeout = timeout
        self.emit_lock = threading.Lock()  # one emitter, many request threads
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    server_version = "debpulse-git"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def _answer(self, code: int, text: str) -> None:
        # Counted before the answer goes out: whoever got it can see it counted.
        metrics.inc("debpulse_git_webhook_requests_total", code=str(code), help="webhook requests by answer")
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        srv = self.server
        given = (self.headers.get("X-Gitlab-Token") or "").encode()
        if not hmac.compare_digest(given, srv.token):
            self.close_connection = True
            return self._answer(401, "bad or missing X-Gitlab-Token")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            return self._answer(411, "Content-Length required")
        if int(length) > srv.max_body:
            self.close_connection = True  # the body is never read
            return self._answer(413, f"body larger than {srv.max_body} bytes")
        data = self.rfile.read(int(length))
        name = f"webhook-{time.time_ns()}.json"
        try:
            payload = decode_body(data)
        except InputError as exc:
            srv.quarantine.keep(data, name, exc.reason)
            return self._answer(400, "malformed JSON")
        if isinstance(payload, dict) and not is_push(payload.get("object_kind")):
            return self._answer(200, f"ignored: object_kind {payload.get('object_kind')!r} is not a push")
        try:
            events = gitlab_events(payload, max_commits=srv.max_commits, origin=name)
        except InputError as exc:
            srv.quarantine.keep(data, name, exc.reason)
            return self._answer(400, exc.reason)
        try:
            with srv.emit_lock:
                published = _hand_over(srv.emitter, events)
        except EmitError as exc:
            log.error("webhook push not handed over: %s", exc)
            return self._answer(503, "bus unavailable, try again")
        except Exception as exc:  # a bug of ours (SchemaError, ...): say so, keep serving
            log.error("webhook push %s failed: %s: %s", name, type(exc).__name__, exc)
            return self._answer(500, "internal error")
        metrics.inc("debpulse_git_events_total", len(events), topic="webhook", help="git events handed over")
        return self._answer(200, outcome(len(events), published))

    def do_GET(self) -> None:  # noqa: N802
        self._answer(405, "POST GitLab push events here")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        log.debug("%s %s", self.address_string(), format % args)
