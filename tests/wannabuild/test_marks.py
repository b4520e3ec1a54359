"""The high-water mark with its boundary set (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

from debpulse.adapters.wannabuild.marks import Mark

T0 = datetime(2024, 12, 2, 14, 0, 0)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rows(*items: tuple[float, str]) -> list[tuple[datetime, str, tuple[float, str]]]:
    return [(t(s), d, (s, d)) for s, d in items]


def handle(mark: Mark, fetched: list[tuple[datetime, str, tuple[float, str]]]) -> list[tuple[float, str, int]]:
    out = []
    for u in mark.unseen(fetched):
        mark.record(u.time, u.digest)
        out.append((*u.row, u.occurrence))
    return out


def test_rows_at_the_boundary_are_neither_lost_nor_repeated() -> None:
    mark = Mark(settled=t(0))
    assert handle(mark, rows((1, "a"), (1, "b"))) == [(1, "a", 0), (1, "b", 0)]
    # A row with the same time committed later: only it is new.
    assert handle(mark, rows((1, "a"), (1, "b"), (1, "c"), (2, "d"))) == [(1, "c", 0), (2, "d", 0)]
    assert handle(mark, rows((1, "a"), (1, "b"), (1, "c"), (2, "d"))) == []


def test_identical_rows_are_counted() -> None:
    mark = Mark(settled=t(0))
    assert handle(mark, rows((1, "a"), (1, "a"))) == [(1, "a", 0), (1, "a", 1)]
    assert handle(mark, rows((1, "a"), (1, "a"), (1, "a"))) == [(1, "a", 2)]


def test_late_commit_far_below_the_frontier() -> None:
    mark = Mark(settled=t(0))
    handle(mark, rows((5, "x"), (50, "y")))
    assert mark.frontier == t(50)
    # A transaction that started at t=3 commits after we read t=50.
    assert handle(mark, rows((3, "late"), (5, "x"), (50, "y"))) == [(3, "late", 0)]


def test_settle_forgets_final_rows_and_ignores_them_afterwards() -> None:
    mark = Mark(settled=t(0))
    handle(mark, rows((1, "a"), (2, "b"), (3, "c")))
    assert mark.settle(t(2))
    assert mark.settled == t(2) and set(mark.seen) == {t(3)}
    assert mark.seen_count() == 1
    assert not mark.settle(t(1))  # never backwards
    assert handle(mark, rows((1, "a"), (2, "z"), (3, "c"))) == []


def test_json_round_trip() -> None:
    mark = Mark(settled=t(0))
    handle(mark, rows((1, "a"), (1, "a"), (2.5, "b")))
    again = Mark.from_json(mark.to_json())
    assert again == mark
    assert Mark.from_json(Mark().to_json()) == Mark()
