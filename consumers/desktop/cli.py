"""debpulse-desktop: desktop notifications by the same rules as
debpulse-notify, for the person logged in (a systemd user service)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from debpulse.consumers.common.acks import AckQueue
from debpulse.consumers.common.facts import facts_of
from debpulse.consumers.notify.rules import RuleBook, RuleError, load_file
from debpulse.consumers.notify.store import Store
from debpulse.emitters import cli, paths, systemd
from debpulse.emitters.backoff import Backoff
from debpulse.emitters.config import Derived, Key, Table, Values
from debpulse.emitters.consumer import open_subscriber
from debpulse.emitters.errors import ConfigError
from debpulse.emitters.subscriber import Gap, Received, Subscriber

from .collapse import Burst, SleepWatch
from .dbus import Notifications, NotifyError

log = logging.getLogger("debpulse.desktop")

DESKTOP = Table("desktop", {
    "rules": Key(str, Derived("`$XDG_CONFIG_HOME/debpulse/notify.toml`", lambda v: str(default_rules())),
                 "your rule file, in the format of `debpulse-notify`'s (the rules with `desktop` in `to` show)"),
    "resume": Key(str, "desktop", "checkpoint name: after a suspend or a restart, what was missed is shown"),
    "hold": Key((int, float), 2.0, "seconds a message waits for the rest of its burst"),
    "collapse": Key(int, 3, "up to this many of a burst show one by one, more as one notification"),
    "expire": Key(int, -1, "milliseconds a notification stays (`-1`: the notification server decides, `0`: until "
                  "closed)"),
}, "Desktop notifications for the person logged in (`debpulse-desktop`, a systemd user service).",
   read_by=("debpulse-desktop",))

EPILOG = """\
examples:
  debpulse-desktop                                   # rules from ~/.config/debpulse/notify.toml
  debpulse-desktop --rules ~/debian/my-rules.toml
  systemctl --user enable --now debpulse-desktop.service

~/.config/debpulse/notify.toml (the format of debpulse-notify's rule files;
only the rules with "desktop" in `to` are shown here):
  addresses = ["alice@debian.org"]
  [[rule]]
  name = "my packages"
  my_packages = true
  to = ["desktop"]

A burst of messages shows as one notification; after a suspend, what was
published meanwhile is fetched and shown.
"""


def default_rules() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "debpulse" / "notify.toml"


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Desktop:
    def __init__(self, sub: Subscriber, book: RuleBook, store: Store, shower: Notifications, burst: Burst) -> None:
        self.sub, self.book, self.store, self.shower, self.burst = sub, book, store, shower, burst
        self.acks = AckQueue(sub)
        self.backoff = Backoff(first=1.0, most=60.0)
        self.retry_at = 0.0
        self.stopping = False
        self.shown = 0
        self.sleep = SleepWatch(time.monotonic(), boottime())

    def on_item(self, item: Received | Gap, now: float) -> None:
        if isinstance(item, Received) and item.verdict.ok:
            try:
                f = facts_of(item.envelope)
                self.store.learn(f)  # who owns what
                wanted = any(m.destination == "desktop" for m in self.book.match(f, self.store.owners))
            except Exception as exc:  # a producer's odd body never stops the notifications
                log.error("%s (%s): not shown, its body could not be read: %r", item.msg_id, item.topic, exc)
                wanted = False
            if wanted:
                ticket = self.acks.add(item, 1)
                self.burst.add(f, lambda t=ticket: self.acks.done(t), now)
                return
        self.acks.add(item)

    def show(self, now: float) -> None:
        if now < self.retry_at:
            return
        batch = self.burst.take(now)
        if not batch:
            return
        for i, (n, done) in enumerate(self.burst.notices(batch)):
            try:
                self.shower.show(n)
            except NotifyError as exc:
                delay = self.backoff.delay()
                self.retry_at = now + delay
                rest = batch[i:] if n.count == 1 else batch
                self.burst.restore(rest, now - self.burst.hold)
                log.warning("cannot show notifications (%s); next try in %.0f s", exc, delay)
                return
            self.backoff.reset()
            self.shown += 1
            log.info("shown: %s (%d message%s)", n.summary, n.count, "" if n.count == 1 else "s")
            for d in done:
                d()

    def step(self) -> None:
        now = time.monotonic()
        slept = self.sleep.slept(now, boottime())
        if slept:
            log.info("resumed after %.0f s asleep: fetching what was published meanwhile", slept)
            self.sub.catch_up()
        due = self.burst.next_time()
        wait = 1.0 if due is None else max(0.001, min(1.0, due - now))
        item = self.sub.receive(timeout=wait)
        if item is not None:
            self.on_item(item, time.monotonic())
            for _ in range(999):
                more = self.sub.receive(timeout=0.001)
                if more is None:
                    break
                self.on_item(more, time.monotonic())
        self.show(time.monotonic())

    def close(self) -> None:
        self.sub.close()
        self.store.close()
        self.shower.close()


def _positive(section: Values, key: str) -> float:
    value = float(section[key])
    if value < 0:
        raise ConfigError(f"{section.where}: [desktop] {key} must not be negative")
    return value


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("debpulse-desktop", "Desktop notifications of the bus messages your rules follow.", EPILOG)
    cli.add_common(p, subscribe=True)
    p.add_argument("--rules", type=Path, metavar="FILE", help="your rule file (default [desktop] rules, else "
                   "$XDG_CONFIG_HOME/debpulse/notify.toml)")
    p.add_argument("--resume", metavar="NAME", help="checkpoint name (default 'desktop')")
    p.add_argument("--check", action="store_true", help="check the rules and exit")
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    section = DESKTOP.read(config)
    rules = args.rules or Path(section["rules"])
    try:
        recipient = load_file(rules)
    except RuleError as exc:
        raise ConfigError(str(exc)) from None
    book = RuleBook([recipient])
    wanted = [r for r in recipient.rules if "desktop" in r.to]
    if not wanted:
        raise ConfigError(f"{rules}: no rule has \"desktop\" in to: nothing would be shown")
    burst = Burst(hold=_positive(section, "hold"), collapse=int(section["collapse"]))
    expire = int(section["expire"])
    if args.check:
        print(f"{len(wanted)} desktop rule(s): fine")
        return 0
    resume = args.resume or section["resume"]
    store = Store(Path(args.state_dir or paths.state_dir()) / "desktop" / resume / "owners.sqlite")
    shower = Notifications(expire)
    try:
        sub = open_subscriber(args, config, resume=resume, auto_ack=False)
    except BaseException:
        store.close()
        raise
    desktop = Desktop(sub, book, store, shower, burst)
    try:
        log.info("notification server: %s", shower.server())
    except Exception as exc:  # shown later, when one starts
        log.warning("no notification server yet (%s)", exc)
    def on_term(signum: int, frame: object) -> None:
        desktop.stopping = True  # a notification being shown is acknowledged before the stop

    signal.signal(signal.SIGTERM, on_term)
    systemd.notify("READY=1")
    log.info("%d desktop rule(s) from %s", len(wanted), rules)
    try:
        while not desktop.stopping:
            desktop.step()
    except KeyboardInterrupt:
        pass
    finally:
        systemd.notify("STOPPING=1")
        desktop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
