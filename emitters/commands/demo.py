"""debpulse-demo: the whole bus on this machine, in a temporary directory.

A relay, a verifying tail, and the four adapters each run as its real
command on a sample input: a git push, a dak mail, a wanna-build state
change in a throwaway PostgreSQL, a debbugs mail.  It waits until each
adapter's message has arrived verified (or 30 s), says what it saw, stops
everything it started and removes the directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .. import cli
from ..demo.children import Child, Children, StepFailed, command
from ..demo.feeds import FEEDS, Feed, Skipped, Workspace
from ..demo.tail import DemoTail

TIME_LIMIT = 30.0

EPILOG = """\
example:
  debpulse-demo          # about 5 seconds; exit 0 when every adapter's message arrived verified
  debpulse-demo --keep   # keep the directory (logs, Maildirs, repositories, the relay's outbox)

Needs no configuration and touches nothing outside its temporary directory:
the relay and the tail use free ports on 127.0.0.1, PostgreSQL only a Unix
socket. Without a PostgreSQL server installed the wanna-build part is skipped.
"""

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env(base: Path) -> dict[str, str]:
    """The environment of every process the demo starts: state, sockets and
    configuration inside the temporary directory, nothing of the host's."""
    (base / "debpulse.toml").write_text("# empty: the embedded defaults\n")
    (base / "gitconfig").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DEBPULSE_"))}
    env.update({
        "DEBPULSE_STATE_DIR": str(base / "state"),
        "DEBPULSE_RUNTIME_DIR": str(base / "run"),
        "DEBPULSE_CONFIG": str(base / "debpulse.toml"),   # not /etc/debpulse
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(base / "gitconfig"),
    })
    env.pop("RUST_BACKTRACE", None)  # slows every rejected signature down
    return env


def _start_relay(children: Children, base: Path) -> tuple[Child, str, str, Path]:
    """debpulse-relay with no signing key: it makes its own and publishes
    the certificate as <state>/relay/signing-key.asc."""
    endpoint, replay = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    relay = children.start("debpulse-relay", [*command("debpulse-relay", "debpulse.emitters.commands.relay"),
                                              "--publish", endpoint, "--replay", replay])
    sock = base / "run" / "relay.sock"
    certificate = base / "state" / "relay" / "signing-key.asc"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if relay.proc.poll() is not None:
            raise StepFailed(f"debpulse-relay exited with {relay.proc.returncode}{relay.log_tail()}")
        if sock.exists() and certificate.exists():
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(sock))
                    return relay, endpoint, replay, certificate
                except OSError:
                    pass
        time.sleep(0.02)
    raise StepFailed(f"debpulse-relay did not start within 15 s{relay.log_tail()}")


def _fingerprint(certificate: Path) -> str:
    import pysequoia

    return str(pysequoia.Cert.from_file(str(certificate)).fingerprint).upper()


def run_demo(keep: bool, verbose: int) -> int:
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="debpulse-demo-"))
    # PostgreSQL runs as postgres when we are root: it must reach its directory.
    base.chmod(0o711)
    children = Children(base / "logs", _child_env(base), verbose=verbose > 0)
    tail: DemoTail | None = None
    expected: dict[str, Feed] = {}  # topic -> its feed
    skipped: dict[str, str] = {}    # adapter -> why
    failed: dict[str, str] = {}     # adapter -> what went wrong
    say(f"debpulse demo in {base} ({'kept' if keep else 'removed'} at the end)")
    try:
        try:
            _, endpoint, replay, certificate = _start_relay(children, base)
        except StepFailed as exc:
            say(f"[relay] FAILED: {exc}")
            return 1
        say(f"[relay] debpulse-relay publishes on {endpoint} (replay {replay}), signing with a key it made: "
            f"{_fingerprint(certificate)}")
        tail = DemoTail(endpoint, replay, certificate, say)
        tail.start()
        tail.ready.wait(10)
        if tail.failure:
            say(f"[tail] FAILED: {tail.failure}")
            return 1
        say(f"[tail] subscribed, trusting only {certificate.name}; each message below is checked against it")
        workspace = Workspace(base, children)
        for feed in FEEDS:
            say(f"[{feed.adapter}] {feed.story}")
            try:
                feed.run(workspace)
            except Skipped as exc:
                skipped[feed.adapter] = str(exc)
                say(f"[{feed.adapter}] skipped: {exc}")
                continue
            except Exception as exc:  # one step failing must not stop the others
                failed[feed.adapter] = str(exc)
                detail = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
                say(f"[{feed.adapter}] FAILED: {detail}")
                continue
            expected[feed.topic] = feed
        complete = tail.wait_for(expected, started + TIME_LIMIT)
        _summary(tail, expected, skipped, failed, time.monotonic() - started, base)
        return 0 if complete and not failed and not sum(tail.rejected.values()) else 1
    except KeyboardInterrupt:
        say("interrupted: stopping")
        raise
    finally:
        if tail is not None:
            tail.stop()
        stopped = children.stop_all()
        if stopped:
            say(f"stopped {', '.join(stopped)}")
        if keep:
            say(f"kept {base} (logs in {base / 'logs'})")
        else:
            shutil.rmtree(base, ignore_errors=True)


def _summary(tail: DemoTail, expected: dict[str, Feed], skipped: dict[str, str], failed: dict[str, str],
             took: float, base: Path) -> None:
    say(f"--- after {took:.1f} s:")
    width = max(len(t) for t in expected) if expected else 0
    for topic, feed in expected.items():
        ok, bad = tail.verified[topic], tail.rejected[topic]
        state = f"{ok} verified" if ok else "not seen"
        if bad:
            state += f", {bad} REJECTED"
        say(f"  {topic:<{width}}  {state}  (from {feed.adapter})")
        log = base / feed.log
        if not ok and log.exists():  # its own words on what happened
            for line in log.read_text(errors="replace").strip().splitlines()[-4:]:
                say(f"    | {line}")
    others = sorted(t for t in set(tail.verified) | set(tail.rejected) if t not in expected)
    if others:
        say(f"  also: {', '.join(f'{t} ({tail.verified[t]} verified)' for t in others)}")
    for adapter, why in skipped.items():
        say(f"  {adapter}: skipped ({why})")
    for adapter in failed:
        say(f"  {adapter}: FAILED (see above)")
    seen = [t for t in expected if tail.verified[t]]
    rejected = sum(tail.rejected.values())
    if len(seen) == len(expected) and not failed and not rejected and not tail.gaps:
        say(f"all {len(expected)} adapters' messages arrived; {sum(tail.verified.values())} messages, every one"
            " verified" + (f" ({', '.join(skipped)} skipped)" if skipped else ""))
    else:
        say(f"{len(seen)} of {len(expected) + len(failed)} adapters' messages arrived verified"
            + (f"; {rejected} rejected" if rejected else "") + (f"; {tail.gaps} gap(s)" if tail.gaps else ""))


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("debpulse-demo", "Run a relay, every adapter on a sample input and a verifying tail, "
                   "in a temporary directory, then stop.", EPILOG)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory and print its path")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="show the logs of every process (they go to <dir>/logs otherwise)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), stream=sys.stderr,
                        format="%(name)s: %(levelname)s: %(message)s")
    # Ctrl-C (also when started in the background, where SIGINT may come
    # ignored) and SIGTERM (cli.entry) unwind, so run_demo cleans up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return run_demo(args.keep, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
