"""The archive's and the web's pure parts: rows from hostile envelopes,
partitions, cursors, time arguments, content negotiation, the feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debpulse.consumers.archive import partitions
from debpulse.consumers.archive.rows import MAX_KEY, RAW_HEADER, Unstorable, category_of, envelope_of, to_row
from debpulse.consumers.web import atom, negotiate
from debpulse.consumers.web.cursor import Cursor, CursorError, decode, encode
from debpulse.consumers.web.params import BadParameter, parse_search, time_range

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _as_row_dict(row) -> dict:  # type: ignore[no-untyped-def]
    """What the web reads back for a row (the columns by name)."""
    return {"topic": row.topic, "body": json.loads(row.body), "msg_id": row.msg_id, "ts": row.ts, "i": row.i,
            "username": row.username, "crypto": row.crypto, "signature": row.signature, "seq_id": row.seq_id,
            "publisher": row.publisher, "headers": row.headers}


@settings(max_examples=300, deadline=None)
@given(topic=st.text(max_size=300), msg=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       timestamp=st.one_of(st.integers(), st.floats()), msg_id=st.text(max_size=300),
       extra=st.dictionaries(st.sampled_from(["i", "username", "seq_id", "publisher", "replay", "crypto", "x"]),
                             json_values, max_size=4))
def test_any_envelope_is_a_storable_row_or_refused_with_a_reason(topic, msg, timestamp, msg_id, extra) -> None:
    envelope = {"topic": topic, "msg": msg, "timestamp": timestamp, "msg_id": msg_id, **extra}
    try:
        row = to_row(envelope)
    except Unstorable as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    # What PostgreSQL could not hold is not there, and nothing is lost.
    assert 0 < len(row.msg_id) <= MAX_KEY and "\x00" not in row.msg_id and "\x00" not in row.topic
    assert "\\u0000" not in row.body and "\\u0000" not in json.dumps(row.headers, ensure_ascii=False).replace(
        "\\\\u0000", "")
    assert all(-(2**63) < v < 2**63 for v in (row.seq_id, row.i) if v is not None)
    assert envelope_of(_as_row_dict(row)) == json.loads(json.dumps(envelope))


def test_a_nul_in_a_body_is_stored_replaced_and_given_back_exact() -> None:
    envelope = {"topic": "org.debian.dev.logger.log", "msg": {"log": "a\x00b"}, "timestamp": 1.5, "msg_id": "m"}
    row = to_row(envelope)
    assert json.loads(row.body) == {"log": "a\ufffdb"} and RAW_HEADER in row.headers
    assert envelope_of(_as_row_dict(row)) == envelope


@pytest.mark.parametrize("envelope, reason", [
    ({"topic": "t", "msg": {}, "timestamp": 1e300, "msg_id": "m"}, "timestamp"),
    ({"topic": "t", "msg": {}, "timestamp": float("nan"), "msg_id": "m"}, "timestamp"),
    ({"topic": "t", "msg": {}, "timestamp": 1, "msg_id": "x" * 300}, "msg_id is longer"),
    ({"topic": "t\x00", "msg": {}, "timestamp": 1, "msg_id": "m"}, "topic contains a NUL"),
    ({"topic": "t", "msg": [], "timestamp": 1, "msg_id": "m"}, "msg must be an object"),
])
def test_unstorable_envelopes_say_why(envelope: dict, reason: str) -> None:
    with pytest.raises(Unstorable, match=reason):
        to_row(envelope)


def test_categories() -> None:
    assert category_of("org.debian.production.dak.package.accept") == "dak"
    assert category_of("org.fedoraproject.prod.bodhi.update.comment") == "bodhi"
    assert category_of("weird") == "unclassified"


def test_partitions_fit_between_those_that_exist() -> None:
    ts = datetime(2024, 5, 15, 12, tzinfo=UTC)
    assert partitions.period(ts, "month") == (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC))
    assert partitions.period(ts, "week")[0] == datetime(2024, 5, 13, tzinfo=UTC)  # a Monday
    assert partitions.period(datetime(2024, 12, 31, tzinfo=UTC), "month")[1] == datetime(2025, 1, 1, tzinfo=UTC)
    weeks = [(datetime(2024, 5, 6, tzinfo=UTC), datetime(2024, 5, 13, tzinfo=UTC)),
             (datetime(2024, 5, 20, tzinfo=UTC), datetime(2024, 5, 27, tzinfo=UTC))]
    assert partitions.fit(ts, "month", weeks) == (datetime(2024, 5, 13, tzinfo=UTC), datetime(2024, 5, 20, tzinfo=UTC))
    with pytest.raises(ValueError):
        partitions.fit(datetime(2024, 5, 7, tzinfo=UTC), "month", weeks)
    assert partitions.expired(weeks, datetime(2024, 5, 14, tzinfo=UTC)) == weeks[:1]
    assert partitions.parse_bound("FOR VALUES FROM ('2024-05-06 00:00:00+00') TO ('2024-05-13 00:00:00+00')") \
        == weeks[0]


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1), timezones=st.just(UTC)),
       st.integers(min_value=0, max_value=2**62), st.sampled_from(["asc", "desc"]))
def test_cursors_come_back_exact(ts: datetime, ident: int, order: str) -> None:
    assert decode(encode(Cursor(ts, ident, order))) == Cursor(ts, ident, order)


@given(st.text())
def test_anything_else_is_not_a_cursor(token: str) -> None:
    try:
        decode(token)
    except CursorError:
        pass


def test_datagrepper_time_rules() -> None:
    now = datetime(2024, 5, 2, tzinfo=UTC)
    s, e = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 1, 6, tzinfo=UTC)
    assert time_range(None, None, None, now) == (None, None)
    assert time_range(None, None, None, now, default_delta=3600) == (now - timedelta(hours=1), None)
    assert time_range(None, None, 60, now) == (now - timedelta(seconds=60), None)
    assert time_range(s, None, None, now) == (s, None)
    assert time_range(s, None, 60, now) == (s, s + timedelta(seconds=60))
    assert time_range(None, e, None, now) == (None, e)
    assert time_range(None, e, None, now, default_delta=600) == (e - timedelta(seconds=600), e)
    assert time_range(None, e, 60, now) == (e - timedelta(seconds=60), e)
    assert time_range(s, e, 60, now) == (s, e)


@given(st.dictionaries(st.sampled_from(["start", "end", "delta", "page", "rows_per_page", "order", "user", "meta",
                                        "cursor", "contains", "callback", "size", "nonsense"]),
                       st.lists(st.text(max_size=20), min_size=1, max_size=3)))
def test_any_query_string_is_a_search_or_a_bad_parameter(params: dict[str, list[str]]) -> None:
    try:
        parse_search(params)
    except BadParameter as exc:
        assert exc.parameter in params and exc.parameter in str(exc)


def test_browsers_get_html_programs_json() -> None:
    assert negotiate.wants_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    assert not negotiate.wants_html("*/*") and not negotiate.wants_html(None)
    assert not negotiate.wants_html("application/json, text/html;q=0.5")


def test_the_feed_carries_hostile_text_as_text() -> None:
    row = {"ts": datetime(2024, 5, 1, tzinfo=UTC), "msg_id": "m&1", "topic": "org.debian.dev.logger.log",
           "body": {"log": "<b>bold</b> \x01 & more"}, "agent": None, "username": "u"}
    root = ET.fromstring(atom.feed([row], title="t", self_url="http://x/feed.atom", html_url="http://x/raw",
                                   base_url="http://x"))
    entry = root.find("{http://www.w3.org/2005/Atom}entry")
    assert entry is not None and entry.findtext("{http://www.w3.org/2005/Atom}title") == "<b>bold</b> \ufffd & more"
    assert entry.findtext("{http://www.w3.org/2005/Atom}id") == "http://x/id?id=m%261"
