"""The source against a real PostgreSQL with wanna-build's schema: what it
hands to the emitter, exactly once, across late commits, restarts and
server restarts."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from debpulse.adapters.wannabuild.trigger_sql import install_sql
from debpulse.emitters import metrics
from debpulse.emitters.errors import ConfigError
from debpulse.emitters.event import Event
from debpulse.emitters.messages import message_type

from .wannabuild_cluster import WannaBuild, public_transactions

BUILDD = "buildd_amd64-x86-01"


def row_of(e: Event) -> tuple[str, str, str, str, str]:
    b = e.body
    return (b["architecture"], b["package"], b["action"], b["new_state"], b["time"].removesuffix("Z"))


def states(events: list[Event], arch: str, package: str) -> list[tuple[str | None, str, str]]:
    return [(e.body["old_state"], e.body["new_state"], e.body["action"]) for e in events
            if e.topic.endswith("state.update") and e.body["architecture"] == arch and e.body["package"] == package]


def settle(recorder, n: int, extra: float = 0.6) -> list[Event]:  # noqa: ANN001
    """Wait for n events, then a few more polls, so that a repeat would show."""
    recorder.wait(n)
    time.sleep(extra)
    return list(recorder.events)


def install_trigger(wb) -> None:  # noqa: ANN001
    with wb.connect("postgres", autocommit=True) as c:  # the database administrator
        c.execute(install_sql("debpulse_wannabuild"))


@pytest.mark.parametrize("trigger", [False, True], ids=["polling", "notify"])
def test_transitions_come_out_with_old_and_new_states(wb, writer: WannaBuild, make_source, recorder,
                                                      trigger: bool) -> None:
    if trigger:
        install_trigger(wb)
    # With the trigger, the interval is far longer than the test: only NOTIFY can wake the source.
    make_source(recorder, interval=60 if trigger else 0.2, start="now").ready()
    w = writer
    # amd64: a normal build, then a binNMU of it.
    w.change("amd64", "hello", "2.10-3", "--merge-v3: needs-build", "Needs-Build")
    w.change("amd64", "hello", "2.10-3", "--take", "Building", builder=BUILDD)
    w.change("amd64", "hello", "2.10-3", "--set-built", "Built", builder=BUILDD)
    w.change("amd64", "hello", "2.10-3", "--set-uploaded", "Uploaded", builder=BUILDD)
    w.change("amd64", "hello", "2.10-3", "--merge-v3: Installed", "Installed")
    w.change("amd64", "hello", "2.10-3", "--binNMU", "Needs-Build", binnmu=1)
    # amd64: a failure
    w.change("amd64", "xfsprogs", "6.12.0-1", "--merge-v3: needs-build", "Needs-Build")
    w.change("amd64", "xfsprogs", "6.12.0-1", "--take", "Building", builder=BUILDD)
    w.change("amd64", "xfsprogs", "6.12.0-1", "--set-attempted", "Build-Attempted", builder=BUILDD)
    w.change("amd64", "xfsprogs", "6.12.0-1", "--set-failed", "Failed")
    # arm64: dep-wait and give-back
    w.change("arm64", "hebcal", "4.31-1", "--merge-v3: needs-build", "Needs-Build")
    w.change("arm64", "hebcal", "4.31-1", "--take", "Building")
    w.change("arm64", "hebcal", "4.31-1", "--dep-wait", "Dep-Wait")
    w.change("arm64", "fcmp", "0.14-1", "--merge-v3: needs-build", "Needs-Build")
    w.change("arm64", "fcmp", "0.14-1", "--take", "Building")
    w.change("arm64", "fcmp", "0.14-1", "--give-back", "BD-Uninstallable")
    # a suite that is not public never shows
    w.change("arm64", "secret", "1.0-1", "--merge-v3: needs-build", "Needs-Build", suite="sid-security")
    w.build_result("amd64", "hello", "2.10-3", "successful", 151, 123456789, BUILDD)
    w.build_result("arm64", "hebcal", "4.31-1", "failed", 42, None, "buildd_arm64-1")

    events = settle(recorder, 18)
    assert len(events) == 18
    assert states(events, "amd64", "hello") == [
        (None, "Needs-Build", "--merge-v3: needs-build"),
        ("Needs-Build", "Building", "--take"),
        ("Building", "Built", "--set-built"),
        ("Built", "Uploaded", "--set-uploaded"),
        ("Uploaded", "Installed", "--merge-v3: Installed"),
        ("Installed", "Needs-Build", "--binNMU"),
    ]
    assert states(events, "amd64", "xfsprogs")[-2:] == [
        ("Building", "Build-Attempted", "--set-attempted"), ("Build-Attempted", "Failed", "--set-failed")]
    assert states(events, "arm64", "hebcal")[-1] == ("Building", "Dep-Wait", "--dep-wait")
    assert states(events, "arm64", "fcmp")[-1] == ("Building", "BD-Uninstallable", "--give-back")
    assert not [e for e in events if e.body["package"] == "secret"]

    built = next(e for e in events if e.body.get("action") == "--set-built")
    summary = message_type(built.topic)(built.body).summary()
    assert summary == f"hello 2.10-3 on amd64 (sid): Building → Built by {BUILDD}"
    results = {e.body["architecture"]: e for e in events if e.topic.endswith("build.complete")}
    assert message_type(results["amd64"].topic)(results["amd64"].body).summary() == \
        "hello 2.10-3 built successfully on amd64 (sid) in 2m31s"
    assert results["arm64"].body["result"] == "failed" and results["arm64"].body["disk_space"] is None
    assert len({e.key for e in events}) == len(events)
    assert sorted(row_of(e) for e in events if e.topic.endswith("state.update")) == public_transactions(wb)


def test_rows_sharing_a_time_and_late_commits_come_out_exactly_once(wb, writer: WannaBuild, make_source,
                                                                   recorder) -> None:
    w = writer
    late = WannaBuild(wb.connect("wb-buildd"))     # a wanna-build run that stays open
    other = WannaBuild(wb.connect("wb-buildd"))
    t1 = w.server_now() - timedelta(seconds=5)
    t0 = t1 - timedelta(seconds=3)
    # Committed: 20 rows at one time, two of them identical.
    for i in range(18):
        w.log("amd64", f"pkg{i:02d}", "Needs-Build", time=t1, commit=False)
    w.log("amd64", "twin", "Building", time=t1, commit=False)
    w.log("amd64", "twin", "Building", time=t1, commit=False)
    w.conn.commit()
    # Open: more rows at that same time, and rows from earlier, and a real now().
    for i in range(10):
        late.log("amd64", f"late{i:02d}", "Needs-Build", time=t1, commit=False)
    late.log("amd64", "twin", "Building", time=t1, commit=False)  # a third identical copy
    for i in range(5):
        late.log("arm64", f"early{i}", "Dep-Wait", time=t0, commit=False)
    late.log("amd64", "slow-merge", "Needs-Build", commit=False)   # time = now() of the open transaction
    # Committed later, with later times: the source moves its frontier past all of the above.
    time.sleep(0.05)
    other.log("amd64", "after", "Building")
    other.log("arm64", "after", "Building")

    running = make_source(recorder)
    assert len(settle(recorder, 22)) == 22
    frontier = running.source.marks[next(s for s in running.source.streams if s.name == "amd64.transactions")].frontier
    assert frontier is not None and frontier > t1
    late.conn.commit()

    events = settle(recorder, 22 + 17)
    assert len(events) == 39
    assert Counter(row_of(e)[1] for e in events)["twin"] == 3
    assert len({e.key for e in events}) == 39
    assert sorted(row_of(e) for e in events) == public_transactions(wb)
    late.conn.close()
    other.conn.close()


def test_bounded_batches_still_take_whole_time_groups(wb, writer: WannaBuild, make_source, recorder) -> None:
    w = writer
    t = w.server_now() - timedelta(seconds=2)
    for i in range(25):
        w.log("amd64", f"group{i:02d}", "Needs-Build", time=t, commit=False)
    w.conn.commit()
    for i in range(10):
        w.log("amd64", f"single{i}", "Building", time=t + timedelta(milliseconds=i + 1))
    make_source(recorder, batch=7)
    events = settle(recorder, 35)
    assert len(events) == 35
    assert sorted(row_of(e) for e in events) == public_transactions(wb)
    # In time order within the stream.
    assert [e.body["time"] for e in events] == sorted(e.body["time"] for e in events)


def test_server_restart_in_the_middle_of_a_stream(wb, make_source, recorder) -> None:
    reconnects = metrics.value("debpulse_wannabuild_reconnects_total")
    make_source(recorder, interval=0.1)
    done = threading.Event()

    def write() -> None:
        conn = None
        for i in range(60):
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = wb.connect("wb-buildd")
                    WannaBuild(conn).change("amd64" if i % 2 else "arm64", f"p{i:02d}", "1.0-1", "--take",
                                            "Building")
                    break
                except psycopg.OperationalError:
                    # The server went away: whether that commit made it is
                    # settled by comparing with the database at the end.
                    conn = None
                    time.sleep(0.05)
            time.sleep(0.01)
        assert conn is not None
        conn.close()
        done.set()

    writer_thread = threading.Thread(target=write)
    writer_thread.start()
    recorder.wait(15)
    wb.restart()
    writer_thread.join(60)
    assert done.is_set()
    truth = public_transactions(wb)
    events = settle(recorder, len(truth), extra=1.0)
    assert sorted(row_of(e) for e in events) == truth
    assert len(truth) >= 60 and len({e.key for e in events}) == len(events)
    assert metrics.value("debpulse_wannabuild_reconnects_total") > reconnects


def test_adapter_restart_resumes_from_stored_marks(wb, writer: WannaBuild, make_source, recorder, tmp_path) -> None:
    writer.log("amd64", "before-start", "Needs-Build")   # older than the first start ("now")
    first = make_source(recorder, start="now").ready()
    for i in range(5):
        writer.log("amd64", f"first{i}", "Building")
    assert len(settle(recorder, 5)) == 5
    first.stop()
    marks = json.loads((tmp_path / "state" / "marks" / "amd64.transactions.json").read_text())
    assert marks["settled"]
    for i in range(4):
        writer.log("amd64", f"second{i}", "Building")
        writer.log("arm64", f"second{i}", "Building")

    from .conftest import Recorder
    again = Recorder()
    make_source(again, start="beginning")  # the stored marks win over --start
    events = settle(again, 8)
    assert sorted(e.body["package"] for e in events) == sorted([f"second{i}" for i in range(4)] * 2)


def test_emitter_refusing_holds_the_mark(wb, writer: WannaBuild, make_source, recorder, tmp_path) -> None:
    recorder.refuse = True
    running = make_source(recorder)
    writer.log("amd64", "held", "Building")
    time.sleep(1.0)
    assert recorder.events == []
    marks = json.loads((tmp_path / "state" / "marks" / "amd64.transactions.json").read_text())
    assert marks["seen"] == {}
    recorder.refuse = False
    events = settle(recorder, 1, extra=1.5)  # the retry backoff starts at 0.5 s
    assert [e.body["package"] for e in events] == ["held"]
    running.stop()


def test_bad_rows_are_quarantined_once_and_the_stream_goes_on(wb, writer: WannaBuild, make_source, recorder,
                                                             tmp_path: Path) -> None:
    writer.log("amd64", "good1", "Building")
    with wb.connect("wbadm") as c:
        c.execute('INSERT INTO "amd64".transactions (package, distribution, version, action, prevstate, state,'
                  " real_user, set_user, time) VALUES ('nostate', 'sid', '1.0-1', '--update', 'Building', NULL,"
                  " 'wbadm', 'wbadm', now())")
        c.execute('INSERT INTO "amd64".transactions (package, distribution, version, action, prevstate, state,'
                  " real_user, set_user, time) VALUES ('latin1', 'sid', '1.0-1', '--take', 'Needs-Build',"
                  " 'Building', E'r\\351mi', 'wbadm', now())")
    writer.log("amd64", "good2", "Building")
    before = metrics.value("debpulse_input_rejected_total", adapter="wannabuild")
    make_source(recorder)
    events = settle(recorder, 2, extra=1.0)
    assert [e.body["package"] for e in events] == ["good1", "good2"]
    rejected = tmp_path / "state" / "rejected"
    reasons = sorted(p.read_text().strip() for p in rejected.glob("*.reason"))
    assert reasons == ["real_user is not UTF-8 (invalid continuation byte at byte 1)", "state is NULL"]
    assert len(list(rejected.iterdir())) == 4
    assert metrics.value("debpulse_input_rejected_total", adapter="wannabuild") - before == 2


def test_notify_wakes_the_source_at_once(wb, writer: WannaBuild, make_source, recorder) -> None:
    make_source(recorder, interval=60, start="now").ready()
    writer.change("amd64", "quiet", "1.0-1", "--take", "Building")
    time.sleep(1.0)
    assert recorder.events == []  # no trigger: nothing before the interval
    install_trigger(wb)
    writer.change("arm64", "loud", "1.0-1", "--take", "Building")
    events = recorder.wait(1, timeout=5)
    # The notification was for arm64; amd64's row waits for the interval.
    assert [e.body["package"] for e in events] == ["loud"]


def test_unknown_architecture_is_one_clear_error(wb, make_source, recorder) -> None:
    source = make_source(recorder, architectures=["amd64", "mips"], run=False)
    with pytest.raises(ConfigError, match=r'no view "mips_public".transactions'):
        source.run()


def test_missing_grant_is_one_clear_error(wb, make_source, recorder) -> None:
    with wb.connect(autocommit=True) as c:
        c.execute('REVOKE SELECT ON "arm64_public".pkg_history FROM PUBLIC')
    try:
        source = make_source(recorder, run=False)
        with pytest.raises(ConfigError, match="permission denied for view pkg_history"):
            source.run()
    finally:
        with wb.connect(autocommit=True) as c:
            c.execute('GRANT SELECT ON "arm64_public".pkg_history TO PUBLIC')


def test_unknown_role_is_one_clear_error(wb, make_source, recorder) -> None:
    source = make_source(recorder, dsn=wb.dsn(user="nobody"), run=False)
    with pytest.raises(ConfigError, match='role "nobody" does not exist'):
        source.run()


def test_notifications_do_not_postpone_the_full_poll(wb, writer: WannaBuild, make_source, recorder) -> None:
    install_trigger(wb)
    make_source(recorder, interval=1.0, start="now").ready()
    with wb.connect(autocommit=True) as c:
        # A row that sends no notification.
        c.execute("BEGIN")
        c.execute("ALTER TABLE public.transactions DISABLE TRIGGER debpulse_notify")
        c.execute('INSERT INTO "amd64".transactions (package, distribution, version, action, prevstate, state,'
                  " real_user, set_user, time) VALUES ('unannounced', 'sid', '1.0-1', '--take', 'Needs-Build',"
                  " 'Building', 'wbadm', 'wbadm', now())")
        c.execute("ALTER TABLE public.transactions ENABLE TRIGGER debpulse_notify")
        c.execute("COMMIT")
    deadline = time.monotonic() + 2.5
    i = 0
    while time.monotonic() < deadline and "unannounced" not in [e.body["package"] for e in recorder.events]:
        writer.change("arm64", f"busy{i}", "1.0-1", "--take", "Building")  # notifies arm64 only
        i += 1
        time.sleep(0.3)
    assert "unannounced" in [e.body["package"] for e in recorder.events]


def test_unknown_timezone_is_one_clear_error(wb, make_source, recorder) -> None:
    source = make_source(recorder, timezone="Mars/Olympus_Mons", run=False)
    with pytest.raises(ConfigError, match="is not a PostgreSQL time zone"):
        source.run()
