"""debpulse-irc's configuration, the [irc] table, checked key by key (pure).

    [irc]
    nick = "debpulse"
    [irc.networks.oftc]
    host = "irc.oftc.net"
    port = 6697
    tls = true
    [[irc.channels]]
    name = "#debian-devel-changes"
    include = { topics = ["dak.package.accept"] }
    exclude = { packages = ["linux"] }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debpulse.consumers.common.facts import Criteria, criteria_from
from debpulse.emitters.config import Config, Section
from debpulse.emitters.errors import ConfigError

from .flood import SquashPolicy
from .protocol import irc_lower, valid_channel, valid_nick

IRC_KEYS = {"nick", "realname", "resume", "control_socket", "control_mode", "networks", "channels",
            "metrics_port"}
NETWORK_KEYS = {"host", "port", "tls", "ca", "nick", "realname", "password", "password_file", "rate", "burst",
                "reconnect_max", "ping_interval"}
CHANNEL_KEYS = {"name", "network", "key", "include", "exclude", "notice", "colours", "rate", "burst", "hold",
                "squash_threshold", "max_delay", "push_wait"}


@dataclass(frozen=True)
class NetworkSettings:
    name: str
    host: str
    port: int = 6667
    tls: bool = False
    ca: str | None = None
    nick: str = "debpulse"
    realname: str = "debpulse bus bot"
    password: str | None = None
    rate: float = 1.0              # lines a second over the whole connection
    burst: int = 5
    reconnect_max: float = 300.0
    ping_interval: float = 60.0


@dataclass(frozen=True)
class ChannelSettings:
    name: str
    network: str
    key: str | None = None
    include: Criteria = field(default_factory=Criteria)
    exclude: Criteria = field(default_factory=Criteria)
    notice: bool = False
    rate: float = 0.5
    burst: int = 4
    policy: SquashPolicy = field(default_factory=SquashPolicy)

    @property
    def folded(self) -> str:
        return irc_lower(self.name)

    def wants(self, facts: Any) -> bool:
        return self.include.all_of(facts) and (self.exclude.empty or not self.exclude.any_of(facts))


@dataclass(frozen=True)
class IrcSettings:
    networks: dict[str, NetworkSettings]
    channels: list[ChannelSettings]
    resume: str = "irc"
    control_socket: str | None = None
    control_mode: int = 0o660
    metrics_port: int | None = None


def _number(section: Section, key: str, default: float, *, positive: bool = True) -> float:
    value = float(section.get(key, (int, float), default))
    if positive and value <= 0 or value < 0:
        raise ConfigError(f"{section.where}: [{section.name}] {key} must be {'positive' if positive else '>= 0'}")
    return value


def _int(section: Section, key: str, default: int, least: int = 1) -> int:
    value = section.get(key, int, default)
    if value < least:
        raise ConfigError(f"{section.where}: [{section.name}] {key} must be at least {least}")
    return value


def settings_from(config: Config) -> IrcSettings:
    irc = config.section("irc")
    irc.check_keys(IRC_KEYS)
    nick = irc.get("nick", str, "debpulse")
    if not valid_nick(nick):
        raise ConfigError(f"{irc.where}: [irc] nick {nick!r} is not an IRC nick")
    realname = irc.get("realname", str, "debpulse bus bot")
    networks: dict[str, NetworkSettings] = {}
    for name, table in irc.get("networks", dict, {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{irc.where}: [irc.networks.{name}] must be a table")
        s = Section(f"irc.networks.{name}", table, irc.where)
        s.check_keys(NETWORK_KEYS)
        password = s.get("password", str, None)
        if (pf := s.get("password_file", str, None)) is not None:
            try:
                password = Path(pf).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{s.where}: [{s.name}] password_file {pf}: {exc.strerror}") from None
        net_nick = s.get("nick", str, nick)
        if not valid_nick(net_nick):
            raise ConfigError(f"{s.where}: [{s.name}] nick {net_nick!r} is not an IRC nick")
        port = s.get("port", int, 6697 if s.get("tls", bool, False) else 6667)
        if not 0 < port < 65536:
            raise ConfigError(f"{s.where}: [{s.name}] port {port} is not a port")
        networks[name] = NetworkSettings(
            name=name, host=s.get("host", str), port=port, tls=s.get("tls", bool, False), ca=s.get("ca", str, None),
            nick=net_nick, realname=s.get("realname", str, realname), password=password,
            rate=_number(s, "rate", 1.0), burst=_int(s, "burst", 5),
            reconnect_max=_number(s, "reconnect_max", 300.0), ping_interval=_number(s, "ping_interval", 60.0))
    channels: list[ChannelSettings] = []
    seen: set[tuple[str, str]] = set()
    tables = irc.get("channels", list, [])
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise ConfigError(f"{irc.where}: [[irc.channels]] entry {i + 1} must be a table")
        s = Section(f"irc.channels {table.get('name', i + 1)}", table, irc.where)
        s.check_keys(CHANNEL_KEYS)
        name = s.get("name", str)
        if not valid_channel(name):
            raise ConfigError(f"{s.where}: [[irc.channels]] name {name!r} is not a channel name")
        if "network" in table:
            network = s.get("network", str)
        elif len(networks) == 1:
            network = next(iter(networks))
        else:
            raise ConfigError(f"{s.where}: [[irc.channels]] {name}: say which network (there are "
                              f"{len(networks)})")
        if network not in networks:
            raise ConfigError(f"{s.where}: [[irc.channels]] {name}: no [irc.networks.{network}]")
        if (network, irc_lower(name)) in seen:
            raise ConfigError(f"{s.where}: [[irc.channels]] {name} on {network} is configured twice")
        seen.add((network, irc_lower(name)))
        try:
            include = criteria_from(s.get("include", dict, {}), f"[[irc.channels]] {name} include")
            exclude = criteria_from(s.get("exclude", dict, {}), f"[[irc.channels]] {name} exclude")
        except ValueError as exc:
            raise ConfigError(f"{s.where}: {exc}") from None
        policy = SquashPolicy(hold=_number(s, "hold", 1.0, positive=False),
                              threshold=_int(s, "squash_threshold", 4, least=2),
                              max_delay=_number(s, "max_delay", 60.0),
                              push_wait=_number(s, "push_wait", 10.0, positive=False),
                              colours=s.get("colours", bool, False))
        channels.append(ChannelSettings(
            name=name, network=network, key=s.get("key", str, None), include=include, exclude=exclude,
            notice=s.get("notice", bool, False), rate=_number(s, "rate", 0.5), burst=_int(s, "burst", 4),
            policy=policy))
    mode_text = irc.get("control_mode", str, "0660")
    try:
        mode = int(mode_text, 8)
    except ValueError:
        raise ConfigError(f"{irc.where}: [irc] control_mode {mode_text!r} is not an octal mode") from None
    if mode & ~0o777:
        raise ConfigError(f"{irc.where}: [irc] control_mode {mode_text!r} is not a file mode")
    resume = irc.get("resume", str, "irc")
    return IrcSettings(networks, channels, resume=resume, control_socket=irc.get("control_socket", str, None),
                       control_mode=mode, metrics_port=irc.get("metrics_port", int, None))
