"""How much debpulse-trigger adds around the command it runs.

    python tests/bench/bench_trigger.py [ROUNDS]

Prints the median time to build the invocation (argv, DEBPULSE_* variables,
JSON-lines stdin) for one message and for a 1000-message debounce batch,
made from the real dak ACCEPTED sample ($DEBPULSE_FIXTURES or
../shared/fixtures), the topic match per message, and the runner's overhead
per run of /bin/true (process start and wait) compared with a bare
subprocess.run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from debpulse.adapters.dak.mail import parse_mail
from debpulse.consumers.trigger.runner import DeadLetters, RetryPolicy, Runner, TopicFilter, for_messages

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from testbus import fixtures_dir, median_time  # noqa: E402

FIXTURES = fixtures_dir()
MAIL = FIXTURES / "dak" / "mails" / "04-ACCEPTED-maintainer_xfsprogs_6.12.0-1_source_2024-pgpmime.eml"


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    [event] = parse_mail(MAIL.read_bytes()).events
    envs = [{"topic": "org.debian.production." + event.topic, "msg": {**event.body, "source": f"pkg{i}"},
             "msg_id": f"2026-{i}", "seq_id": i, "publisher": "relay@ftp-master", "timestamp": 0.0,
             "signature": "x" * 160, "crypto": "openpgp-envelope"} for i in range(1000)]
    one = median_time(lambda: for_messages(["import"], envs[:1]), rounds)
    batch = median_time(lambda: for_messages(["import"], envs), max(5, rounds // 20))
    topics = TopicFilter(["dak.package.accept", "debbugs.bug.#", "wannabuild.*.state.update"])
    match = median_time(lambda: [topics.matches(e["topic"]) for e in envs], max(5, rounds // 20)) / len(envs)
    print(f"invocation, one message: {one * 1e3:.3f} ms")
    print(f"invocation, 1000-message batch: {batch * 1e3:.1f} ms ({len(for_messages(['x'], envs).stdin)} bytes stdin)")
    print(f"topic match: {match * 1e6:.2f} us per message (3 patterns)")
    runs = max(10, rounds // 4)
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(RetryPolicy(attempts=1), DeadLetters(Path(tmp)))
        inv = for_messages(["/bin/true"], envs[:1])
        bare = median_time(lambda: subprocess.run(["/bin/true"], input=inv.stdin, check=True), runs)
        ours = median_time(lambda: runner.run(inv), runs)
    print(f"run /bin/true: {ours * 1e3:.2f} ms through the runner, {bare * 1e3:.2f} ms bare subprocess.run "
          f"({runs} runs)")


if __name__ == "__main__":
    main()
