"""The bus settings of a publisher, from flags over the [bus] table."""

from __future__ import annotations

import argparse
import getpass
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .config import Config
from .errors import ConfigError
from .topics import ENVIRONMENTS

BUS_KEYS = {
    "environment", "publish", "replay", "relay", "signing_key", "gnupg_home",
    "backend", "scope", "state_dir", "relay_timeout", "high_water_mark",
    "retention_days", "retention_messages", "metrics_port", "username", "spool",
    "synchronous", "signing_processes",
}


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
        bus = config.section("bus")
        bus.check_keys(BUS_KEYS)

        def pick(flag: str, key: str, kind: type | tuple[type, ...], default: object) -> object:
            value = getattr(args, flag, None)
            return value if value is not None else bus.get(key, kind, default)

        state = pick("state_dir", "state_dir", str, None)
        opts = cls(
            name=name,
            environment=str(pick("environment", "environment", str, "dev")),
            publish=pick("publish", "publish", str, None),  # type: ignore[arg-type]
            replay=bus.get("replay", str, None),
            relay=str(pick("relay", "relay", str, "") or paths.relay_socket()),
            signing_key=pick("signing_key", "signing_key", str, None),  # type: ignore[arg-type]
            gnupg_home=pick("gnupg_home", "gnupg_home", str, None),  # type: ignore[arg-type]
            backend=bus.get("backend", str, "sequoia"),
            scope=bus.get("scope", str, "envelope"),
            state_dir=Path(state) if state else paths.state_dir(),  # type: ignore[arg-type]
            relay_timeout=float(bus.get("relay_timeout", (int, float), 1.0)),
            high_water_mark=bus.get("high_water_mark", int, 100_000),
            retention_days=float(bus.get("retention_days", (int, float), 14.0)),
            retention_messages=bus.get("retention_messages", int, 1_000_000),
            metrics_port=bus.get("metrics_port", int, None),
            username=bus.get("username", str, "") or _whoami(),
            synchronous=bus.get("synchronous", str, "NORMAL").upper(),
            signing_processes=bus.get("signing_processes", int, 1),
        )
        # The spool is the relay's, shared by every local publisher: a
        # command's own --state-dir (positions, quarantine) does not move it.
        spool = bus.get("spool", str, None)
        shared_state = bus.get("state_dir", str, None)
        opts.spool = Path(spool) if spool else (Path(shared_state) if shared_state else paths.state_dir()) / "spool"
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
