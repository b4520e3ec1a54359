"""datagrepper's query parameters, read into a `Search` (pure).

Names and meanings follow datagrepper's `/raw` and `/v2/search`: list
filters are repeatable (`?user=a&user=b`), OR within one parameter, AND
between parameters, `not_X` excludes; times are epoch seconds or ISO 8601
(a time without a zone is UTC).  A bad parameter is a `BadParameter`
naming it, which the API answers with a 400.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .cursor import Cursor, CursorError, decode

FILTERS = ("user", "package", "category", "topic", "agent")
LIST_PARAMS = (*FILTERS, *(f"not_{f}" for f in FILTERS), "contains", "meta")
SCALARS = ("start", "end", "delta", "page", "rows_per_page", "order", "cursor", "callback")
# Accepted for datagrepper's HTML pages and widget; no meaning in JSON.
HTML_ONLY = ("chrome", "size", "is_raw", "_")
SEARCH_PARAMS = frozenset((*LIST_PARAMS, *SCALARS, *HTML_ONLY))

MAX_ROWS = 100
DEFAULT_ROWS = 25
# meta names; datagrepper's legacy names are accepted with a warning.
META = ("summary", "url", "usernames", "packages", "date", "agent", "app_icon", "agent_avatar")
LEGACY_META = {"subtitle": "summary", "link": "url", "icon": "app_icon"}
SIZES = ("small", "medium", "large", "extra-large")
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Search:
    start: datetime | None = None
    end: datetime | None = None
    delta: float | None = None
    users: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    not_users: tuple[str, ...] = ()
    not_packages: tuple[str, ...] = ()
    not_categories: tuple[str, ...] = ()
    not_topics: tuple[str, ...] = ()
    not_agents: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    page: int = 1
    rows_per_page: int = DEFAULT_ROWS
    order: str = "desc"
    meta: tuple[str, ...] = ()
    cursor: Cursor | None = None
    callback: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def offset(self) -> int:
        return 0 if self.cursor else (self.page - 1) * self.rows_per_page

    def arguments(self) -> dict[str, object]:
        """datagrepper's `arguments` echo (times as epoch seconds, UTC)."""
        return {
            "start": self.start.timestamp() if self.start else None,
            "end": self.end.timestamp() if self.end else None,
            "delta": self.delta,
            "users": list(self.users), "packages": list(self.packages), "categories": list(self.categories),
            "topics": list(self.topics), "agents": list(self.agents), "contains": list(self.contains),
            "not_users": list(self.not_users), "not_packages": list(self.not_packages),
            "not_categories": list(self.not_categories), "not_topics": list(self.not_topics),
            "not_agents": list(self.not_agents),
            "page": self.page, "rows_per_page": self.rows_per_page, "order": self.order, "meta": list(self.meta),
        }


def parse_time(value: str, parameter: str) -> datetime:
    """Epoch seconds, or ISO 8601 (a time without a zone is UTC)."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise BadParameter(parameter, f"{value!r} is neither epoch seconds nor an ISO 8601 time "
                                          "(such as 2024-05-01 or 2024-05-01T12:00:00Z)") from None
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if not math.isfinite(seconds):
        raise BadParameter(parameter, f"{value!r} is not a time")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        raise BadParameter(parameter, f"{value!r} is out of range") from None


def _seconds(value: str, parameter: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise BadParameter(parameter, f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise BadParameter(parameter, "must be a non-negative number of seconds")
    return seconds


def time_range(start: datetime | None, end: datetime | None, delta: float | None, now: datetime,
               default_delta: float = 0) -> tuple[datetime | None, datetime | None]:
    """datagrepper's rules (util.assemble_timerange): start+end win over
    delta; start+delta and end+delta make a window; delta alone ends now;
    nothing at all means the last `default_delta` seconds, or everything."""
    try:
        if start and end:
            return start, end
        if start and delta is not None:
            return start, start + timedelta(seconds=delta)
        if start:
            return start, None
        if end and delta is not None:
            return end - timedelta(seconds=delta), end
        if end:
            return (end - timedelta(seconds=default_delta), end) if default_delta >= 1 else (None, end)
        if delta is not None:
            return now - timedelta(seconds=delta), None
        if default_delta >= 1:
            return now - timedelta(seconds=default_delta), None
    except OverflowError:
        raise BadParameter("delta", "the window reaches past the times a computer can count") from None
    return None, None


def _list(params: Mapping[str, Sequence[str]], name: str, *, split: bool = False) -> tuple[str, ...]:
    out: list[str] = []
    for value in params.get(name, ()):
        parts = value.split(",") if split else [value]
        for part in parts:
            part = part.strip()
            if not part:
                raise BadParameter(name, "empty value")
            if "\x00" in part or len(part) > 1000:
                raise BadParameter(name, "not a name")
            if part not in out:
                out.append(part)
    return tuple(out)


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name, ())
    if len(values) > 1:
        raise BadParameter(name, "given more than once")
    return values[0] if values else None


def _int(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BadParameter(name, f"{value!r} is not a whole number") from None


def check_names(params: Iterable[str], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for name in params:
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise BadParameter(name, f"unknown parameter{hint}")


def parse_meta(params: Mapping[str, Sequence[str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`meta` (repeatable or comma-separated): the names, and warnings for
    datagrepper's legacy names."""
    meta: list[str] = []
    warnings: list[str] = []
    for name in _list(params, "meta", split=True):
        if name in LEGACY_META:
            warnings.append(f"meta {name!r} is deprecated, use {LEGACY_META[name]!r}")
            name = LEGACY_META[name]
        if name not in META:
            raise BadParameter("meta", f"{name!r} is not one of {', '.join(META)}")
        if name not in meta:
            meta.append(name)
    return tuple(meta), tuple(warnings)


def _user(name: str) -> str:
    # People are known by their Debian login, or by address when they have none.
    lowered = name.lower()
    return lowered[: -len("@debian.org")] if lowered.endswith("@debian.org") else name


def parse_search(params: Mapping[str, Sequence[str]], *, now: datetime | None = None,
                 default_delta: float = 0, allowed: Iterable[str] = SEARCH_PARAMS) -> Search:
    """`params`: every value of every query parameter (Starlette's
    `request.query_params.multi_items()` grouped by name)."""
    check_names(params, allowed)
    now = now or datetime.fromtimestamp(time.time(), UTC)
    start = parse_time(v, "start") if (v := _one(params, "start")) is not None else None
    end = parse_time(v, "end") if (v := _one(params, "end")) is not None else None
    delta = _seconds(v, "delta") if (v := _one(params, "delta")) is not None else None
    start, end = time_range(start, end, delta, now, default_delta)
    if start and end and start > end:
        raise BadParameter("start", "is after end")
    page = _int(_one(params, "page"), "page", 1)
    if page < 1:
        raise BadParameter("page", "must be 1 or more")
    rows = _int(_one(params, "rows_per_page"), "rows_per_page", DEFAULT_ROWS)
    if not 1 <= rows <= MAX_ROWS:
        raise BadParameter("rows_per_page", f"must be between 1 and {MAX_ROWS}")
    order = (_one(params, "order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise BadParameter("order", "must be asc or desc")
    meta, warnings = parse_meta(params)
    cursor = None
    if (token := _one(params, "cursor")) is not None:
        if "page" in params:
            raise BadParameter("cursor", "give either page or cursor, not both")
        try:
            cursor = decode(token)
        except CursorError as exc:
            raise BadParameter("cursor", str(exc)) from None
        if cursor.order != order:
            raise BadParameter("cursor", f"was made for order={cursor.order}")
    callback = _one(params, "callback")
    if callback is not None and not _CALLBACK.match(callback):
        raise BadParameter("callback", "must be a JavaScript identifier")
    if (size := _one(params, "size")) is not None and size not in SIZES:
        raise BadParameter("size", f"must be one of {', '.join(SIZES)}")
    if (chrome := _one(params, "chrome")) is not None and chrome.lower() not in ("true", "false", "1", "0"):
        raise BadParameter("chrome", "must be true or false")
    return Search(
        start=start, end=end, delta=delta,
        users=tuple(map(_user, _list(params, "user"))), packages=_list(params, "package"),
        categories=_list(params, "category"), topics=_list(params, "topic"),
        agents=tuple(map(_user, _list(params, "agent"))),
        not_users=tuple(map(_user, _list(params, "not_user"))), not_packages=_list(params, "not_package"),
        not_categories=_list(params, "not_category"), not_topics=_list(params, "not_topic"),
        not_agents=tuple(map(_user, _list(params, "not_agent"))), contains=_list(params, "contains"),
        page=page, rows_per_page=rows, order=order, meta=meta, cursor=cursor, callback=callback,
        warnings=warnings,
    )


def grouped(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in items:
        out.setdefault(k, []).append(v)
    return out
