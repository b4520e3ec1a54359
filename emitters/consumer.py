"""Build a Subscriber from the common flags and the [subscribe] table."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from . import paths
from .checkpoint import Checkpoint
from .config import Config
from .discovery import Discovery
from .envelope import SCOPE_ENVELOPE, SCOPE_FEDMSG
from .errors import ConfigError
from .options import SUBSCRIBE
from .policy import Policy
from .signing import Answer, Keyring, SequoiaKeyring, open_keyring
from .subscriber import Subscriber
from .verify import Verifier

log = logging.getLogger(__name__)

# What a subscriber with no source configured connects to: the relay's
# default publish endpoint on this host.
LOCAL_RELAY = "tcp://127.0.0.1:9940"

def local_relay_certificate(state_dir: Path | None = None) -> Path:
    """The relay publishes its certificate here, for subscribers on the same
    host that have no keyring configured (a first run needs no setup)."""
    return (state_dir or paths.state_dir()) / "relay" / "signing-key.asc"


class LocalRelayKeyring:
    """The local relay's certificate, read again whenever the file changes
    (made after the subscriber started, or a new key after a reset)."""

    def __init__(self, path: Path, *, processes: int = 1) -> None:
        self.path = path
        self.processes = processes
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
                keyring = SequoiaKeyring.from_files([self.path])
            except ConfigError as exc:  # half-written: try again at the next message
                log.debug("%s", exc)
            else:
                keyring.processes = self.processes
                self._keyring.close()  # the old key's helper process
                self._keyring, self._stamp = keyring, stamp
        return self._keyring

    def verify(self, data: bytes, signature: bytes) -> str:
        return self._current().verify(data, signature)

    def check_many(self, pairs: list[tuple[bytes, bytes]]) -> list[Answer]:
        return self._current().check_many(pairs)

    def close(self) -> None:
        self._keyring.close()

    def fingerprints(self) -> list[str]:
        return self._current().fingerprints()


def open_verifier(args: argparse.Namespace, config: Config) -> Verifier:
    sub = SUBSCRIBE.read(config)
    flag = getattr(args, "keyring", None)
    if flag:
        keyrings = [flag] if isinstance(flag, str) else list(flag)
    else:
        value = sub["keyring"]
        keyrings = [value] if isinstance(value, str) else value or []
    gnupg_home = getattr(args, "gnupg_home", None)
    processes = sub["verifying_processes"]
    if processes not in (1, 2):
        raise ConfigError("[subscribe] verifying_processes must be 1 or 2")
    keyring: Keyring
    if not keyrings and not gnupg_home:
        # A first try: `debpulse-relay & debpulse-tail &` starts the tail
        # before the relay has made its key, so follow the file.
        local = local_relay_certificate(getattr(args, "state_dir", None))
        log.info("no keyring configured: trusting the local relay's key in %s", local)
        keyring = LocalRelayKeyring(local, processes=processes)
    else:
        keyring = open_keyring(keyrings, gnupg_home, processes=processes)
    policy_file = getattr(args, "policy", None) or sub["policy"]
    policy = Policy.from_file(policy_file) if policy_file else Policy.from_config(config)
    fedmsg_scope = getattr(args, "accept_fedmsg_scope", False) or sub["accept_fedmsg_scope"]
    scopes = (SCOPE_ENVELOPE, SCOPE_FEDMSG) if fedmsg_scope else (SCOPE_ENVELOPE,)
    if fedmsg_scope and not policy_file and policy.open:
        # A signature over msg alone says nothing about the topic: without a
        # policy any trusted key's message may come back under any topic.
        log.warning("accepting signatures over msg only (fedmsg scope) with no signer policy: "
                    "a message signed by any key in the keyring is accepted under any topic it is re-sent with; "
                    "give --policy or [[signer]] tables to say which key may publish which topics")
    window = sub.pick(getattr(args, "timestamp_window", None), "window")
    if window < 0:
        raise ConfigError("--timestamp-window / [subscribe] window must not be negative (0 turns the check off)")
    return Verifier(
        keyring, policy, scopes=scopes,
        window=float(window),
        require_signature=sub["require_signature"],
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
    verifier = open_verifier(args, config)
    sub = SUBSCRIBE.read(config)
    discovery: Any = Discovery.from_args(args, config)
    static: list[str] = []
    if discovery.is_empty_configuration():
        # Nothing asked for at all (no flag, no [subscribe] source): the
        # local relay, so that a first try needs no configuration.  Asked
        # for something (--srv DOMAIN), only that: a domain with no
        # publishers yet means connecting to nothing until one is announced.
        discovery, static = None, [LOCAL_RELAY]
        log.info("no publishers configured: connecting to the local relay at %s", LOCAL_RELAY)
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
        hwm=sub["high_water_mark"],
        yield_rejected=yield_rejected,
        catchup_interval=float(sub["catchup_interval"]),
        since=since,
    )
