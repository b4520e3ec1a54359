"""Announcing a publisher in DNS: RFC 2136 updates signed with TSIG.

A publisher is one SRV record in the _fedmsg._tcp.DOMAIN RRset and one TXT
record beside it (see discovery.txt_strings).  `announce` first reads what
the server has: if our records are there already nothing is sent; records
of the same endpoint that differ (new key, new priority) are replaced in
the same update.  `withdraw` removes only this endpoint's records, so
publishers sharing a domain never remove each other.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update

from .config import Config, Derived, Key, Required, Section, Table
from .discovery import DNS, PublisherInfo, endpoint_url, parse_txt, srv_name, txt_strings
from .errors import ConfigError, DebpulseError

log = logging.getLogger("debpulse.announce")

DEFAULT_TTL = 300
DNS_COMMAND_PORT = 9940  # what debpulse-dns announces with no port given: the relay's
ANNOUNCE = Table("dns.announce", {
    "domain": Key(str, Required(), "the records go under `_fedmsg._tcp.DOMAIN`"),
    "zone": Key(str, Derived("`domain`"), "the zone to update"),
    "server": Key(str, Required("to announce"), "the primary name server that takes updates, `HOST[:PORT]`"),
    "tsig_key_file": Key(str, None, "the TSIG key, as `keymgr -t` or `tsig-keygen` write it; not set (and no "
                         "`tsig_secret`): unsigned updates"),
    "tsig_name": Key(str, Required("with `tsig_secret`"), "the TSIG key's name, when given here rather than in a file"),
    "tsig_secret": Key(str, None, "the TSIG key's secret (base64), instead of `tsig_key_file`"),
    "tsig_algorithm": Key(str, "hmac-sha256", "the TSIG key's algorithm, with `tsig_secret`"),
    "target": Key(str, Derived("the publish endpoint's host, else this host's name (FQDN)"),
                  "the host name subscribers connect to"),
    "port": Key(int, Derived(f"the publish endpoint's port (`debpulse-dns`: `{DNS_COMMAND_PORT}`)"),
                "the port subscribers connect to"),
    "priority": Key(int, 0, "SRV priority: the lowest is tried first"),
    "weight": Key(int, 0, "SRV weight among publishers of the same priority"),
    "ttl": Key(int, DEFAULT_TTL, "the records' TTL in seconds"),
    "timeout": Key((int, float), 5.0, "seconds to wait for the name server"),
    "name": Key(str, Derived("the publisher's own name, e.g. `relay@HOST`"), "the publisher's name in the TXT record"),
    "fingerprint": Key(str, Derived("the signing key's fingerprint"), "the signing key hint in the TXT record "
                       "(a hint: subscribers trust only their keyring)"),
    "replay": Key(str, Derived("the publisher's replay endpoint"), "the replay endpoint in the TXT record"),
}, "A publisher announced in DNS: one SRV and one TXT record at `_fedmsg._tcp.DOMAIN`, added at start by an RFC "
   "2136 update, checked every 5 minutes and withdrawn at stop.",
   read_by=("debpulse-relay", "debpulse-dns", "any publisher with `[bus] publish`"))
WILDCARD_HOSTS = {"*", "0.0.0.0", "::", ""}


class UpdateRefused(ConfigError):
    """The DNS server refused our update: a key or ACL problem (exit 2)."""


class DnsUnreachable(DebpulseError):
    """The DNS server did not answer (exit 1: try again later)."""


@dataclass(frozen=True)
class Announcement:
    """What one publisher says about itself in DNS."""

    domain: str
    target: str
    port: int
    priority: int = 0
    weight: int = 0
    ttl: int = DEFAULT_TTL
    name: str | None = None
    fingerprint: str | None = None
    replay: str | None = None

    @property
    def owner(self) -> dns.name.Name:
        return srv_name(self.domain)

    @property
    def info(self) -> PublisherInfo:
        return PublisherInfo(endpoint=endpoint_url(self.target, self.port), replay=self.replay, name=self.name,
                             fingerprint=self.fingerprint, priority=self.priority, weight=self.weight)

    def srv(self) -> dns.rdata.Rdata:
        target = dns.name.from_text(self.target.rstrip(".") + ".")
        return dns.rdata.from_text("IN", "SRV", f"{self.priority} {self.weight} {self.port} {target}")

    def txt(self) -> dns.rdata.Rdata:
        return dns.rdata.from_text("IN", "TXT", " ".join(_quote(s) for s in txt_strings(self.info)))

    def zone_lines(self) -> list[str]:
        """The records as zone-file lines, for zones edited by hand."""
        return [f"{self.owner} {self.ttl} IN SRV {self.srv()}", f"{self.owner} {self.ttl} IN TXT {self.txt()}"]

    def is_mine_srv(self, rd: dns.rdata.Rdata) -> bool:
        return rd.port == self.port and rd.target == self.srv().target  # type: ignore[attr-defined]

    def is_mine_txt(self, rd: dns.rdata.Rdata) -> bool:
        fields = parse_txt(rd.strings)  # type: ignore[attr-defined]
        return bool(fields) and fields.get("endpoint") == self.info.endpoint  # type: ignore[union-attr]


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def announce_section(config: Config) -> Section | None:
    """The [dns.announce] table of `config`, or None without one."""
    dns_table = DNS.read(config)
    table = dns_table.data.get("announce")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{dns_table.where}: [dns.announce] must be a table")
    return Section(ANNOUNCE.name, table, dns_table.where)


def announcement_from(section: Section, *, name: str | None = None, endpoint: str | None = None,
                      replay: str | None = None, fingerprint: str | None = None) -> Announcement:
    """The records a [dns.announce] table describes; the keyword arguments are
    what the running publisher knows, and the table's keys win over them."""
    table = ANNOUNCE.wrap(section)
    bound_host, bound_port = _endpoint_host_port(endpoint) if endpoint else (None, None)
    target = table["target"] or (
        bound_host if bound_host not in WILDCARD_HOSTS and bound_host is not None else socket.getfqdn())
    port = table["port"]
    if port is None:
        port = bound_port
    if port is None:
        raise ConfigError(f"{section.where}: [{section.name}] port is required")
    replay = table["replay"] or replay
    return Announcement(
        domain=table["domain"],
        target=target,
        port=_ranged(section, "port", port, 1, 65535),
        priority=_ranged(section, "priority", table["priority"], 0, 65535),
        weight=_ranged(section, "weight", table["weight"], 0, 65535),
        ttl=_ranged(section, "ttl", table["ttl"], 0, 2**31 - 1),
        name=table["name"] or name,
        fingerprint=table["fingerprint"] or fingerprint,
        replay=_public(replay, target) if replay else None,
    )


# --- TSIG keys ------------------------------------------------------------------

_KNOT_KEY = re.compile(r"^\s*-?\s*(id|algorithm|secret)\s*:\s*(\S+)\s*$", re.M)
_BIND_KEY = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;', re.S)


def read_tsig_key(path: Path) -> dns.tsig.Key:
    """A TSIG key file as `keymgr -t NAME` (knot) or `tsig-keygen NAME`
    (BIND) writes it; the first key in the file is used."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"{path}: cannot read TSIG key file: {exc}") from None
    if m := _BIND_KEY.search(text):
        name, body = m.group(1), m.group(2)
        algorithm = re.search(r"algorithm\s+\"?([\w-]+)\"?\s*;", body)
        secret = re.search(r'secret\s+"([^"]+)"\s*;', body)
        if algorithm and secret:
            return make_key(name, secret.group(1), algorithm.group(1), str(path))
    fields = dict(m.groups() for m in _KNOT_KEY.finditer(text))
    if {"id", "secret"} <= fields.keys():
        return make_key(fields["id"], fields["secret"], fields.get("algorithm", "hmac-sha256"), str(path))
    raise ConfigError(f"{path}: no TSIG key found (expected the output of `keymgr -t NAME` or `tsig-keygen NAME`)")


def make_key(name: str, secret: str, algorithm: str, where: str) -> dns.tsig.Key:
    try:
        return dns.tsig.Key(name, secret, algorithm)
    except (ValueError, dns.exception.DNSException) as exc:
        raise ConfigError(f"{where}: bad TSIG key {name!r}: {exc}") from None


# --- the update client ------------------------------------------------------------

class Announcer:
    def __init__(self, announcement: Announcement, server: str, key: dns.tsig.Key | None = None,
                 zone: str | None = None, timeout: float = 5.0) -> None:
        self.announcement = announcement
        self.server = server
        self.host, self.port = _split_server(server)
        self.key = key
        self.zone = dns.name.from_text((zone or announcement.domain).rstrip(".") + ".")
        self.timeout = timeout
        if not announcement.owner.is_subdomain(self.zone):
            raise ConfigError(f"{announcement.owner} is not in zone {self.zone}")

    @classmethod
    def from_config(cls, config: Config, *, name: str, endpoint: str, replay: str | None,
                    fingerprint: str | None) -> Announcer | None:
        """The announcer the [dns.announce] table asks for, or None without one.
        `endpoint` is the PUB endpoint as bound: a wildcard host becomes
        `target` (or this host's name)."""
        section = announce_section(config)
        if section is None:
            return None
        return cls.from_section(section, name=name, endpoint=endpoint, replay=replay, fingerprint=fingerprint)

    @classmethod
    def from_section(cls, section: Section, *, name: str | None = None, endpoint: str | None = None,
                     replay: str | None = None, fingerprint: str | None = None) -> Announcer:
        """Built from a [dns.announce] table (see announcement_from)."""
        announcement = announcement_from(section, name=name, endpoint=endpoint, replay=replay,
                                         fingerprint=fingerprint)
        table = ANNOUNCE.wrap(section)
        key_file = table["tsig_key_file"]
        if key_file:
            key: dns.tsig.Key | None = read_tsig_key(Path(key_file))
        elif table.given("tsig_secret"):
            key = make_key(table["tsig_name"], table["tsig_secret"], table["tsig_algorithm"], section.where)
        else:
            key = None  # an unsigned update: only for servers that allow it by address
        return cls(announcement, table["server"], key, table["zone"], float(table["timeout"]))

    # what the server has now
    def published(self) -> tuple[list[dns.rdata.Rdata], list[dns.rdata.Rdata], int | None]:
        """Our SRV and TXT records as the server has them now, and the RRset TTL."""
        srv, ttl = self._query(dns.rdatatype.SRV)
        txt, _ = self._query(dns.rdatatype.TXT)
        a = self.announcement
        return [r for r in srv if a.is_mine_srv(r)], [r for r in txt if a.is_mine_txt(r)], ttl

    def announce(self) -> bool:
        """Add our records if absent, replace them if stale.  True when an
        update was sent, False when the server already had them."""
        a = self.announcement
        srv, txt = a.srv(), a.txt()
        have_srv, have_txt, ttl = self.published()
        if have_srv == [srv] and have_txt == [txt] and ttl == a.ttl:
            log.info("%s already announced in %s", a.info.endpoint, a.owner)
            return False
        update = self._update()
        for stale in [r for r in have_srv if r != srv] + [r for r in have_txt if r != txt]:
            update.delete(a.owner, stale)
        update.add(a.owner, a.ttl, srv)
        update.add(a.owner, a.ttl, txt)
        self._send(update)
        log.info("announced %s in %s (%s)", a.info.endpoint, a.owner, "refreshed" if have_srv else "added")
        return True

    def withdraw(self) -> bool:
        """Remove this endpoint's records.  True when an update was sent."""
        a = self.announcement
        have_srv, have_txt, _ = self.published()
        if not have_srv and not have_txt:
            log.info("%s was not announced in %s", a.info.endpoint, a.owner)
            return False
        update = self._update()
        for rd in have_srv + have_txt:
            update.delete(a.owner, rd)
        self._send(update)
        log.info("withdrew %s from %s", a.info.endpoint, a.owner)
        return True

    def _update(self) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(self.zone, keyring=self.key)

    def _query(self, rdtype: dns.rdatatype.RdataType) -> tuple[list[dns.rdata.Rdata], int | None]:
        # Ask the primary itself (TCP, no cache in between): it is what we update.
        query = dns.message.make_query(self.announcement.owner, rdtype)
        response = self._exchange(query)
        if response.rcode() in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
            raise UpdateRefused(f"DNS server {self.server} does not serve {self.announcement.owner} "
                                f"({dns.rcode.to_text(response.rcode())}): wrong server or zone?")
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsUnreachable(f"DNS server {self.server} answered {dns.rcode.to_text(response.rcode())} "
                                 f"for {self.announcement.owner}")
        rrset = response.get_rrset(response.answer, self.announcement.owner, dns.rdataclass.IN, rdtype)
        return (list(rrset), rrset.ttl) if rrset else ([], None)

    def _send(self, update: dns.update.UpdateMessage) -> None:
        response = self._exchange(update)
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return
        hint = {
            dns.rcode.NOTAUTH: "the update is not signed with a key the server accepts, "
                               f"or the server is not authoritative for {self.zone}",
            dns.rcode.REFUSED: "the server's update ACL does not allow it",
            dns.rcode.NOTZONE: f"{self.announcement.owner} is not in zone {self.zone}",
        }.get(rcode, "see the server's log")
        raise UpdateRefused(f"DNS server {self.server} refused the update of {self.announcement.owner} "
                            f"({dns.rcode.to_text(rcode)}: {hint})")

    def _exchange(self, message: dns.message.Message) -> dns.message.Message:
        keyname = self.key.name.to_text(omit_final_dot=True) if self.key else ""
        what = f"DNS server {self.server}"
        try:
            return dns.query.tcp(message, self.host, port=self.port, timeout=self.timeout)
        except dns.tsig.PeerBadKey:
            raise UpdateRefused(f"{what} refused TSIG key {keyname!r} for {self.announcement.owner}: "
                                "the server does not know the key or its update ACL does not allow it") from None
        except dns.tsig.PeerBadSignature:
            raise UpdateRefused(f"{what} refused the signature of TSIG key {keyname!r}: "
                                "the secret does not match the server's") from None
        except dns.tsig.PeerBadTime:
            raise UpdateRefused(f"{what} refused the TSIG time: check this host's clock") from None
        except dns.tsig.PeerError as exc:
            raise UpdateRefused(f"{what} refused TSIG key {keyname!r}: {exc}") from None
        except (dns.message.UnknownTSIGKey, dns.tsig.BadSignature) as exc:
            raise UpdateRefused(f"{what} answered with a TSIG signature that does not check: {exc}") from None
        except dns.exception.FormError as exc:
            # The server answered NOTAUTH unsigned: it does not serve the zone.
            raise UpdateRefused(f"{what} did not accept the update for zone {self.zone} "
                                f"(not authoritative for it?): {exc}") from None
        except dns.exception.Timeout:
            raise DnsUnreachable(f"{what} did not answer within {self.timeout:g} s") from None
        except EOFError:
            raise DnsUnreachable(f"{what} closed the connection without an answer") from None
        except OSError as exc:
            raise DnsUnreachable(f"cannot reach {what}: {exc.strerror or exc}") from None


def _split_server(server: str) -> tuple[str, int]:
    text = server.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53"
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, "53"
    if not port.isdigit() or not host:
        raise ConfigError(f"DNS server {server!r} is not HOST or HOST:PORT")
    try:
        address = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror as exc:
        raise ConfigError(f"DNS server {server!r}: {exc.strerror}") from None
    return address, int(port)


def _endpoint_host_port(endpoint: str) -> tuple[str, int | None]:
    parts = urlsplit(endpoint)
    host = parts.netloc.rsplit(":", 1)[0].strip("[]") if parts.netloc else ""
    try:
        return host, parts.port
    except ValueError:
        return host, None


def _public(url: str, target: str) -> str:
    """A bound URL (tcp://*:9941) as others reach it (tcp://TARGET:9941)."""
    host, port = _endpoint_host_port(url)
    if host in WILDCARD_HOSTS and port:
        return endpoint_url(target, port)
    return url


def _ranged(section: Section, key: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ConfigError(f"{section.where}: [{section.name}] {key} must be from {low} to {high}, not {value}")
    return value


# --- keeping a running publisher announced ------------------------------------------

REFRESH = 300.0  # seconds between checks that the records are still there


class KeptAnnouncement:
    """A running publisher's records, kept in DNS from a thread of its own.

    `start` makes the first attempt and waits for it; a failure (server
    down, update refused) is retried with a doubling wait, from a few
    seconds up to `refresh`; once announced, the records are checked every
    `refresh` seconds and restored if someone removed them.  `close` lets an
    update in flight finish, then withdraws: a publisher stopped at any
    moment leaves no record behind.  Relay and direct publishers alike.
    """

    def __init__(self, announcer: Announcer, *, refresh: float = REFRESH, first_retry: float = 2.0) -> None:
        from .backoff import Backoff

        self.announcer = announcer
        self.refresh = refresh
        self.backoff = Backoff(first=min(first_retry, refresh), most=refresh, jitter=0.1)
        self.announced = threading.Event()
        self._first_done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dns-announce", daemon=True)

    def start(self) -> bool:
        """Start, and wait for the first attempt; True when it announced."""
        self._thread.start()
        self._first_done.wait()
        return self.announced.is_set()

    def _run(self) -> None:
        delay = self._attempt(first=True)
        self._first_done.set()
        while not self._stop.wait(delay):
            delay = self._attempt(first=False)

    def _attempt(self, *, first: bool) -> float:
        """One announce (or check); the wait before the next."""
        endpoint = self.announcer.announcement.info.endpoint
        try:
            self.announcer.announce()
        except Exception as exc:  # the publisher still serves subscribers that know its endpoint
            delay = self.backoff.delay()
            if first or self.announced.is_set():
                log.warning("could not announce %s in DNS: %s; retrying in %.0f s", endpoint, exc, delay)
            else:
                log.info("still cannot announce %s in DNS: %s; retrying in %.0f s", endpoint, exc, delay)
            self.announced.clear()
            return delay
        if not first and not self.announced.is_set():
            log.warning("announced %s in DNS after all", endpoint)
        self.announced.set()
        self.backoff.reset()
        return self.refresh

    def close(self) -> None:
        """Stop refreshing, let an update in flight finish, then withdraw."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.announcer.timeout * 6 + 5)  # a few exchanges at most
        try:
            self.announcer.withdraw()
        except Exception as exc:
            log.warning("could not withdraw %s from DNS: %s", self.announcer.announcement.info.endpoint, exc)
