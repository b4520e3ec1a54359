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

from debpulse.consumers.common.facts import CRITERIA, Criteria, criteria_from
from debpulse.emitters.config import Config, Derived, Key, Required, Section, Table, Values
from debpulse.emitters.errors import ConfigError

from .flood import SquashPolicy
from .protocol import irc_lower, valid_channel, valid_nick

NETWORK = Table("irc.networks.NAME", {
    "host": Key(str, Required(), "the IRC server"),
    "port": Key(int, Derived("`6697` with `tls`, else `6667`", lambda v: 6697 if v["tls"] else 6667), "its port"),
    "tls": Key(bool, False, "connect with TLS"),
    "ca": Key(str, Derived("the system's CA certificates"), "CA certificates the server's certificate is checked "
              "against"),
    "nick": Key(str, Derived("`[irc] nick`", lambda v: v.parent["nick"]), "the bot's nick on this network"),
    "realname": Key(str, Derived("`[irc] realname`", lambda v: v.parent["realname"]), "its real name here"),
    "password": Key(str, None, "the server password (a registered nick)"),
    "password_file": Key(str, None, "a file holding the server password (wins over `password`)"),
    "rate": Key((int, float), 1.0, "lines a second over the whole connection"),
    "burst": Key(int, 5, "lines sent at once before `rate` applies"),
    "reconnect_max": Key((int, float), 300.0, "the longest wait in seconds between reconnections"),
    "ping_interval": Key((int, float), 60.0, "seconds of silence before the bot pings the server"),
}, "One IRC network the bot connects to, named by NAME (channels name it in `network`).",
   read_by=("debpulse-irc",))
CHANNEL = Table("irc.channels", {
    "name": Key(str, Required(), "the channel, `#name`"),
    "network": Key(str, Derived("the only network, when there is one"), "the network's NAME"),
    "key": Key(str, None, "the channel key (`+k`)"),
    "include": Key(dict, {}, "what to say: every kind given must match (none: every message)", table=CRITERIA),
    "exclude": Key(dict, {}, "what not to say: any value of any kind", table=CRITERIA),
    "notice": Key(bool, False, "send `NOTICE`s instead of `PRIVMSG`s"),
    "colours": Key(bool, False, "colour the lines (mIRC colour codes)"),
    "rate": Key((int, float), 0.5, "lines a second to this channel"),
    "burst": Key(int, 4, "lines sent at once before `rate` applies"),
    "hold": Key((int, float), 1.0, "seconds a message waits for the rest of its burst"),
    "squash_threshold": Key(int, 4, "this many messages of one kind in a burst become one line"),
    "max_delay": Key((int, float), 60.0, "a backlog taking longer than this many seconds to say becomes one "
                     "line counting it all"),
    "push_wait": Key((int, float), 10.0, "seconds a push waits at most for the commits it announced"),
}, "One channel and what it is told.", read_by=("debpulse-irc",), array=True)
IRC = Table("irc", {
    "nick": Key(str, "debpulse", "the bot's nick"),
    "realname": Key(str, "debpulse bus bot", "its real name"),
    "resume": Key(str, "irc", "checkpoint name: a restart continues where it stopped"),
    "control_socket": Key(str, Derived("`STATE_DIR/irc/control.sock`"), "where `debpulse-notify` hands over "
                          "private lines"),
    "control_mode": Key(str, "0660", "the control socket's file mode, in octal"),
    "networks": Key(dict, {}, "the networks, one table each", table=NETWORK, named=True),
    "channels": Key(list, [], "the channels, one `[[irc.channels]]` table each", table=CHANNEL),
    "metrics_port": Key(int, None, "serve Prometheus metrics on `127.0.0.1:PORT`"),
}, "The IRC bot: what it is called, its networks and channels.  Edited while the bot runs, it joins or leaves "
   "channels without a restart.", read_by=("debpulse-irc",))


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


def _number(section: Values, key: str, *, positive: bool = True) -> float:
    value = float(section[key])
    if positive and value <= 0 or value < 0:
        raise ConfigError(f"{section.where}: [{section.name}] {key} must be {'positive' if positive else '>= 0'}")
    return value


def _int(section: Values, key: str, least: int = 1) -> int:
    value = section[key]
    if value < least:
        raise ConfigError(f"{section.where}: [{section.name}] {key} must be at least {least}")
    return value


def settings_from(config: Config) -> IrcSettings:
    irc = IRC.read(config)
    nick = irc["nick"]
    if not valid_nick(nick):
        raise ConfigError(f"{irc.where}: [irc] nick {nick!r} is not an IRC nick")
    networks: dict[str, NetworkSettings] = {}
    for name, table in irc["networks"].items():
        if not isinstance(table, dict):
            raise ConfigError(f"{irc.where}: [irc.networks.{name}] must be a table")
        s = NETWORK.wrap(Section(f"irc.networks.{name}", table, irc.where), parent=irc)
        password = s["password"]
        if (pf := s["password_file"]) is not None:
            try:
                password = Path(pf).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{s.where}: [{s.name}] password_file {pf}: {exc.strerror}") from None
        net_nick = s["nick"]
        if not valid_nick(net_nick):
            raise ConfigError(f"{s.where}: [{s.name}] nick {net_nick!r} is not an IRC nick")
        port = s["port"]
        if not 0 < port < 65536:
            raise ConfigError(f"{s.where}: [{s.name}] port {port} is not a port")
        networks[name] = NetworkSettings(
            name=name, host=s["host"], port=port, tls=s["tls"], ca=s["ca"],
            nick=net_nick, realname=s["realname"], password=password,
            rate=_number(s, "rate"), burst=_int(s, "burst"),
            reconnect_max=_number(s, "reconnect_max"), ping_interval=_number(s, "ping_interval"))
    channels: list[ChannelSettings] = []
    seen: set[tuple[str, str]] = set()
    tables = irc["channels"]
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise ConfigError(f"{irc.where}: [[irc.channels]] entry {i + 1} must be a table")
        s = CHANNEL.wrap(Section(f"irc.channels {table.get('name', i + 1)}", table, irc.where), parent=irc)
        name = s["name"]
        if not valid_channel(name):
            raise ConfigError(f"{s.where}: [[irc.channels]] name {name!r} is not a channel name")
        if s.given("network"):
            network = s["network"]
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
            include = criteria_from(s["include"], f"[[irc.channels]] {name} include")
            exclude = criteria_from(s["exclude"], f"[[irc.channels]] {name} exclude")
        except ValueError as exc:
            raise ConfigError(f"{s.where}: {exc}") from None
        policy = SquashPolicy(hold=_number(s, "hold", positive=False),
                              threshold=_int(s, "squash_threshold", least=2),
                              max_delay=_number(s, "max_delay"),
                              push_wait=_number(s, "push_wait", positive=False),
                              colours=s["colours"])
        channels.append(ChannelSettings(
            name=name, network=network, key=s["key"], include=include, exclude=exclude,
            notice=s["notice"], rate=_number(s, "rate"), burst=_int(s, "burst"),
            policy=policy))
    mode_text = irc["control_mode"]
    try:
        mode = int(mode_text, 8)
    except ValueError:
        raise ConfigError(f"{irc.where}: [irc] control_mode {mode_text!r} is not an octal mode") from None
    if mode & ~0o777:
        raise ConfigError(f"{irc.where}: [irc] control_mode {mode_text!r} is not a file mode")
    return IrcSettings(networks, channels, resume=irc["resume"], control_socket=irc["control_socket"],
                       control_mode=mode, metrics_port=irc["metrics_port"])
