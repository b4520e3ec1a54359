"""The bus settings, from flags over the tables: [bus] for a publisher,
[subscribe] for a subscriber."""

from __future__ import annotations

import argparse
import getpass
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .config import Config, Derived, Key, Table
from .errors import ConfigError
from .topics import ENVIRONMENTS

# Seconds between looking for publishers again (SRV records, the endpoints file).
DEFAULT_REFRESH = 60.0
# What the relay binds when neither --publish nor [bus] publish says.
RELAY_PUBLISH = "tcp://127.0.0.1:9940"

BUS = Table("bus", {
    "environment": Key(str, "dev", "the environment in every topic, `org.debian.<environment>...`: `dev`, `stg` or "
                       "`production`"),
    "publish": Key(str, Derived(f"not set: hand events to the relay (`debpulse-relay` itself binds `{RELAY_PUBLISH}`)"),
                   "bind a PUB socket here and sign and publish directly (the relay, or a lone publisher)"),
    "replay": Key(str, Derived("the publish endpoint's port + 1 (`PATH.replay` for `ipc://`)"),
                  "where the replay endpoint answers queries for missed messages"),
    "relay": Key(str, Derived("`ipc://RUNTIME_DIR/relay.sock`, RUNTIME_DIR being `$DEBPULSE_RUNTIME_DIR`, else "
                              "`/run/debpulse` as root, else `$XDG_RUNTIME_DIR/debpulse`",
                              lambda v: paths.relay_socket(), if_empty=True),
                 "the local relay's socket, where short-lived publishers hand their events"),
    "signing_key": Key(str, None, "the secret key file, or a fingerprint in `gnupg_home`; needed to publish "
                       "directly (the relay makes its own on a first run)"),
    "gnupg_home": Key(str, None, "GnuPG home holding the signing key (with `backend = \"gnupg\"`)"),
    "backend": Key(str, "sequoia", "how to sign: `sequoia` (in process) or `gnupg` (gpg-agent, for a "
                   "key on a smartcard)"),
    "scope": Key(str, "envelope", "what the signature covers: `envelope`, `fedmsg` (`msg` alone, for fedmsg "
                 "consumers) or `none` (unsigned)"),
    "state_dir": Key(str, Derived("`$DEBPULSE_STATE_DIR`, else `/var/lib/debpulse` as root, else "
                                  "`$XDG_STATE_HOME/debpulse`", lambda v: str(paths.state_dir()), if_empty=True),
                     "positions, outbox, spool and quarantine of every program of the host"),
    "relay_timeout": Key((int, float), 1.0, "seconds to wait for the relay before an event goes to the spool"),
    "high_water_mark": Key(int, 100_000, "messages queued for each slow subscriber before ZeroMQ drops "
                           "(they are fetched again by replay)"),
    "retention_days": Key((int, float), 14.0, "days the outbox keeps messages for replay"),
    "retention_messages": Key(int, 1_000_000, "messages the outbox keeps for replay at most"),
    "metrics_port": Key(int, None, "serve the relay's Prometheus metrics on `127.0.0.1:PORT`"),
    "username": Key(str, Derived("the user running the program", lambda v: _whoami(), if_empty=True),
                    "the `username` field of each message"),
    "spool": Key(str, Derived("`spool/` in `[bus] state_dir` (a command's `--state-dir` does not move it)",
                              lambda v: str(Path(v["state_dir"]) / "spool"), if_empty=True),
                 "where events wait while no relay answers; the relay drains it"),
    "synchronous": Key(str, "NORMAL", "outbox durability: `NORMAL`, or `FULL` for an fsync per "
                       "transaction"),
    "signing_processes": Key(int, 1, "processes signing a batch: 1, or 2 to add a helper process"),
}, "The bus, for every program that publishes: the environment, how events reach the relay, how the relay "
   "signs, stores and publishes them.", read_by=("debpulse-relay", "debpulse-logger", "debpulse-dak",
                                                 "debpulse-wanna-build", "debpulse-debbugs", "debpulse-git"))


SUBSCRIBE = Table("subscribe", {
    "endpoints": Key(list, [], "publishers to connect to, `tcp://HOST:PORT`", items=str),
    "srv_domains": Key(list, [], "domains whose `_fedmsg._tcp` SRV records list the publishers (see `[dns]`)",
                       items=str),
    "endpoints_file": Key(str, None, "a file listing publishers, one a line (read again when it changes)"),
    "refresh": Key((int, float), DEFAULT_REFRESH, "seconds between looking for publishers again (SRV records, "
                   "the endpoints file)"),
    "keyring": Key((str, list), Derived("the local relay's certificate, `STATE_DIR/relay/signing-key.asc` "
                                        "(when no `--gnupg-home` is given either)"),
                   "the publishers' certificates (OpenPGP files) whose signatures are accepted", items=str),
    "policy": Key(str, Derived("the `[[signer]]` tables of the configuration"),
                  "a signer policy file: which key may publish which topics"),
    "accept_fedmsg_scope": Key(bool, False, "also accept signatures over `msg` alone (real fedmsg publishers)"),
    "window": Key((int, float), 600, "seconds a message's timestamp may be off before it is refused as a replay "
                  "(`0`: no check)"),
    "require_signature": Key(bool, True, "refuse unsigned messages"),
    "catchup_interval": Key((int, float), 30, "seconds between asking quiet publishers for messages lost at the "
                            "end of a burst"),
    "high_water_mark": Key(int, 100_000, "messages queued on the subscriber's socket before ZeroMQ drops (they are "
                           "fetched again by replay)"),
    "verifying_processes": Key(int, 1, "processes checking the signatures of a burst: 1, or 2 to add a helper "
                               "process"),
}, "Where a subscriber finds publishers, and whose signatures it trusts.",
   read_by=("debpulse-tail", "debpulse-trigger", "debpulse-bridge", "debpulse-irc", "debpulse-notify",
            "debpulse-desktop", "debpulse-archive", "debpulse-dns"))


@dataclass
class BusOptions:
    name: str
    environment: str = "dev"
    publish: str | None = None          # bind a PUB socket here (direct publisher)
    replay: str | None = None           # bind the replay endpoint here
    relay: str = ""                     # local relay socket for RelayClient
    signing_key: str | None = None      # fingerprint in gnupg_home, or a key file
    gnupg_home: str | None = None
    backend: str = "sequoia"            # "sequoia" (in-process) or "gnupg"
    scope: str = "envelope"             # "envelope", "fedmsg" (msg only) or "none" (unsigned)
    state_dir: Path = Path()
    relay_timeout: float = 1.0
    high_water_mark: int = 100_000
    retention_days: float = 14.0
    retention_messages: int = 1_000_000
    metrics_port: int | None = None
    username: str = ""
    spool: Path | None = None           # where events wait when no relay answers
    synchronous: str = "NORMAL"         # outbox durability: NORMAL or FULL
    signing_processes: int = 1          # processes signing a batch: 2 adds a helper (signworker)

    @classmethod
    def from_args(cls, args: argparse.Namespace, config: Config, *, name: str, own_key: bool = False) -> BusOptions:
        """`own_key`: the caller can make a key of its own (the relay on a first
        run), so publishing without a configured one is not an error."""
        bus = BUS.read(config)

        def flag(dest: str) -> str | None:
            return getattr(args, dest, None)

        opts = cls(
            name=name,
            environment=str(bus.pick(flag("environment"), "environment")),
            publish=bus.pick(flag("publish"), "publish"),
            replay=bus["replay"],
            relay=str(bus.pick(flag("relay") or None, "relay")),
            signing_key=bus.pick(flag("signing_key"), "signing_key"),
            gnupg_home=bus.pick(flag("gnupg_home"), "gnupg_home"),
            backend=bus["backend"],
            scope=bus["scope"],
            state_dir=Path(bus.pick(flag("state_dir"), "state_dir")),
            relay_timeout=float(bus["relay_timeout"]),
            high_water_mark=bus["high_water_mark"],
            retention_days=float(bus["retention_days"]),
            retention_messages=bus["retention_messages"],
            metrics_port=bus["metrics_port"],
            username=bus["username"],
            synchronous=bus["synchronous"].upper(),
            signing_processes=bus["signing_processes"],
            # The spool is the relay's, shared by every local publisher: a
            # command's own --state-dir (positions, quarantine) does not move it.
            spool=Path(bus["spool"]),
        )
        opts.check(bus.where, own_key=own_key)
        return opts

    def check(self, where: str = "configuration", *, own_key: bool = False) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ConfigError(f"{where}: [bus] environment must be one of {', '.join(ENVIRONMENTS)}")
        if self.backend not in ("sequoia", "gnupg"):
            raise ConfigError(f"{where}: [bus] backend must be 'sequoia' or 'gnupg', not {self.backend!r}")
        if self.scope not in ("envelope", "fedmsg", "none"):
            raise ConfigError(f"{where}: [bus] scope must be 'envelope', 'fedmsg' or 'none', not {self.scope!r}")
        if self.synchronous not in ("NORMAL", "FULL"):
            raise ConfigError(f"{where}: [bus] synchronous must be 'NORMAL' or 'FULL'")
        if self.signing_processes not in (1, 2):
            raise ConfigError(f"{where}: [bus] signing_processes must be 1 or 2")
        if self.publish and not self.signing_key and self.scope != "none" and not own_key:
            raise ConfigError("publishing directly needs a signing key (--signing-key or [bus] signing_key)")

    @property
    def spool_dir(self) -> Path:
        return self.spool or self.state_dir / "spool"

    @property
    def own_state(self) -> Path:
        """This publisher's own directory under the state directory."""
        return self.state_dir / self.name


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (DynamicUser=): fedmsg puts the name here
        return "debpulse"
