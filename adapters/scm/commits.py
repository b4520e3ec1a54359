"""The git side of the hook: what a push brought, read with git plumbing.

One process per question (for-each-ref, rev-list, cat-file --batch,
diff-tree --stdin), never one per commit, so a push of thousands of commits
costs a handful of processes.  Parsing their output is `gitobjects.py`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from debpulse.emitters.errors import DebpulseError

from .gitobjects import (
    REFS_FORMAT,
    Commit,
    Stats,
    Tag,
    parse_batch,
    parse_commit,
    parse_numstat,
    parse_refs,
    parse_tag,
)
from .refs import RefUpdate


class GitError(DebpulseError):
    """A git command failed (a broken repository, or git missing)."""


@dataclass
class RefCommits:
    """The commits one ref update brought, oldest first."""

    update: RefUpdate
    revs: list[str] = field(default_factory=list)   # every new commit
    seen: set[str] = field(default_factory=set)     # of those, reachable from another ref before the push
    dropped: int = 0                                 # commits a forced update took off the branch

    @property
    def forced(self) -> bool:
        return self.dropped > 0


@dataclass
class PushFacts:
    """Everything push.py needs to describe a push, gathered from the repository."""

    updates: list[RefCommits]
    commits: dict[str, Commit]     # the commits described in detail
    stats: dict[str, Stats]
    tags: dict[str, Tag]           # annotated tag objects by id
    object_types: dict[str, str]   # type of each pushed new id (commit, tag, ...)


class Repository:
    def __init__(self, git_dir: Path | str, git: str = "git") -> None:
        self.git_dir = Path(git_dir)
        self.git = git

    def _run(self, *args: str, stdin: bytes | None = None) -> bytes:
        cmd = [self.git, f"--git-dir={self.git_dir}", *args]
        try:
            done = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
        except OSError as exc:
            raise GitError(f"cannot run git: {exc}") from None
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            raise GitError(f"git {args[0]} failed in {self.git_dir}: {err[-1] if err else done.returncode}")
        return done.stdout

    def refs(self) -> dict[str, str]:
        return parse_refs(self._run("for-each-ref", f"--format={REFS_FORMAT}"))

    def rev_list(self, include: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
        """Commits reachable from `include` but not from `exclude`, oldest
        first (parents before children)."""
        spec = "".join(f"{r}\n" for r in include) + "".join(f"^{r}\n" for r in exclude)
        out = self._run("rev-list", "--reverse", "--topo-order", "--stdin", stdin=spec.encode())
        return out.decode().split()

    def rev_list_both(self, old: str, new: str) -> tuple[list[str], list[str]]:
        """old...new split into (only in old, only in new), oldest first: one
        process tells both the new commits and whether the update was forced."""
        out = self._run("rev-list", "--reverse", "--topo-order", "--left-right", f"{old}...{new}")
        left, right = [], []
        for line in out.decode().split():
            (left if line.startswith("<") else right).append(line[1:])
        return left, right

    def objects(self, oids: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        wanted = list(dict.fromkeys(oids))
        if not wanted:
            return {}
        return parse_batch(self._run("cat-file", "--batch", stdin="".join(f"{o}\n" for o in wanted).encode()))

    def stats(self, commits: Sequence[Commit]) -> dict[str, Stats]:
        """Line counts of each commit against its first parent (a merge then
        counts what it brought into the branch; a root commit, every line)."""
        if not commits:
            return {}
        spec = "".join(f"{c.rev} {c.parents[0]}\n" if c.parents else f"{c.rev}\n" for c in commits)
        out = self._run("diff-tree", "--stdin", "-z", "-r", "--root", "--numstat", "--no-renames", "--always",
                        stdin=spec.encode())
        return parse_numstat(out)


def gather(repo: Repository, updates: Sequence[RefUpdate], max_commits: int,
           refs: dict[str, str] | None = None) -> PushFacts:
    """Read what `updates` (one push) brought.

    New commits of a branch update are old..new; of a branch creation, those
    no ref had before the push.  Only the first `max_commits` of each update
    are read in detail.  "Before the push" is the refs now, with the pushed
    ones put back to their old ids (post-receive runs after the update).
    `refs` is the refs as the hook saw them, when read at push time: work
    done later must not count a later push's refs as "before".
    """
    pushed = {u.ref for u in updates}
    before = [oid for ref, oid in (repo.refs() if refs is None else refs).items() if ref not in pushed]
    # Old ids of pushed tags and other refs may name trees; branches hold commits.
    before += [u.old for u in updates if not u.created and u.kind == "branch"]
    before = list(dict.fromkeys(before))

    per_ref: list[RefCommits] = []
    for u in updates:
        rc = RefCommits(u)
        if u.kind == "branch" and not u.deleted:
            if u.created:
                rc.revs = repo.rev_list([u.new], before)
            else:
                dropped, rc.revs = repo.rev_list_both(u.old, u.new)
                rc.dropped = len(dropped)
                # old..new may hold commits other refs already had (a merge of
                # a pushed feature branch); those are "seen", as in fedmsg.
                others = [oid for oid in before if oid != u.old]
                if rc.revs and others:
                    unseen = set(repo.rev_list([u.new], before))
                    rc.seen = {r for r in rc.revs if r not in unseen}
        per_ref.append(rc)

    detailed = [r for rc in per_ref for r in rc.revs[:max_commits]]
    new_ids = [u.new for u in updates if not u.deleted and u.kind != "branch"]
    raw = repo.objects([*detailed, *new_ids])
    commits: dict[str, Commit] = {}
    tags: dict[str, Tag] = {}
    for oid, (kind, data) in raw.items():
        if kind == "commit":
            commits[oid] = parse_commit(oid, data)
        elif kind == "tag":
            tags[oid] = parse_tag(oid, data)
    missing = [r for r in detailed if r not in commits]
    if missing:
        raise GitError(f"commits missing from {repo.git_dir}: {', '.join(missing[:3])}")
    stats = repo.stats([commits[r] for r in dict.fromkeys(detailed)])
    return PushFacts(per_ref, commits, stats, tags, {oid: kind for oid, (kind, _) in raw.items()})
