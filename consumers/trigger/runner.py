"""debpulse-trigger's logic: which messages match, what the command is given,
and running it with retries, dead letters, concurrency and debounce.

The command line is fixed when the trigger starts: message content reaches
the command only on stdin (JSON lines, one envelope per line) and in
DEBPULSE_* environment variables, never through a shell and never in argv.
fedmsg-trigger built `echo '%s' | cmd` and so ran message text as shell code.

Acknowledgements follow the subscriber's rule: a message is acked only when
it and every earlier message of the same publisher are handled (run
successfully, or dead-lettered), so that a restart with --resume neither
misses nor repeats anything, whatever the concurrency.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from debpulse.emitters import metrics
from debpulse.emitters.errors import ConfigError, DebpulseError
from debpulse.emitters.subscriber import Gap, Received
from debpulse.emitters.topics import relative_topic, topic_matches

log = logging.getLogger(__name__)

# Variables the trigger sets; inherited ones of these names are dropped so a
# stale DEBPULSE_PACKAGE from the service's own environment never leaks in.
ENV_NAMES = (
    "DEBPULSE_TOPIC", "DEBPULSE_MSG_ID", "DEBPULSE_PACKAGE", "DEBPULSE_VERSION", "DEBPULSE_SUITE",
    "DEBPULSE_COUNT", "DEBPULSE_TOPICS", "DEBPULSE_PACKAGES", "DEBPULSE_SUITES",
)
# A single environment string may not exceed 128 KiB on Linux (MAX_ARG_STRLEN).
MAX_VALUE = 4096
MAX_LIST = 100_000
OUTPUT_KEPT = 1 << 20  # bytes of each attempt's output kept in a dead letter


# -- which messages ------------------------------------------------------------


class TopicFilter:
    """`--topic` patterns.  With `*` (one part) or `#` (any number of parts)
    a pattern is matched as signer policies match (`topic_matches`);
    otherwise it is a topic or a prefix of whole parts.  Patterns starting
    with `org.` apply to the full topic, others to the service-relative one
    (`dak.package.accept` matches it in every environment)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        if not patterns:
            raise ConfigError("give at least one --topic PATTERN")
        for p in patterns:
            if not p or any(c.isspace() for c in p) or ".." in p or p.startswith("."):
                raise ConfigError(f"--topic {p!r}: a topic pattern is dotted parts, '*' or '#'")
        self.patterns = list(patterns)

    @staticmethod
    def _wild(pattern: str) -> bool:
        return "*" in pattern or "#" in pattern

    def matches(self, topic: str) -> bool:
        relative = relative_topic(topic)
        for p in self.patterns:
            subject = topic if p.startswith("org.") else relative
            if self._wild(p):
                if topic_matches(p, subject):
                    return True
            else:
                prefix = p.rstrip(".")
                if subject == prefix or subject.startswith(prefix + "."):
                    return True
        return False

    def subscription(self) -> list[str] | None:
        """SUB socket prefixes: the patterns themselves when all are full
        literal topics, otherwise everything (filtered here)."""
        if all(p.startswith("org.") and not self._wild(p) for p in self.patterns):
            return [p.rstrip(".") for p in self.patterns]
        return None


# -- what the command is given (pure) ------------------------------------------


@dataclass(frozen=True)
class Invocation:
    argv: tuple[str, ...]
    env: dict[str, str]         # the DEBPULSE_* variables only
    stdin: bytes                # JSON lines, one envelope per line
    label: str                  # for logs and dead-letter names
    count: int = 1


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(value: str, limit: int = MAX_VALUE) -> str:
    """An environment value: no NUL (the C environment cannot hold it), valid
    UTF-8 (no lone surrogates), bounded."""
    return _SURROGATE.sub("\ufffd", value.replace("\0", ""))[:limit]


def envelope_line(envelope: Mapping[str, Any]) -> bytes:
    """One envelope as one line (JSON escapes every newline inside strings)."""
    try:
        text = json.dumps(envelope, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # lone surrogates from the wire: ASCII escapes are still valid JSON
        return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def message_fields(topic: str, body: Mapping[str, Any], packages: Iterable[str] = ()) -> dict[str, list[str]]:
    """The package(s), version(s) and suite(s) a body names, in the field
    names the adapters use: `source`/`package` (debbugs' `src:` prefix
    dropped), `version`, `suite`/`suites`/`distribution`.  `packages` is what
    the message type says (its `packages()`), used when the body has no
    single name."""
    names: list[str] = []
    for key in ("source", "package"):
        v = _str(body.get(key))
        if v:
            names.append(v.removeprefix("src:"))
            break
    if not names:
        names = [p for p in packages if isinstance(p, str) and p]
    if not names and isinstance(body.get("sources"), list):
        names = [s.get("name") for s in body["sources"] if isinstance(s, dict) and _str(s.get("name"))]
    versions = [v] if (v := _str(body.get("version"))) else []
    suites: list[str] = []
    for key in ("suite", "suites", "distribution"):
        v = body.get(key)
        if _str(v):
            suites = [v]
        elif isinstance(v, list):
            suites = [s for s in v if _str(s)]
        if suites:
            break
    return {"package": names, "version": versions, "suite": suites}


def _word_list(values: Iterable[str]) -> str:
    """Distinct values in first-seen order, space-separated.  A value holding
    whitespace would split wrongly in `for p in $DEBPULSE_PACKAGES`: it is
    left out (it is still on stdin)."""
    out: dict[str, None] = {}
    size = 0
    for v in values:
        v = clean(v)
        if not v or v in out or any(c.isspace() for c in v):
            continue
        if size + len(v) + 1 > MAX_LIST:
            break
        out[v] = None
        size += len(v) + 1
    return " ".join(out)


def _fields_of(envelope: Mapping[str, Any], packages: Iterable[str] = ()) -> dict[str, list[str]]:
    body = envelope.get("msg")
    return message_fields(str(envelope.get("topic", "")), body if isinstance(body, dict) else {}, packages)


def for_messages(argv: Sequence[str], envelopes: Sequence[Mapping[str, Any]],
                 packages: Sequence[Iterable[str]] | None = None) -> Invocation:
    """The invocation for one message or a batch.  Singular variables
    (DEBPULSE_TOPIC, _PACKAGE, _VERSION, _SUITE) are set when every message
    agrees on one value; DEBPULSE_MSG_ID is the last message's; the plural
    ones (DEBPULSE_TOPICS, _PACKAGES, _SUITES) list the distinct values."""
    if not envelopes:
        raise ValueError("no messages")
    fields = [_fields_of(e, packages[i] if packages else ()) for i, e in enumerate(envelopes)]
    topics = [str(e.get("topic", "")) for e in envelopes]
    env: dict[str, str] = {"DEBPULSE_COUNT": str(len(envelopes)),
                           "DEBPULSE_MSG_ID": clean(str(envelopes[-1].get("msg_id", "")))}

    def single(values: list[list[str]]) -> str | None:
        distinct = {tuple(v) for v in values}
        if len(distinct) == 1:
            (only,) = distinct
            if len(only) == 1:
                return only[0]
        return None

    if (t := single([[t] for t in topics])) is not None:
        env["DEBPULSE_TOPIC"] = clean(t)
    for name in ("package", "version", "suite"):
        if (v := single([f[name] for f in fields])) is not None:
            env[f"DEBPULSE_{name.upper()}"] = clean(v)
    env["DEBPULSE_TOPICS"] = _word_list(topics)
    env["DEBPULSE_PACKAGES"] = _word_list(p for f in fields for p in f["package"])
    env["DEBPULSE_SUITES"] = _word_list(s for f in fields for s in f["suite"])
    stdin = b"".join(envelope_line(e) for e in envelopes)
    first = str(envelopes[0].get("msg_id", ""))
    label = first if len(envelopes) == 1 else f"batch-{len(envelopes)}-{first}"
    return Invocation(tuple(argv), env, stdin, label, len(envelopes))


def child_environment(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ENV_NAMES}
    env.update({k: clean(v) for k, v in extra.items()})
    return env


# -- acknowledging in order ------------------------------------------------------


class Ticket:
    __slots__ = ("item", "done")

    def __init__(self, item: Received | Gap) -> None:
        self.item = item
        self.done = False


class InOrderAcks:
    """Items in arrival order per publisher; `finish` returns those that may
    now be acked: every item up to the first one still being handled."""

    def __init__(self) -> None:
        self._queues: dict[str | None, deque[Ticket]] = {}

    def add(self, item: Received | Gap) -> Ticket:
        ticket = Ticket(item)
        self._queues.setdefault(item.publisher, deque()).append(ticket)
        return ticket

    def finish(self, tickets: Iterable[Ticket]) -> list[Received | Gap]:
        ready: list[Received | Gap] = []
        for t in tickets:
            t.done = True
        for name, q in list(self._queues.items()):
            while q and q[0].done:
                ready.append(q.popleft().item)
            if not q:
                del self._queues[name]
        return ready

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())


# -- running the command ------------------------------------------------------------


@dataclass
class RetryPolicy:
    attempts: int = 5           # runs before the message is dead-lettered
    backoff: float = 2.0        # first wait; doubles each time
    max_backoff: float = 300.0
    timeout: float | None = None  # per run
    stop_timeout: float = 10.0  # SIGTERM to the command's process group, then SIGKILL

    def check(self) -> None:
        if self.attempts < 1:
            raise ConfigError("--attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.stop_timeout < 0:
            raise ConfigError("--backoff, --max-backoff and --stop-timeout must not be negative")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError("--timeout must be positive")

    def delay(self, failures: int) -> float:
        return min(self.max_backoff, self.backoff * 2 ** (failures - 1))


@dataclass
class Attempt:
    started: float
    seconds: float
    status: str                 # "exit 0", "exit 3", "killed by SIGSEGV", "timed out after 5 s", "cannot run: ..."
    output: bytes

    @property
    def ok(self) -> bool:
        return self.status == "exit 0"


@dataclass
class Outcome:
    invocation: Invocation
    attempts: list[Attempt] = field(default_factory=list)
    dead_letter: Path | None = None
    interrupted: bool = False   # stopped before it was handled: not to be acked

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def handled(self) -> bool:
        return not self.interrupted and (self.ok or self.dead_letter is not None)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80].strip("._") or "message"


class DeadLetters:
    """One directory per message or batch given up on:
    `messages.jsonl` (exactly the stdin the command got), `output` (each
    attempt's status line and output), `reason` (one line), and
    `invocation.json` (argv, DEBPULSE_* variables, attempts).  Written under
    a temporary name and renamed, so a directory that exists is complete."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _new(self, name: str) -> tuple[Path, Path]:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.directory / f"{stamp}-{_safe_name(name)}"
        n = 1
        while target.exists():
            target = self.directory / f"{stamp}-{_safe_name(name)}.{n}"
            n += 1
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.directory))
        return tmp, target

    @staticmethod
    def _commit(tmp: Path, target: Path) -> None:
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, target)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def put(self, inv: Invocation, attempts: Sequence[Attempt], reason: str) -> Path:
        tmp, target = self._new(inv.label)
        (tmp / "messages.jsonl").write_bytes(inv.stdin)
        with open(tmp / "output", "wb") as fh:
            for n, a in enumerate(attempts, 1):
                when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a.started))
                fh.write(f"== attempt {n} at {when}: {a.status} after {a.seconds:.2f} s\n".encode())
                fh.write(a.output)
                if a.output and not a.output.endswith(b"\n"):
                    fh.write(b"\n")
        (tmp / "reason").write_text(" ".join(reason.split()) + "\n")
        (tmp / "invocation.json").write_text(json.dumps({
            "argv": list(inv.argv), "env": inv.env, "count": inv.count,
            "attempts": [{"started": a.started, "seconds": round(a.seconds, 3), "status": a.status}
                         for a in attempts],
        }, indent=1, sort_keys=True) + "\n")
        self._commit(tmp, target)
        return target

    def gap(self, gap: Gap) -> Path:
        """A permanent gap: messages that will never come.  Kept beside the
        dead letters so that an operator sees them and runs a full import."""
        tmp, target = self._new(f"gap-{gap.publisher}-{gap.first}-{gap.last}")
        (tmp / "reason").write_text(
            f"messages {gap.first}..{gap.last} of {gap.publisher} were lost: {' '.join(gap.reason.split())}\n")
        (tmp / "gap.json").write_text(json.dumps({"publisher": gap.publisher, "first": gap.first,
                                                  "last": gap.last, "reason": gap.reason}, sort_keys=True) + "\n")
        self._commit(tmp, target)
        return target


def _status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


def _tail(fh: Any, limit: int) -> bytes:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - limit))
    data = fh.read()
    return (b"[... output cut ...]\n" + data) if size > limit else data


def _last_line(output: bytes) -> str:
    lines = [line for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


class Runner:
    """Runs an invocation until it succeeds, up to `attempts` times with
    exponential backoff, then dead-letters it.  Each run is its own process
    group (its own session), so stopping reaches the importer's children
    too.  Thread-safe: one Runner serves every worker."""

    def __init__(self, retry: RetryPolicy, dead_letters: DeadLetters,
                 base_env: Mapping[str, str] | None = None) -> None:
        self.retry = retry
        self.dead_letters = dead_letters
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()

    def run(self, inv: Invocation) -> Outcome:
        outcome = Outcome(inv)
        env = child_environment(self.base_env, inv.env)
        for n in range(1, self.retry.attempts + 1):
            if self.stopping.is_set():
                outcome.interrupted = True
                return outcome
            attempt = self._once(inv, env)
            if self.stopping.is_set() and not attempt.ok:
                outcome.interrupted = True  # abandoned at stop, not a failure of the command
                return outcome
            outcome.attempts.append(attempt)
            if attempt.ok:
                metrics.inc("debpulse_trigger_runs_total", help="command runs, by result", result="ok")
                log.info("ran %s for %s (%d message%s): ok in %.2f s: %s", inv.argv[0], inv.label, inv.count,
                         "" if inv.count == 1 else "s", attempt.seconds, _last_line(attempt.output))
                if log.isEnabledFor(logging.DEBUG):
                    for line in attempt.output.decode("utf-8", "replace").splitlines():
                        log.debug("%s: %s", inv.label, line)
                return outcome
            metrics.inc("debpulse_trigger_runs_total", help="command runs, by result", result="failed")
            log.warning("ran %s for %s: %s (attempt %d of %d): %s", inv.argv[0], inv.label, attempt.status, n,
                        self.retry.attempts, _last_line(attempt.output))
            if n < self.retry.attempts and self.stopping.wait(self.retry.delay(n)):
                outcome.interrupted = True
                return outcome
        reason = f"{inv.argv[0]}: {outcome.attempts[-1].status} on each of {len(outcome.attempts)} attempts"
        outcome.dead_letter = self.dead_letters.put(inv, outcome.attempts, reason)
        metrics.inc("debpulse_trigger_dead_letters_total", help="messages or batches given up on")
        log.error("gave up on %s (%d message%s): %s; kept in %s", inv.label, inv.count,
                  "" if inv.count == 1 else "s", reason, outcome.dead_letter)
        return outcome

    def _once(self, inv: Invocation, env: dict[str, str]) -> Attempt:
        started, t0 = time.time(), time.monotonic()
        # The command reads its messages from a file written in full before
        # it starts, not from a pipe we feed: if the trigger dies (SIGKILL,
        # OOM) the orphaned command still gets every line, never an empty or
        # cut stdin.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as messages:
            messages.write(inv.stdin)
            messages.flush()
            messages.seek(0)
            try:
                proc = subprocess.Popen(list(inv.argv), stdin=messages, stdout=out, stderr=subprocess.STDOUT,
                                        env=env, shell=False, start_new_session=True, close_fds=True)
            except OSError as exc:
                return Attempt(started, time.monotonic() - t0, f"cannot run: {exc.strerror or exc}", b"")
            with self._lock:
                self._running.add(proc)
            try:
                if self.stopping.is_set():  # stop() ran between the check and the registration
                    self._end(proc)
                try:
                    proc.wait(timeout=self.retry.timeout)
                    status = _status(proc.returncode)
                except subprocess.TimeoutExpired:
                    self._end(proc)
                    status = f"timed out after {self.retry.timeout:g} s"
            finally:
                with self._lock:
                    self._running.discard(proc)
            return Attempt(started, time.monotonic() - t0, status, _tail(out, OUTPUT_KEPT))

    def _end(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the command's process group, SIGKILL after stop_timeout."""
        for sig, wait in ((signal.SIGTERM, self.retry.stop_timeout), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop(self) -> None:
        """Abandon every running command (they are not acked: a restart with
        --resume runs them again) and make the workers return."""
        self.stopping.set()
        with self._lock:
            running = list(self._running)
        threads = [threading.Thread(target=self._end, args=(p,), daemon=True) for p in running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


# -- the loop --------------------------------------------------------------------


class Source(Protocol):
    def receive(self, timeout: float | None = None) -> Received | Gap | None: ...
    def ack(self, item: Received | Gap) -> None: ...


def check_settings(concurrency: int, debounce: float | None, max_batch: int) -> None:
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if debounce is not None and debounce < 0:
        raise ConfigError("--debounce must not be negative")
    if max_batch < 1:
        raise ConfigError("--max-batch must be at least 1")


@dataclass
class Job:
    tickets: list[Ticket]
    invocation: Invocation


class Trigger:
    """Receive, match, run (singly or in debounce windows), ack in order.

    With `debounce`, the first matching message opens a window of that many
    seconds; when it closes (or `max_batch` messages are in it) the command
    runs once with every message of the window.  While every worker is
    busy the window stays open, so a slow importer coalesces what arrives
    meanwhile into its next run."""

    def __init__(self, source: Source, topics: TopicFilter, argv: Sequence[str], runner: Runner, *,
                 concurrency: int = 1, debounce: float | None = None, max_batch: int = 1000,
                 poll: float = 0.2) -> None:
        check_settings(concurrency, debounce, max_batch)
        self.source, self.topics, self.argv, self.runner = source, topics, tuple(argv), runner
        self.concurrency, self.debounce, self.max_batch, self.poll = concurrency, debounce, max_batch, poll
        self.acks = InOrderAcks()
        self.stop_requested = threading.Event()
        self._done: queue.SimpleQueue[tuple[Job, Outcome | BaseException]] = queue.SimpleQueue()
        self._busy = 0
        self._batch: list[Ticket] = []
        self._window_ends = 0.0
        self.handled = 0

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self.stop_requested.set()

    def run(self, until: Callable[[Trigger], bool] | None = None) -> None:
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="trigger") as pool:
            try:
                while not self.stop_requested.is_set() and not (until and until(self)):
                    self._collect(block=False)
                    self._maybe_run_batch(pool)
                    if self._busy >= self.concurrency and (self.debounce is None or
                                                           len(self._batch) >= self.max_batch):
                        self._collect(block=True)  # back-pressure: leave messages on the bus
                        continue
                    item = self.source.receive(timeout=self._wait())
                    if item is not None:
                        self._on_item(item, pool)
            finally:
                self.runner.stop()
                pool.shutdown(wait=True)
                self._collect(block=False)

    def _wait(self) -> float:
        remaining = self._window_ends - time.monotonic()
        if self._batch and remaining > 0:
            return min(self.poll, remaining)
        return self.poll  # no window, or a closed one waiting for a free worker

    def _on_item(self, item: Received | Gap, pool: ThreadPoolExecutor) -> None:
        ticket = self.acks.add(item)
        if isinstance(item, Gap):
            self._on_gap(item)
            self._ack(self.acks.finish([ticket]))
            return
        if not item.verdict.ok or not self.topics.matches(item.topic):
            self._ack(self.acks.finish([ticket]))
            return
        metrics.inc("debpulse_trigger_messages_total", help="matching messages received")
        if self.debounce is None:
            self._submit(pool, [ticket])
            return
        if not self._batch:
            self._window_ends = time.monotonic() + self.debounce
        self._batch.append(ticket)

    def _on_gap(self, gap: Gap) -> None:
        if not gap.permanent:
            log.warning("messages %d..%d of %s are late (%s); they run when they arrive",
                        gap.first, gap.last, gap.publisher, gap.reason)
            return
        metrics.inc("debpulse_trigger_gaps_total", help="messages lost for good (never ran)")
        where = self.runner.dead_letters.gap(gap)
        log.error("messages %d..%d of %s are lost (%s): a full import is needed; noted in %s",
                  gap.first, gap.last, gap.publisher, gap.reason, where)

    def _maybe_run_batch(self, pool: ThreadPoolExecutor) -> None:
        if not self._batch or self._busy >= self.concurrency:
            return
        if len(self._batch) >= self.max_batch or time.monotonic() >= self._window_ends:
            batch, self._batch = self._batch[:self.max_batch], self._batch[self.max_batch:]
            if self._batch:
                self._window_ends = time.monotonic()
            self._submit(pool, batch)

    def _submit(self, pool: ThreadPoolExecutor, tickets: list[Ticket]) -> None:
        received = [t.item for t in tickets if isinstance(t.item, Received)]
        inv = for_messages(self.argv, [r.envelope for r in received], [_packages(r) for r in received])
        job = Job(tickets, inv)
        self._busy += 1
        future = pool.submit(self.runner.run, inv)
        future.add_done_callback(lambda f: self._done.put((job, f.exception() or f.result())))

    def _collect(self, block: bool) -> None:
        while True:
            try:
                job, result = self._done.get(timeout=self.poll) if block else self._done.get_nowait()
            except queue.Empty:
                return
            block = False
            self._busy -= 1
            if isinstance(result, BaseException):
                # Writing a dead letter failed (disk full...): nothing may be acked past it.
                raise DebpulseError(f"handling {job.invocation.label} failed: {result}") from result
            if result.handled:
                self.handled += len(job.tickets)
                self._ack(self.acks.finish(job.tickets))

    def _ack(self, items: list[Received | Gap]) -> None:
        for item in items:
            self.source.ack(item)


def _packages(item: Received) -> list[str]:
    try:
        return [p for p in item.message.packages() if isinstance(p, str)]
    except Exception:  # a producer's message type must not stop the trigger
        return []
