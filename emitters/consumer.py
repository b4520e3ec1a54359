"""Build a Subscriber from the common flags and the [subscribe] table."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from . import paths
from .checkpoint import Checkpoint
from .config import Config
from .envelope import SCOPE_ENVELOPE, SCOPE_FEDMSG
from .errors import ConfigError
from .policy import Policy
from .signing import Keyring, SequoiaKeyring, open_keyring
from .subscriber import Subscriber
from .verify import Verifier

log = logging.getLogger(__name__)

SUBSCRIBE_KEYS = {
    "endpoints", "srv_domains", "endpoints_file", "refresh", "keyring", "policy",
    "accept_fedmsg_scope", "window", "require_signature", "catchup_interval", "high_water_mark",
}


def local_relay_certificate(state_dir: Path | None = None) -> Path:
    """The relay publishes its certificate here, for subscribers on the same
    host that have no keyring configured (a first run needs no setup)."""
    return (state_dir or paths.state_dir()) / "relay" / "signing-key.asc"


class LocalRelayKeyring:
    """The local relay's certificate, read again whenever the file changes
    (made after the subscriber started, or a new key after a reset)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._keyring = SequoiaKeyring([])

    def _current(self) -> SequoiaKeyring:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_ino)
        except OSError:
            return self._keyring
        if stamp != self._stamp:
            try:
                self._keyring = SequoiaKeyring.from_files([self.path])
                self._stamp = stamp
            except ConfigError as exc:  # half-written: try again at the next message
                log.debug("%s", exc)
        return self._keyring

    def verify(self, data: bytes, signature: bytes) -> str:
        return self._current().verify(data, signature)

    def fingerprints(self) -> list[str]:
        return self._current().fingerprints()


def open_verifier(args: argparse.Namespace, config: Config) -> Verifier:
    sub = config.section("subscribe")
    sub.check_keys(SUBSCRIBE_KEYS)
    keyrings: list[str] = []
    if getattr(args, "keyring", None):
        keyrings = [args.keyring]
    else:
        value = sub.get("keyring", (str, list), [])
        keyrings = [value] if isinstance(value, str) else sub.strings("keyring")
    gnupg_home = getattr(args, "gnupg_home", None)
    keyring: Keyring
    if not keyrings and not gnupg_home:
        # A first try: `debpulse-relay & debpulse-tail &` starts the tail
        # before the relay has made its key, so follow the file.
        local = local_relay_certificate(getattr(args, "state_dir", None))
        log.info("no keyring configured: trusting the local relay's key in %s", local)
        keyring = LocalRelayKeyring(local)
    else:
        keyring = open_keyring(keyrings, gnupg_home)
    policy_file = getattr(args, "policy", None) or sub.get("policy", str, None)
    if policy_file:
        policy = Policy.from_file(policy_file)
    else:
        policy = Policy.from_tables(config.data.get("signer", []), config.where("signer"))
    scopes = (SCOPE_ENVELOPE, SCOPE_FEDMSG) if (
        getattr(args, "accept_fedmsg_scope", False) or sub.get("accept_fedmsg_scope", bool, False)
    ) else (SCOPE_ENVELOPE,)
    return Verifier(
        keyring, policy, scopes=scopes,
        window=float(sub.get("window", (int, float), 600)),
        require_signature=sub.get("require_signature", bool, True),
    )


def open_subscriber(
    args: argparse.Namespace,
    config: Config,
    *,
    topics: list[str] | None = None,
    resume: str | None = None,
    auto_ack: bool = True,
    yield_rejected: bool = False,
    since: float | None = None,
) -> Subscriber:
    sub = config.section("subscribe")
    verifier = open_verifier(args, config)
    discovery: Any = None
    static: list[str] = list(getattr(args, "endpoint", []) or []) + sub.strings("endpoints")
    try:
        from .discovery import Discovery
    except ImportError:
        Discovery = None  # noqa: N806
    if Discovery is not None:
        discovery = Discovery.from_args(args, config)
        if discovery.is_empty_configuration():
            discovery = None
        else:
            static = []
    elif getattr(args, "srv", None) or sub.strings("srv_domains"):
        raise ConfigError("DNS discovery is not available in this installation")
    checkpoint = None
    if resume:
        if not resume.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError(f"--resume name {resume!r}: use letters, digits, '-', '_' and '.'")
        state = getattr(args, "state_dir", None) or paths.state_dir()
        checkpoint = Checkpoint(Path(state) / "checkpoints" / f"{resume}.json")
    return Subscriber(
        static,
        verifier=verifier,
        topics=topics,
        discovery=discovery,
        checkpoint=checkpoint,
        auto_ack=auto_ack,
        hwm=sub.get("high_water_mark", int, 100_000),
        yield_rejected=yield_rejected,
        catchup_interval=float(sub.get("catchup_interval", (int, float), 30)),
        since=since,
    )
