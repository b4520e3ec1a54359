"""A generated stretch of Debian-like history, stored with the archive's
own Store: what the week page, the screenshots and the benchmark read.

Deterministic for a seed.  Bodies follow each message type's schema (a
test checks them), times spread over the days with a daytime peak, and
`expected` counts what each week page should say, worked out here from
the events themselves, not from the database.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from debpulse.consumers.archive.rows import Row, to_row
from debpulse.consumers.archive.store import Store
from debpulse.emitters import envelope as env
from debpulse.emitters.messages import message_for

PREFIX = "org.debian.production."
SIGNER = "4D2C9A0B77E1F3A5C6D8E90A1B2C3D4E5F607182"
PACKAGES = ["hello", "xfsprogs", "linux", "firefox-esr", "python3.12", "gcc-14", "systemd", "openssl", "glibc",
            "curl", "vim", "emacs", "nginx", "postgresql-16", "rustc", "golang-1.22", "libreoffice", "gnome-shell",
            "apt", "dpkg", "debhelper", "lintian", "qemu", "mesa", "ffmpeg", "perl", "ruby3.1", "nodejs",
            "texlive-base", "sqlite3"]
PEOPLE = ["jane", "carlos", "mika", "amelie", "ravi", "sofia", "tomasz", "noor", "lucas", "ines", "kenji", "olga"]
ARCHES = ["amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x"]
# Per hundred events.
MIX = {
    "wannabuild.package.state.update": 36, "wannabuild.package.build.complete": 18,
    "debbugs.bug.followup": 10, "debbugs.bug.report": 5, "debbugs.bug.close": 4,
    "git.receive": 9, "git.ref.update": 5, "git.tag.create": 1,
    "dak.package.accept": 7, "dak.package.new": 1, "dak.package.reject": 1, "dak.package.remove": 1,
    "logger.log": 2,
}


def maintainer(person: str) -> str:
    return f"{person.capitalize()} Example <{person}@debian.org>"


def team(name: str) -> str:
    return f"Debian {name.capitalize()} Team <team+{name}@tracker.debian.org>"


@dataclass
class History:
    seed: int = 17
    rng: random.Random = field(init=False)
    maintainers: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # week -> activity
    changes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))      # week -> sources
    n: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for i, p in enumerate(PACKAGES):
            self.maintainers[p] = team("python") if p.startswith("python") else maintainer(PEOPLE[i % len(PEOPLE)])

    def _person(self) -> str:
        # A few people do most of the work, as in any project.
        return PEOPLE[min(int(self.rng.paretovariate(1.2)) - 1, len(PEOPLE) - 1)]

    def _version(self) -> str:
        return f"{self.rng.randint(1, 9)}.{self.rng.randint(0, 20)}-{self.rng.randint(1, 4)}"

    def body(self, topic: str, when: datetime) -> dict[str, Any]:
        rng = self.rng
        pkg = PACKAGES[min(int(rng.paretovariate(0.9)) - 1, len(PACKAGES) - 1)]
        who = self._person()
        version = self._version()
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        if topic == "wannabuild.package.state.update":
            arch = rng.choice(ARCHES)
            old, new = rng.choice([("Needs-Build", "Building"), ("Building", "Built"), ("Built", "Uploaded"),
                                   ("Uploaded", "Installed"), ("Building", "Build-Attempted")])
            return {"architecture": arch, "package": pkg, "version": version, "suite": "sid", "old_state": old,
                    "new_state": new, "action": "--take" if new == "Building" else None,
                    "user": f"buildd_{arch}-{rng.randint(1, 4):02d}", "real_user": "buildd", "time": stamp}
        if topic == "wannabuild.package.build.complete":
            arch = rng.choice(ARCHES)
            result = "failed" if rng.random() < 0.12 else "successful"
            return {"architecture": arch, "package": pkg, "version": version, "suite": "sid", "result": result,
                    "build_time": rng.randint(30, 9000), "disk_space": rng.randint(10**6, 10**9),
                    "builder": f"buildd_{arch}-{rng.randint(1, 4):02d}", "time": stamp}
        if topic.startswith("debbugs."):
            bug = rng.randint(1_000_000, 1_090_000)
            body = {"bug": bug, "package": pkg, "source": pkg, "title": f"{pkg}: {rng.choice(TITLES)}",
                    "from": f"{who.capitalize()} Example <{who}@debian.org>", "severity": "normal", "tags": [],
                    "message_id": f"<{bug}.{self.n}@example.org>", "enriched": False, "status": None,
                    "via": "mail"}
            if topic == "debbugs.bug.close":
                body["version"] = version
            return body
        if topic == "git.receive":
            rev = f"{rng.getrandbits(160):040x}"
            summary = rng.choice(COMMITS)
            return {"commit": {"name": f"{who.capitalize()} Example", "email": f"{who}@debian.org", "username": who,
                               "summary": summary, "message": summary + "\n", "rev": rev, "path": f"/srv/{pkg}.git",
                               "repo": pkg, "branch": "debian/latest", "agent": who, "seen": False,
                               "url": f"https://salsa.debian.org/debian/{pkg}/-/commit/{rev}",
                               "stats": {"files": {"debian/changelog": {"additions": 6, "deletions": 0, "lines": 6}},
                                         "total": {"additions": 6, "deletions": 0, "lines": 6, "files": 1}}}}
        if topic == "git.ref.update":
            old, new = f"{rng.getrandbits(160):040x}", f"{rng.getrandbits(160):040x}"
            return {"repo": pkg, "path": f"/srv/{pkg}.git", "ref": "refs/heads/debian/latest", "kind": "branch",
                    "name": "debian/latest", "old": old, "new": new, "agent": who, "commits": rng.randint(1, 5),
                    "detailed": 1, "forced": False, "dropped": 0,
                    "url": f"https://salsa.debian.org/debian/{pkg}/-/compare/{old[:12]}...{new[:12]}"}
        if topic == "git.tag.create":
            target = f"{rng.getrandbits(160):040x}"
            return {"repo": pkg, "path": f"/srv/{pkg}.git", "ref": f"refs/tags/debian/{version}",
                    "tag": f"debian/{version}", "old": "0" * 40, "new": target, "annotated": True, "target": target,
                    "tagger": {"name": who, "email": f"{who}@debian.org"}, "message": f"{pkg} Debian release {version}",
                    "agent": who, "url": None}
        if topic in ("dak.package.accept", "dak.package.new", "dak.package.reject"):
            body = {"source": pkg, "version": version, "changes": f"{pkg}_{version}_source.changes", "route": "queue"}
            if topic == "dak.package.accept":
                body.update(architectures=["source", "all"], suites=["unstable"], maintainer=self.maintainers[pkg],
                            changed_by=maintainer(who), urgency="medium", closes=[], files=[],
                            signature="verified", signed_by=SIGNER)
            if topic == "dak.package.reject":
                body.update(reason="source-is-missing: debian/missing-sources\n", rejection="automatic")
            return body
        if topic == "dak.package.remove":
            return {"sources": [{"name": pkg, "version": version}], "binaries": [], "suites": ["unstable"],
                    "reason": "RoQA; orphaned, no reverse dependencies", "closes": [],
                    "ftpmaster": "Ftpmaster Example <ftpmaster@ftp-master.debian.org>", "route": "mail"}
        return {"log": f"heartbeat {self.n}"}

    def event(self, topic: str, when: datetime) -> dict[str, Any]:
        self.n += 1
        body = self.body(topic, when)
        return self.envelope(topic, body, when)

    def envelope(self, topic: str, body: dict[str, Any], when: datetime) -> dict[str, Any]:
        return env.build(topic=PREFIX + topic, msg=body, msg_id=env.new_msg_id(f"history-{self.seed}-{self.n}"),
                         i=self.n, username="debpulse", timestamp=int(when.timestamp()))

    def week(self, monday: datetime, per_day: int) -> list[dict[str, Any]]:
        """A week of events from `monday` (UTC midnight), counted into `counts`."""
        from debpulse.consumers.web.weeks import Week, activities_of

        name = Week.of(monday).name
        out = []
        # One package changes hands at the start of the week: an upload by
        # the old maintainer, then one naming the new (a team adopts it).
        src = PACKAGES[(monday.isocalendar()[1] * 7) % len(PACKAGES)]
        new = team(src.split("-")[0].split(".")[0])
        if new == self.maintainers[src]:
            new = maintainer(PEOPLE[-1])
        for minutes, who in ((1, self.maintainers[src]), (2, new)):
            when = monday + timedelta(minutes=minutes)
            self.n += 1
            body = self.body("dak.package.accept", when)
            body.update(source=src, maintainer=who)
            out.append(self.envelope("dak.package.accept", body, when))
            self.counts[name]["uploads"] += 1
        self.maintainers[src] = new
        self.changes[name].append(src)
        topics, weights = zip(*MIX.items(), strict=True)
        for day in range(7):
            n = int(per_day * (0.55 if day >= 5 else 1.0) * self.rng.uniform(0.85, 1.15))
            for _ in range(n):
                # More by day (European and American afternoons) than at night.
                hour = min(23, max(0, int(self.rng.gauss(14, 5))))
                when = monday + timedelta(days=day, hours=hour, seconds=self.rng.randrange(60, 3600))
                topic = self.rng.choices(topics, weights)[0]
                e = self.event(topic, when)
                out.append(e)
                result = e["msg"].get("result") if topic.endswith("build.complete") else None
                for activity in activities_of(e["topic"], result):
                    self.counts[name][activity] += 1
        return out


def recent(history: History, now: datetime, minutes: int = 60, per_minute: float = 6.0) -> list[dict[str, Any]]:
    """The last `minutes` before `now`, busier than a generated week: what
    the pulse and the live page show."""
    topics, weights = zip(*MIX.items(), strict=True)
    out = []
    for m in range(minutes):
        start = now - timedelta(minutes=minutes - m)
        for _ in range(max(0, int(history.rng.gauss(per_minute, per_minute / 2)))):
            when = start + timedelta(seconds=history.rng.randrange(60))
            out.append(history.event(history.rng.choices(topics, weights)[0], when))
    return out


TITLES = ["FTBFS with GCC 14", "please package the new upstream release", "crashes on start with a segfault",
          "typo in the manual page", "missing dependency on python3-setuptools", "CVE-2024-0001",
          "autopkgtest regression on arm64", "please update the watch file"]
COMMITS = ["New upstream release", "Update standards version, no changes needed", "Fix FTBFS with GCC 14",
           "d/control: bump debhelper compat to 13", "Add autopkgtest", "Refresh patches", "d/copyright: update years"]


def weeks_of_history(history: History, first_monday: datetime, weeks: int, per_day: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for w in range(weeks):
        out += history.week(first_monday + timedelta(weeks=w), per_day)
    return out


def rows(envelopes: list[dict[str, Any]]) -> list[Row]:
    return [to_row(e, signer=SIGNER, scope="envelope") for e in envelopes]


def store(dsn: str, envelopes: list[dict[str, Any]], batch: int = 2000) -> int:
    """Write with the archive's Store (its transactions, its positions)."""
    s = Store(dsn)
    s.connect()
    try:
        done = 0
        ordered = sorted(envelopes, key=lambda e: e["timestamp"])
        for i in range(0, len(ordered), batch):
            done += s.write(rows(ordered[i:i + batch])).stored
        return done
    finally:
        s.close()


def monday_of(when: datetime) -> datetime:
    day = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def check_bodies(envelopes: list[dict[str, Any]]) -> None:
    from debpulse.emitters.topics import relative_topic

    for e in envelopes:
        message_for(e["topic"], e["msg"]).validate(e["msg"])
        assert relative_topic(e["topic"]) in MIX
