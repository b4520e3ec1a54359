"""debpulse-notify: bus to mailbox latency, and the rule engine's cost per
message with 10,000 rules.

    python tests/bench/bench_notify.py [MESSAGES]

Latency: a message published through the real relay, matched by
debpulse-notify, mailed through exim4 (-odi, the sendmail interface) into a
Maildir; median and p99 from the publisher's call to the file in new/,
beside exim alone delivering the same kind of mail (the reference).

Rules: 10,000 people with one rule each (packages, users, teams, my
packages, topic-only), and a mix of real message shapes; the indexed
match against checking every rule in turn, in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dak.conftest import Exim  # noqa: E402
from services import BusService  # noqa: E402
from testbus import Bus, drop_gpg_key, make_gpg_key, median_time  # noqa: E402

from debpulse.consumers.common.facts import facts  # noqa: E402
from debpulse.consumers.notify.rules import RuleBook, recipient_from  # noqa: E402

BUG = {"bug": 1000, "package": "hello", "source": "hello", "title": "crash", "from": "Carol <carol@example.org>",
       "severity": "important", "tags": [], "message_id": None, "enriched": False, "status": None, "via": "mail"}
ACCEPT = {"source": "hello", "version": "2.10-3", "architectures": ["source"], "suites": ["unstable"],
          "maintainer": "Team <team@lists.example.org>", "changed_by": "A <a@debian.org>", "urgency": "medium",
          "closes": [], "files": [], "changes": "hello_2.10-3_source.changes", "signature": "verified",
          "signed_by": None, "route": "mail"}


def p99(samples: list[float]) -> float:
    return sorted(samples)[min(len(samples) - 1, int(len(samples) * 0.99))]


def wait_file(new: Path, count: int) -> None:
    while len(os.listdir(new)) < count:
        time.sleep(0.0005)


def latency(n: int) -> None:
    key = make_gpg_key()
    base = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    base.chmod(0o755)  # exim delivers as user mail below it
    bus = Bus(base / "bus", key)
    bus.start()
    exim_base = base / "exim"
    exim_base.mkdir()
    exim = Exim(exim_base)
    box = exim.maildir("alice")
    ref_box = exim.maildir("ref")
    rules = base / "notify.d"
    rules.mkdir()
    (rules / "alice.toml").write_text('mail = "alice@debpulse.test"\n[[rule]]\nname = "bugs"\n'
                                      'topics = ["debbugs.bug.report"]\nto = ["mail"]\n')
    config = base / "notify.toml"
    sendmail = ["exim4", "-C", str(exim.conf), "-odi", "-oi", "-t"]
    config.write_text(f"[notify]\nfrom = \"n@debpulse.test\"\nsendmail = {sendmail!r}\n".replace("'", '"'))
    from debpulse.emitters.config import Config
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.relay_client import RelayClient

    os.environ.update(bus.env)
    client = RelayClient(BusOptions.from_args(argparse.Namespace(), Config(), name="bench"))
    notify = BusService(bus, base, "notify", "debpulse.consumers.notify.cli",
                        ["--config", str(config), "--rules", str(rules)])
    try:
        notify.start()
        notify.wait_joined_bus(lambda topic, *bodies: client.emit_many([Event(topic, b) for b in bodies]))
        samples = []
        for i in range(n):
            t0 = time.perf_counter()
            client.emit_many([Event("debbugs.bug.report", {**BUG, "bug": 1000 + i})])
            wait_file(box / "new", i + 1)
            samples.append(time.perf_counter() - t0)
        mail = (box / "new" / sorted(os.listdir(box / "new"))[0]).read_bytes()
        mail = mail.replace(b"alice@debpulse.test", b"ref@debpulse.test")
        reference = []
        for i in range(n):
            t0 = time.perf_counter()
            subprocess.run(["exim4", "-C", str(exim.conf), "-odi", "-oi", "-t"], input=mail, check=True)
            wait_file(ref_box / "new", i + 1)
            reference.append(time.perf_counter() - t0)
        print(f"bus -> mailbox ({n} messages, one at a time): median {statistics.median(samples) * 1e3:.1f} ms, "
              f"p99 {p99(samples) * 1e3:.1f} ms")
        print(f"reference, exim -odi alone delivering the same mail: median "
              f"{statistics.median(reference) * 1e3:.1f} ms, p99 {p99(reference) * 1e3:.1f} ms")
    finally:
        notify.stop()
        bus.close()
        drop_gpg_key(key)
        shutil.rmtree(base, ignore_errors=True)


def rule_engine(people: int = 10_000) -> None:
    recipients = []
    for i in range(people):
        # Most people follow their packages, named packages, people or teams;
        # one in a hundred follows a whole topic.
        kind = 4 if i % 100 == 99 else i % 4
        rule = ['my_packages = true', f'packages = ["pkg{i % 3000}"]', f'users = ["user{i % 500}"]',
                f'teams = ["team{i % 200}"]', f'topics = ["{["dak.package.remove", "debbugs.bug.close"][i % 2]}"]'
                ][kind]
        text = f'irc = "p{i}"\naddresses = ["p{i}@debian.org"]\n[[rule]]\nname = "r"\n{rule}\nto = ["irc"]\n'
        recipients.append(recipient_from(tomllib.loads(text), f"p{i}.toml", f"p{i}"))
    book = RuleBook(recipients)
    owners = {f"pkg{j}": {f"p{j * 5 % people}@debian.org"} for j in range(3000)}
    messages = [facts("org.debian.production.debbugs.bug.report",
                      {**BUG, "package": f"pkg{j}", "source": f"pkg{j}", "from": f"user{j % 500}@debian.org"})
                for j in range(0, 3000, 30)]
    messages += [facts("org.debian.production.dak.package.accept",
                       {**ACCEPT, "source": f"pkg{j}", "maintainer": f"T <team{j % 200}@lists.example.org>"})
                 for j in range(0, 3000, 30)]
    messages += [facts("org.debian.production.dak.package.remove",
                       {"sources": [{"name": f"pkg{j}", "version": "1"}], "binaries": [], "suites": ["unstable"],
                        "reason": "x", "closes": [], "route": "mail"}) for j in range(0, 3000, 30)]

    def lookup(p: str) -> set[str]:
        return owners.get(p, set())

    def indexed() -> int:
        return sum(len(book.match(f, lookup)) for f in messages)

    def scan() -> int:
        total = 0
        for f in messages:
            mine = {a for p in f.packages for a in lookup(p)}
            for r in recipients:
                total += sum(1 for rule in r.rules if rule.follows(f, bool(mine & r.addresses)))
        return total

    matched = indexed()
    assert matched == scan(), "the index and the scan disagree"
    per = median_time(indexed, 9) / len(messages)
    per_scan = median_time(scan, 3) / len(messages)
    print(f"rule engine, {len(book):,} rules: {per * 1e6:.1f} us per message ({matched / len(messages):.1f} "
          f"matches per message, {len(messages)} messages)")
    print(f"reference, checking every rule in turn: {per_scan * 1e3:.2f} ms per message "
          f"({per_scan / per:.0f}x the index)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rule_engine()
    latency(n)


if __name__ == "__main__":
    main()
