"""Real pushes through the installed hook to a real relay and subscriber."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from debpulse.adapters.scm.install import default_command, hook_text, install

from .conftest import Git, wait_drained

ZERO = "0" * 40
WEB = "https://salsa.example.org/{repo}"


def hooked_repo(git: Git, tmp_path: Path, *args: str) -> tuple[Path, Path]:
    bare = git.bare(tmp_path / "hello.git")
    install(bare, hook_text(default_command(), ["--web-url", WEB, *args]))
    return bare, git.clone(bare, tmp_path / "work")


def by_topic(received: list) -> dict[str, list]:  # type: ignore[type-arg]
    out: dict[str, list] = {}  # type: ignore[type-arg]
    for r in received:
        out.setdefault(r.topic.removeprefix("org.debian.dev.git."), []).append(r)
    return out


def test_create_update_tags_branch_delete(bus, bus_git: Git, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    git = bus_git
    bare, work = hooked_repo(git, tmp_path)
    sub = bus.subscriber()

    first = git.commit(work, "Initial packaging", {"debian/control": "Source: hello\n"})
    git(work, "push", "-q", "origin", "master")
    got = sub.wait(2)
    assert [r.topic for r in got] == ["org.debian.dev.git.ref.create", "org.debian.dev.git.receive"]
    assert all(r.verdict.ok for r in got)
    commit = got[1].body["commit"]
    assert (commit["rev"], commit["branch"], commit["repo"], commit["seen"]) == (first, "master", "hello", False)
    assert commit["stats"]["files"] == {"debian/control": {"additions": 1, "deletions": 0, "lines": 1}}
    assert commit["path"] == str(bare.resolve())
    assert got[1].summary == f"Jane Maintainer committed {first[:7]} to hello (master): Initial packaging"

    second = git.commit(work, "Fix typo", {"debian/control": "Source: hello\nSection: devel\n"})
    git(work, "tag", "-a", "-m", "hello 1.0-1", "debian/1.0-1")
    git(work, "tag", "light")
    git(work, "branch", "upstream", first)
    git(work, "push", "-q", "origin", "master", "debian/1.0-1", "light", "upstream")
    got = sub.wait(5)
    topics = Counter(r.topic.rsplit("dev.", 1)[1] for r in got)
    assert topics == {"git.ref.update": 1, "git.receive": 1, "git.tag.create": 2, "git.ref.create": 1}
    tags = {r.body["tag"]: r.body for r in by_topic(got)["tag.create"]}
    assert tags["debian/1.0-1"]["annotated"] is True and tags["debian/1.0-1"]["target"] == second
    assert tags["debian/1.0-1"]["message"] == "hello 1.0-1\n"
    assert tags["light"]["annotated"] is False and tags["light"]["new"] == second
    [update] = by_topic(got)["ref.update"]
    assert update.summary.endswith("pushed 1 commit to hello (master)") and update.body["forced"] is False
    [create] = by_topic(got)["ref.create"]
    assert create.body["name"] == "upstream" and create.body["commits"] == 0

    git(work, "push", "-q", "origin", ":upstream", ":light")
    got = sub.wait(2)
    assert {(r.body["kind"], r.body["name"]) for r in got} == {("branch", "upstream"), ("tag", "light")}
    assert all(r.topic.endswith("git.ref.delete") for r in got)
    wait_drained(bare)


def test_merge_and_force_push(bus, bus_git: Git, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    git = bus_git
    bare, work = hooked_repo(git, tmp_path)
    sub = bus.subscriber()
    base = git.commit(work, "base", {"a": "1\n"})
    git(work, "push", "-q", "origin", "master")
    git(work, "checkout", "-q", "-b", "feature")
    feature = git.commit(work, "feature work", {"b": "1\n2\n"})
    git(work, "push", "-q", "origin", "feature")
    git(work, "checkout", "-q", "master")
    side = git.commit(work, "master work", {"a": "1\nmore\n"})
    git(work, "merge", "-q", "--no-ff", "-m", "Merge branch 'feature'", "feature")
    merge = git(work, "rev-parse", "HEAD")
    sub.wait(4)  # base and feature pushes
    git(work, "push", "-q", "origin", "master")
    got = {r.body["commit"]["rev"]: r for r in sub.wait(4) if r.topic.endswith("git.receive")}
    assert set(got) == {feature, side, merge}
    assert got[feature].body["commit"]["seen"] is True  # already on the feature branch
    assert got[side].body["commit"]["seen"] is False
    # A merge counts what it brought into the branch (its first parent's view).
    assert got[merge].body["commit"]["stats"]["files"] == {"b": {"additions": 2, "deletions": 0, "lines": 2}}

    git(work, "reset", "-q", "--hard", base)
    redo = git.commit(work, "rewritten history", {"c": "x\n"})
    git(work, "push", "-q", "--force", "origin", "master")
    got = sub.wait(2)
    update = next(r for r in got if r.topic.endswith("git.ref.update"))
    assert update.body["forced"] is True and update.body["dropped"] == 3 and update.body["commits"] == 1
    assert update.summary == "jane force-pushed 1 commit to hello (master), dropping 3 commits".replace(
        "jane", update.body["agent"])
    assert [r.body["commit"]["rev"] for r in got if r.topic.endswith("git.receive")] == [redo]
    wait_drained(bare)


def test_non_utf8_author_and_message(bus, bus_git: Git, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    git = bus_git
    bare, work = hooked_repo(git, tmp_path)
    sub = bus.subscriber()
    git.commit(work, "base", {"a": "1\n"})
    tree = git(work, "write-tree")

    def raw_commit(parent: str, author: bytes, message: bytes, headers: bytes = b"") -> str:
        # Written byte for byte: `git commit` would re-encode undeclared Latin-1 to UTF-8.
        obj = (b"tree %s\nparent %s\nauthor %s <a@example.org> 1795773251 +0000\n"
               b"committer Jane Maintainer <jane@example.org> 1795773251 +0000\n%s\n%s"
               % (tree.encode(), parent.encode(), author, headers, message))
        return git(work, "hash-object", "-t", "commit", "-w", "--stdin", input=obj)

    latin1 = raw_commit(git(work, "rev-parse", "HEAD"), b"Ren\xe9 Fran\xe7ois",
                        b"Corrig\xe9 \x93typo\x94\n\nD\xe9tails\n")
    declared = raw_commit(latin1, b"\xa9imon", b"\xa9koda\n", b"encoding ISO-8859-2\n")
    broken = raw_commit(declared, b"\xff\xfe", b"bytes \x81\x8d\xff\n")
    git(work, "update-ref", "refs/heads/master", broken)
    git(work, "push", "-q", "origin", "master")
    got = [r.body["commit"] for r in sub.wait(5) if r.topic.endswith("git.receive")]
    by_rev = {c["rev"]: c for c in got}
    assert by_rev[latin1]["name"] == "René François"
    assert by_rev[latin1]["message"] == "Corrigé \u201ctypo\u201d\n\nDétails\n"
    assert by_rev[latin1]["summary"] == "Corrigé \u201ctypo\u201d"
    assert (by_rev[declared]["name"], by_rev[declared]["summary"]) == ("Šimon", "Škoda")
    assert by_rev[broken]["name"] == "ÿþ"  # Latin-1, the last resort, maps every byte
    assert by_rev[broken]["message"] == "bytes \x81\x8d\xff\n"
    wait_drained(bare)


def fast_import_commits(git: Git, work: Path, n: int) -> None:
    """n commits on master in one git process, each changing one file."""
    parent = git(work, "rev-parse", "HEAD")
    stream = [f"commit refs/heads/master\nmark :1\ncommitter Jane Maintainer <jane@example.org> 1795773251 +0000\n"
              f"data 7\nimport\nfrom {parent}\nM 644 inline f\ndata 2\n0\n"]
    for i in range(2, n + 1):
        msg = f"import {i}\n"
        stream.append(f"commit refs/heads/master\nmark :{i}\n"
                      f"committer Jane Maintainer <jane@example.org> {1795773251 + i} +0000\n"
                      f"data {len(msg)}\n{msg}from :{i - 1}\nM 644 inline f\ndata {len(str(i)) + 1}\n{i}\n")
    git(work, "fast-import", "--quiet", input="".join(stream).encode())
    git(work, "reset", "-q", "--hard", "master")


def test_push_of_2000_commits_is_bounded(bus, bus_git: Git, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    git = bus_git
    bare, work = hooked_repo(git, tmp_path, "--max-commits", "20")
    sub = bus.subscriber()
    git.commit(work, "base", {"a": "1\n"})
    git(work, "push", "-q", "origin", "master")
    assert len(sub.wait(2)) == 2
    fast_import_commits(git, work, 2000)
    git(work, "push", "-q", "origin", "master")
    got = sub.wait(21)
    assert len(got) == 21 and not sub.wait(1, timeout=1.0)
    update = got[0]
    assert update.topic.endswith("git.ref.update")
    assert (update.body["commits"], update.body["detailed"]) == (2000, 20)
    assert update.summary.endswith("pushed 2000 commits to hello (master) (first 20 described)")
    summaries = [r.body["commit"]["summary"] for r in got[1:]]
    assert summaries == ["import"] + [f"import {i}" for i in range(2, 21)]  # the first 20, oldest first
    wait_drained(bare)


def test_relay_down_pushes_succeed_and_arrive_later(bus, bus_git: Git, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    git = bus_git
    bare, work = hooked_repo(git, tmp_path)
    bus.stop()
    revs, durations = [], []
    for i in range(5):
        revs.append(git.commit(work, f"change {i}", {"a": f"{i}\n"}))
        started = time.monotonic()
        git(work, "push", "-q", "origin", "master")  # raises unless the push succeeded
        durations.append(time.monotonic() - started)
    wait_drained(bare)  # every push is in the relay's spool now
    spool = Path(bus.env["DEBPULSE_STATE_DIR"]) / "spool"
    assert len(list(spool.glob("*.json"))) == 10
    bus.start()
    sub = bus.subscriber()
    got = sub.wait(10, timeout=20)
    assert len(got) == 10 and all(r.verdict.ok for r in got)
    assert [r.body["commit"]["rev"] for r in got if r.topic.endswith("git.receive")] == revs
    assert len({r.body.get("commit", {}).get("rev") or r.body["new"] for r in got}) == 5
    print(f"push durations with the relay down: {', '.join(f'{d * 1000:.0f} ms' for d in durations)}")


def test_upstream_import_of_14500_files_arrives_live(bus, bus_git: Git, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One commit adding ~14,500 files once became a 1.6 MB message that
    every subscriber dropped as oversized: the file list is shortened, and
    the message says by how much."""
    from debpulse.adapters.scm.push import MAX_FILES
    from debpulse.emitters.envelope import MAX_FRAME_BYTES

    git = bus_git
    bare, work = hooked_repo(git, tmp_path)
    sub = bus.subscriber()
    # Small pushes until one arrives live: the SUB socket has joined.
    for n in range(50):
        git.commit(work, f"Prepare {n}")
        git(work, "push", "-q", "origin", "master")
        if any(not r.replayed for r in sub.wait(3 if n else 2, timeout=30)):
            break
    for d in range(145):
        (work / "upstream" / f"dir{d:03}").mkdir(parents=True)
        for f in range(100):
            (work / "upstream" / f"dir{d:03}" / f"source-file-{f:03}.c").write_text(f"/* {d} {f} */\n")
    git(work, "add", "upstream")
    git(work, "commit", "-q", "-m", "New upstream version 1.0")
    git(work, "push", "-q", "origin", "master")
    wait_drained(bare)
    got = by_topic(sub.wait(2, timeout=30))
    [received] = got["receive"]
    stats = received.body["commit"]["stats"]
    assert stats["total"]["files"] == 14500 and len(stats["files"]) == MAX_FILES
    assert stats["files_omitted"] == 14500 - MAX_FILES
    # It came live (an idle subscriber's catch-up may fetch it first; the
    # live frame is then recognised as already delivered), never dropped.
    assert sub.wait(1, timeout=3) == []  # take the live frames still on their way
    assert "oversized" not in sub.sub.counts
    assert not received.replayed or sub.sub.counts.get("already-delivered", 0) >= 1
    assert len(received.envelope["signature"]) + len(str(received.body)) < MAX_FRAME_BYTES
