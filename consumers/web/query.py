"""A `Search` as SQL over the archive's tables (pure: text and parameters).

The shape of every listing: pick the rows' keys (ts, id) in index order,
then fetch the few rows of the page.  The keys come from the most
selective index the filters allow: a person's or a package's
(`message_users`, `message_packages`: primary key (who, ts, id), read
newest first), else `messages` itself, whose (topic, ts, id),
(category, ts, id), (agent, ts, id) and (ts, id) indexes give the same
order.  So "the latest 25 about X" reads about 25 index entries whether X
is everywhere or nearly nowhere, and a keyset cursor turns a deep page
into a first page.

The query layer is meant for reuse (pages per package or person, live
views): `build` takes a `Search` and the ids of the names in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cursor import Cursor
from .params import Search

# Name tables: (table, the Search fields whose values are its names).
NAME_TABLES = {
    "topics": ("topics", "not_topics"),
    "categories": ("categories", "not_categories"),
    "users": ("users", "not_users"),
    "packages": ("packages", "not_packages"),
}
LINK_TABLES = {"users": ("message_users", "user_id"), "packages": ("message_packages", "package_id")}

RESOLVE_SQL = " UNION ALL ".join(
    f"SELECT '{t}' AS kind, name, id, message_count FROM {t} WHERE name = ANY(%s)" for t in NAME_TABLES
) + " UNION ALL SELECT 'all', '', 0, coalesce(sum(message_count), 0)::bigint FROM categories"

COLUMNS = ("m.ts, m.id, m.msg_id, t.name AS topic, c.name AS category, m.i, m.username, m.agent, m.signer,"
           " m.scope, m.crypto, m.signature, m.headers, m.body, m.usernames, m.packages, m.seq_id,"
           " pb.name AS publisher, m.received_at")


@dataclass
class Names:
    """What the name tables say about the names of a search."""

    ids: dict[str, dict[str, int]] = field(default_factory=lambda: {t: {} for t in NAME_TABLES})
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: {t: {} for t in NAME_TABLES})
    total: int = 0  # every message stored

    @classmethod
    def from_rows(cls, rows: list[tuple[str, str, int, int]]) -> Names:
        names = cls()
        for kind, name, ident, count in rows:
            if kind == "all":
                names.total = int(count)
            else:
                names.ids[kind][name] = ident
                names.counts[kind][name] = int(count)
        return names


def resolve_params(search: Search) -> list[list[str]]:
    """The parameters of RESOLVE_SQL for `search`."""
    return [sorted({v for f in fields for v in getattr(search, f)}) for fields in NAME_TABLES.values()]


@dataclass(frozen=True)
class Plan:
    rows_sql: str
    rows_params: list[Any]
    count_sql: str
    count_params: list[Any]
    total: int | None = None  # known from the counters, without counting
    key: tuple[str, str] = ("m.ts", "m.id")


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def build(search: Search, names: Names, *, limit: int | None = None, cursor: Cursor | None = None) -> Plan | None:
    """The statements for `search`, or None when no row can match (a
    topic, category, person or package the archive has never seen)."""
    positive, negative = _name_ids(search, names)
    if positive is None:
        return None
    # The keys come from the rarest single person or package, if any (a
    # name the archive has never seen among those asked for matches nothing).
    drivers = [(min(names.counts[t][v] for v in getattr(search, NAME_TABLES[t][0]) if v in names.counts[t]), t)
               for t in LINK_TABLES if len(positive[t]) == 1]
    driver = min(drivers)[1] if drivers else None
    where: list[str] = []
    params: list[Any] = []
    if driver:
        link, column = LINK_TABLES[driver]
        source = f"{link} d JOIN messages m ON m.ts = d.ts AND m.id = d.message_id"
        ts, ident = "d.ts", "d.message_id"
        where.append(f"d.{column} = %s")
        params.append(positive[driver][0])
    else:
        source = "messages m"
        ts, ident = "m.ts", "m.id"
    if search.start:
        where.append(f"{ts} >= %s")
        params.append(search.start)
    if search.end:
        where.append(f"{ts} <= %s")
        params.append(search.end)
    _filters(search, positive, negative, ts, ident, driver, where, params)

    count_sql = f"SELECT count(*) FROM {source}" + (" WHERE " + " AND ".join(where) if where else "")
    count_params = list(params)

    cursor = cursor or search.cursor
    page_where, page_params = list(where), list(params)
    if cursor:
        page_where.append(f"({ts}, {ident}) {'<' if search.order == 'desc' else '>'} (%s, %s)")
        page_params += [cursor.ts, cursor.id]
    direction = "DESC" if search.order == "desc" else "ASC"
    keys = (f"SELECT {ts} AS ts, {ident} AS id FROM {source}"
            + (" WHERE " + " AND ".join(page_where) if page_where else "")
            + f" ORDER BY {ts} {direction}, {ident} {direction} LIMIT %s OFFSET %s")
    page_params += [limit or search.rows_per_page, 0 if cursor else search.offset]
    rows_sql = (f"WITH page AS ({keys}) SELECT {COLUMNS} FROM page"
                " JOIN messages m ON m.ts = page.ts AND m.id = page.id"
                " JOIN topics t ON t.id = m.topic_id JOIN categories c ON c.id = m.category_id"
                " LEFT JOIN publishers pb ON pb.id = m.publisher_id"
                f" ORDER BY page.ts {direction}, page.id {direction}")
    return Plan(rows_sql, page_params, count_sql, count_params, _known_total(search, names), (ts, ident))


IdsByTable = dict[str, list[int]]


def _name_ids(search: Search, names: Names) -> tuple[IdsByTable | None, IdsByTable]:
    """The ids of the names a search asks for and excludes; None for the
    first when a name it asks for is unknown (nothing can match)."""
    def ids(table: str, values: tuple[str, ...]) -> list[int]:
        return sorted({names.ids[table][v] for v in values if v in names.ids[table]})

    positive = {t: ids(t, getattr(search, NAME_TABLES[t][0])) for t in NAME_TABLES}
    negative = {t: ids(t, getattr(search, NAME_TABLES[t][1])) for t in NAME_TABLES}
    for table in NAME_TABLES:
        if getattr(search, NAME_TABLES[table][0]) and not positive[table]:
            return None, negative
    return positive, negative


def _filters(search: Search, positive: IdsByTable, negative: IdsByTable, ts: str, ident: str,
             driver: str | None, where: list[str], params: list[Any]) -> None:
    """Every filter but time, as conditions on `m` (the message) and the
    link tables; the same for a listing and for a live page."""
    for table, column in (("topics", "topic_id"), ("categories", "category_id")):
        if positive[table]:
            where.append(f"m.{column} = ANY(%s)")
            params.append(positive[table])
        if negative[table]:
            where.append(f"m.{column} <> ALL(%s)")
            params.append(negative[table])
    if search.agents:
        where.append("m.agent = ANY(%s)")
        params.append(list(search.agents))
    if search.not_agents:
        where.append("(m.agent IS NULL OR m.agent <> ALL(%s))")
        params.append(list(search.not_agents))
    for table, (link, column) in LINK_TABLES.items():
        exists = (f"EXISTS (SELECT 1 FROM {link} x WHERE x.{column} = ANY(%s)"
                  f" AND x.ts = {ts} AND x.message_id = {ident})")
        if positive[table] and table != driver:
            where.append(exists)
            params.append(positive[table])
        if negative[table]:
            where.append("NOT " + exists)
            params.append(negative[table])
    if search.contains:
        # datagrepper's meaning: a substring of the body's JSON text (as
        # PostgreSQL prints jsonb: '"key": "value"'), case-sensitive.
        where.append("(" + " OR ".join(["m.body::text LIKE %s"] * len(search.contains)) + ")")
        params.extend(f"%{escape_like(c)}%" for c in search.contains)


def since(search: Search, names: Names, after: int, upto: int, limit: int) -> tuple[str, list[Any]] | None:
    """The messages stored after position `after` up to `upto` (archive
    ids, the order they were committed in) that match `search`'s filters,
    oldest first: how a live page catches up.  Time bounds are ignored (a
    live page follows what arrives).  None when nothing can match."""
    positive, negative = _name_ids(search, names)
    if positive is None:
        return None
    where = ["k.id > %s", "k.id <= %s"]
    params: list[Any] = [after, upto]
    _filters(search, positive, negative, "m.ts", "m.id", None, where, params)
    params.append(limit)
    return (f"SELECT {COLUMNS}, m.body::text AS body_text FROM msg_ids k"
            " JOIN messages m ON m.ts = k.ts AND m.id = k.id"
            " JOIN topics t ON t.id = m.topic_id JOIN categories c ON c.id = m.category_id"
            " LEFT JOIN publishers pb ON pb.id = m.publisher_id"
            " WHERE " + " AND ".join(where) + " ORDER BY k.id LIMIT %s", params)


def _known_total(search: Search, names: Names) -> int | None:
    """The total from the counters the archive keeps, when the search is
    only "everything", "these topics", "these categories", "this person"
    or "this package" over all time: exact, and without counting."""
    if search.start or search.end or search.contains or search.agents or search.not_agents:
        return None
    given = {f: getattr(search, f) for fields in NAME_TABLES.values() for f in fields if getattr(search, f)}
    if not given:
        return names.total
    if len(given) != 1:
        return None
    (field_name, values), = given.items()
    table = next((t for t, fields in NAME_TABLES.items() if field_name == fields[0]), None)
    if table is None or (table in LINK_TABLES and len(values) != 1):
        return None  # a not_ filter, or several people (a message may concern both)
    return sum(names.counts[table].get(v, 0) for v in values)


def by_msg_id_sql() -> str:
    return (f"SELECT {COLUMNS} FROM msg_ids k JOIN messages m ON m.ts = k.ts AND m.id = k.id"
            " JOIN topics t ON t.id = m.topic_id JOIN categories c ON c.id = m.category_id"
            " LEFT JOIN publishers pb ON pb.id = m.publisher_id WHERE k.msg_id = %s")


def advice(search: Search, *, timeout: float) -> str:
    """What to do when a query ran out of time: the narrowing it lacks."""
    tips: list[str] = []
    if not search.start and not search.end:
        tips.append("bound it in time (delta=86400, or start and end)")
    elif search.contains:
        tips.append("shorten the time range")
    if search.contains and not (search.topics or search.categories):
        tips.append("give a topic or category with contains")
    if not (search.topics or search.categories or search.users or search.packages or search.agents):
        tips.append("filter by topic, category, user, package or agent")
    if search.offset and not search.cursor:
        tips.append("page with the cursor given in next_cursor instead of page numbers")
    tips.append("or fetch the whole range as NDJSON from /export")
    return (f"the query did not finish within {timeout:g} s; narrow it: " + "; ".join(tips))

