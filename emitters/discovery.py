"""Finding publishers: DNS SRV records under _fedmsg._tcp.DOMAIN (fedmsg's
scheme), a static endpoints file, and endpoints given outright.

Each publisher is one SRV record in the _fedmsg._tcp.DOMAIN RRset, so
fedmsg consumers find it too.  A TXT record at the same name carries what
SRV cannot say (see `txt_strings`); it is joined to its SRV record by the
``endpoint=`` string.  The fingerprint in it is a hint for operators and
tools: whether a message is accepted is decided by the verifier's keyring
and signer policy, never by DNS.

With a trust anchor configured every answer (and every "no such record")
must validate with DNSSEC up to that anchor, or the domain counts as failing.
"""

from __future__ import annotations

import argparse
import functools
import logging
import random
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dns._features
import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.zonefile

from . import metrics
from .config import Config, Key, Table
from .dnssec import TrustAnchors, denies
from .errors import ConfigError, DebpulseError, DiscoveryError
from .options import DEFAULT_REFRESH, SUBSCRIBE

log = logging.getLogger("debpulse.discovery")

SRV_LABELS = "_fedmsg._tcp"
TXT_MARKER = "debpulse=1"
DEFAULT_TIMEOUT = 3.0
DNS = Table("dns", {
    "nameservers": Key(list, [], "name servers asked for SRV records, `HOST` or `HOST:PORT` (none: those of "
                       "`/etc/resolv.conf`)", items=str),
    "trust_anchor": Key(str, None, "a file of DS or DNSKEY records: answers must then validate with DNSSEC"),
    "timeout": Key((int, float), DEFAULT_TIMEOUT, "seconds to wait for a name server"),
    "announce": Key(dict, None, "how a publisher announces itself", table="dns.announce"),
}, "How programs ask DNS for publishers (the SRV records of `[subscribe] srv_domains`), and, in `[dns.announce]`, "
   "how a publisher announces itself.",
   read_by=("debpulse-relay", "debpulse-dns", "every subscriber with `srv_domains`"))


@dataclass(frozen=True)
class PublisherInfo:
    endpoint: str                   # "tcp://host:port" (trailing dot of the SRV target stripped)
    replay: str | None = None       # replay endpoint from TXT, if any
    name: str | None = None         # publisher name from TXT
    fingerprint: str | None = None  # signing-key fingerprint hint from TXT (a hint, never a grant)
    priority: int = 0
    weight: int = 0

    def describe(self) -> str:
        """One line: the endpoint, then what else is known (lookup output, endpoints file)."""
        parts = [self.endpoint, f"priority={self.priority}", f"weight={self.weight}"]
        parts += [f"{k}={v}" for k, v in (("name", self.name), ("fpr", self.fingerprint), ("replay", self.replay)) if v]
        return " ".join(parts)


def srv_name(domain: str) -> dns.name.Name:
    return dns.name.from_text(f"{SRV_LABELS}.{domain.strip().rstrip('.')}.")


def txt_strings(info: PublisherInfo) -> list[str]:
    """The TXT record's character-strings, e.g.
    "debpulse=1" "endpoint=tcp://relay.example.org:9940" "name=relay@ftp-master" "fpr=..." "replay=...".
    One key=value per string, so a value may hold spaces and order does not matter."""
    strings = [TXT_MARKER, f"endpoint={info.endpoint}"]
    for key, value in (("name", info.name), ("fpr", info.fingerprint), ("replay", info.replay)):
        if value:
            strings.append(f"{key}={value}")
    return strings


def parse_txt(strings: Iterable[bytes | str]) -> dict[str, str] | None:
    """The key=value pairs of one of our TXT records; None for foreign TXT records."""
    texts = [s.decode("utf-8", "replace") if isinstance(s, bytes) else s for s in strings]
    if TXT_MARKER not in texts:
        return None
    return dict(t.split("=", 1) for t in texts if "=" in t)


def endpoint_url(host: str, port: int) -> str:
    host = host.rstrip(".")
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def order(publishers: Sequence[PublisherInfo], rng: random.Random | None = None) -> list[PublisherInfo]:
    """RFC 2782 order: lowest priority first; within one priority a weighted
    random draw (weight 0 rarely first), so load spreads as the zone asks."""
    rng = rng or random.Random()
    result: list[PublisherInfo] = []
    for priority in sorted({p.priority for p in publishers}):
        # Zero weights first, as RFC 2782 says, so they are chosen only when the draw is 0.
        group = sorted((p for p in publishers if p.priority == priority), key=lambda p: p.weight != 0)
        while group:
            total = sum(p.weight for p in group)
            draw = rng.randint(0, total)
            running = 0
            for i, p in enumerate(group):
                running += p.weight
                if running >= draw:
                    result.append(group.pop(i))
                    break
    return result


# --- the static endpoints file -------------------------------------------------

def parse_endpoints(text: str, where: str) -> list[PublisherInfo]:
    """One publisher per line: URL, then optional key=value (name, fpr, replay,
    priority, weight); '#' starts a comment.  Raises ConfigError naming the line."""
    publishers: list[PublisherInfo] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        url, *pairs = line.split()
        try:
            check_endpoint(url)
            fields: dict[str, str] = {}
            for pair in pairs:
                key, sep, value = pair.partition("=")
                if not sep or key not in ("name", "fpr", "replay", "priority", "weight"):
                    raise ValueError(f"expected name=, fpr=, replay=, priority= or weight=, not {pair!r}")
                fields[key] = value
            publishers.append(PublisherInfo(
                endpoint=url,
                replay=fields.get("replay"),
                name=fields.get("name"),
                fingerprint=fields.get("fpr"),
                priority=_u16(fields.get("priority", "0"), "priority"),
                weight=_u16(fields.get("weight", "0"), "weight"),
            ))
        except ValueError as exc:
            raise ConfigError(f"{where}:{number}: {exc}") from None
    return publishers


def check_endpoint(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "ipc" and (parts.netloc or parts.path):
        return
    if parts.scheme != "tcp" or not parts.hostname:
        raise ValueError(f"{url!r} is not a tcp://HOST:PORT or ipc:// endpoint")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not port:
        raise ValueError(f"{url!r} has no valid port")


def _u16(value: str, what: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise ValueError(f"{what} must be a number from 0 to 65535, not {value!r}")
    return int(value)


def read_endpoints_file(path: Path) -> list[PublisherInfo]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read endpoints file: {exc.strerror}") from None
    return parse_endpoints_file(data, str(path))


def parse_endpoints_file(data: bytes, where: str) -> list[PublisherInfo]:
    """An endpoints file's bytes (sans-I/O): UTF-8 text for parse_endpoints."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return parse_endpoints(text, where)


# --- resolving one domain -----------------------------------------------------

class SrvResolver:
    """Asks the configured name servers for a domain's SRV and TXT records;
    validates them with DNSSEC when trust anchors are given."""

    def __init__(self, nameservers: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT,
                 anchors: TrustAnchors | None = None) -> None:
        self.resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self.resolver.nameservers = [_nameserver(ns) for ns in nameservers]
        self.resolver.lifetime = timeout
        self.resolver.timeout = min(timeout, 2.0)
        self.anchors = anchors
        if anchors:
            # DO asks for RRSIGs and NSECs; CD so that a validating resolver
            # in between hands us what it has and we judge it ourselves.
            self.resolver.use_edns(0, dns.flags.DO, 1232)
            self.resolver.flags = dns.flags.RD | dns.flags.CD

    def publishers(self, domain: str) -> list[PublisherInfo]:
        """The publishers announced for `domain`; [] when it has none.
        Raises DiscoveryError when there is no trustworthy answer."""
        qname = srv_name(domain)
        zone_keys: dict[dns.name.Name, dns.rrset.RRset] = {}
        srvs = self._rrset(qname, dns.rdatatype.SRV, zone_keys)
        txts = self._rrset(qname, dns.rdatatype.TXT, zone_keys)
        hints: dict[str, dict[str, str]] = {}
        for txt in txts or ():
            fields = parse_txt(txt.strings)
            if fields and "endpoint" in fields:
                hints[fields["endpoint"]] = fields
        result = []
        for srv in srvs or ():
            if srv.target == dns.name.root:  # RFC 2782: "." means no service here
                continue
            endpoint = endpoint_url(srv.target.to_text(omit_final_dot=True), srv.port)
            hint = hints.get(endpoint, {})
            result.append(PublisherInfo(endpoint=endpoint, replay=hint.get("replay"), name=hint.get("name"),
                                        fingerprint=hint.get("fpr"), priority=srv.priority, weight=srv.weight))
        return result

    def _rrset(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType,
               zone_keys: dict[dns.name.Name, dns.rrset.RRset]) -> dns.rrset.RRset | None:
        what = f"{qname} {dns.rdatatype.to_text(rdtype)}"
        try:
            answer = self.resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
            response, rrset = answer.response, answer.rrset
        except dns.resolver.NXDOMAIN as exc:
            response, rrset = exc.response(qname), None
        except dns.resolver.NoNameservers as exc:
            raise DiscoveryError(f"{what}: no name server answered well ({_first_error(exc)})") from None
        except dns.exception.Timeout:
            raise DiscoveryError(f"{what}: timed out") from None
        except dns.exception.DNSException as exc:
            raise DiscoveryError(f"{what}: {exc}") from None
        if self.anchors:
            self._validate(response, qname, rdtype, rrset, zone_keys, what)
        return rrset

    # DNSSEC validation of one response
    def _validate(self, response: dns.message.Message, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType,
                  rrset: dns.rrset.RRset | None, zone_keys: dict[dns.name.Name, dns.rrset.RRset], what: str) -> None:
        signed = [r for r in response.answer if r.rdtype != dns.rdatatype.RRSIG]
        for r in signed:
            self._verify(response.answer, r, zone_keys, what)
        if rrset is not None:
            return
        # No records: the denial itself must be proven by signed NSEC or NSEC3.
        denials = [r for r in response.authority if r.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)]
        if not denials:
            raise DiscoveryError(f"{what}: unsigned negative answer (no NSEC or NSEC3 proof)")
        for r in denials:
            self._verify(response.authority, r, zone_keys, what)
        if not denies(denials, qname, rdtype, response.rcode() == dns.rcode.NXDOMAIN):
            raise DiscoveryError(f"{what}: the NSEC records do not prove that the records are absent")

    def _verify(self, section: list[dns.rrset.RRset], rrset: dns.rrset.RRset,
                zone_keys: dict[dns.name.Name, dns.rrset.RRset], what: str) -> None:
        sigs = [s for s in section if s.rdtype == dns.rdatatype.RRSIG and s.name == rrset.name
                and s.covers == rrset.rdtype]
        if not sigs:
            raise DiscoveryError(f"{what}: unsigned answer for {rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}")
        sigset = sigs[0]
        signer = next(iter(sigset)).signer
        if not rrset.name.is_subdomain(signer):
            raise DiscoveryError(f"{what}: {rrset.name} is signed by {signer}, which is not its zone")
        keys = zone_keys.get(signer) or self._zone_keys(signer)
        zone_keys[signer] = keys
        try:
            dns.dnssec.validate(rrset, sigset, {signer: keys})
        except dns.dnssec.ValidationFailure as exc:
            raise DiscoveryError(f"{what}: DNSSEC validation failed for {rrset.name} "
                                 f"{dns.rdatatype.to_text(rrset.rdtype)} ({exc})") from None

    def _zone_keys(self, zone: dns.name.Name) -> dns.rrset.RRset:
        """The zone's DNSKEY RRset, once it validates with a key an anchor vouches for."""
        assert self.anchors is not None
        what = f"{zone} DNSKEY"
        try:
            answer = self.resolver.resolve(zone, dns.rdatatype.DNSKEY, search=False)
        except dns.exception.DNSException as exc:
            raise DiscoveryError(f"{what}: {exc}") from None
        dnskeys = answer.rrset
        assert dnskeys is not None
        trusted = self.anchors.trusted_keys(zone, dnskeys)
        sigs = answer.response.find_rrset(answer.response.answer, zone, dns.rdataclass.IN,
                                          dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY, create=True)
        try:
            dns.dnssec.validate(dnskeys, sigs, {zone: trusted})
        except dns.dnssec.ValidationFailure as exc:
            raise DiscoveryError(f"{what}: the key set is not signed by an anchored key ({exc})") from None
        return dnskeys


def _first_error(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    if errors:
        server, _tcp, port, err, _resp = errors[0][:5]
        return f"{server}@{port}: {err}"
    return "no answer"


def _nameserver(text: str) -> dns.nameserver.Nameserver:
    """'host', 'host:port', '[v6]:port'; a host name is looked up once here."""
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53"
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"name server {text!r}: the port must be a number from 1 to 65535")
    try:
        address = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)[0][4][0]
    except socket.gaierror as exc:
        raise ConfigError(f"name server {text!r}: {exc.strerror}") from None
    return dns.nameserver.Do53Nameserver(address, int(port))


# --- the whole picture a subscriber connects to ---------------------------------

class Discovery:
    """Endpoints, SRV domains and an endpoints file, combined.

    `current()` resolves every source afresh: each domain on its own, so one
    failing domain never hides the others (fedmsg's lookup loop gives up on
    all); a failing domain keeps its last good answer until it answers again.
    """

    def __init__(self, endpoints: Sequence[str] = (), srv_domains: Sequence[str] = (),
                 endpoints_file: Path | None = None, refresh_interval: float = DEFAULT_REFRESH,
                 resolver: SrvResolver | None = None, rng: random.Random | None = None) -> None:
        for url in endpoints:
            try:
                check_endpoint(url)
            except ValueError as exc:
                raise ConfigError(f"endpoint: {exc}") from None
        self.endpoints = [PublisherInfo(endpoint=url) for url in endpoints]
        self.srv_domains = [d.strip().rstrip(".") for d in srv_domains if d.strip()]
        self.endpoints_file = endpoints_file
        self.refresh_interval = refresh_interval
        self.resolver = resolver or (SrvResolver() if self.srv_domains else None)
        self.rng = rng or random.Random()
        self.errors: dict[str, str] = {}     # source -> last error, for `debpulse-dns lookup`
        self._last: dict[str, list[PublisherInfo]] = {}
        self._said_none = False
        self.warn_when_empty = True  # a subscriber says once that it has nothing to connect to
        if endpoints_file is not None:
            self._last[str(endpoints_file)] = read_endpoints_file(endpoints_file)  # a bad file fails at start

    @classmethod
    def from_args(cls, args: argparse.Namespace, config: Config) -> Discovery:
        """Flags replace the [subscribe] table's sources when any is given
        (--endpoint, --srv, --endpoints-file); [dns] says how to ask."""
        sub = SUBSCRIBE.read(config)
        flag_endpoints = list(getattr(args, "endpoint", None) or [])
        flag_domains = list(getattr(args, "srv", None) or [])
        flag_file = getattr(args, "endpoints_file", None)
        if flag_endpoints or flag_domains or flag_file:
            endpoints, domains, file = flag_endpoints, flag_domains, flag_file
        else:
            endpoints, domains, file = sub["endpoints"], sub["srv_domains"], sub["endpoints_file"]
        refresh = float(sub["refresh"])
        if refresh <= 0:
            raise ConfigError(f"{sub.where}: [subscribe] refresh must be more than 0 seconds")
        resolver = resolver_from(args, config) if domains else None
        return cls(endpoints, domains, Path(file) if file else None, refresh, resolver)

    def is_empty_configuration(self) -> bool:
        return not self.endpoints and not self.srv_domains and self.endpoints_file is None

    def current(self) -> list[PublisherInfo]:
        found: list[PublisherInfo] = list(self.endpoints)
        if (file := self.endpoints_file) is not None:
            found += self._source(str(file), lambda: read_endpoints_file(file))
        if self.srv_domains:
            assert self.resolver is not None
            for domain in self.srv_domains:
                found += self._source(domain, functools.partial(self.resolver.publishers, domain))
        unique: dict[str, PublisherInfo] = {}
        for p in found:
            unique.setdefault(p.endpoint, p)
        if not unique and not self._said_none and self.warn_when_empty:
            # Once, not every refresh: a domain may have no publisher yet.
            log.warning("no publishers found in %s: not connected to any, looking again every %g s",
                        ", ".join(self.sources) or "the configuration", self.refresh_interval)
        self._said_none = not unique
        return order(list(unique.values()), self.rng)

    @property
    def sources(self) -> list[str]:
        """What is asked: the endpoints file and the SRV domains (for messages)."""
        return ([str(self.endpoints_file)] if self.endpoints_file is not None else []) + \
            [f"{SRV_LABELS}.{d}" for d in self.srv_domains]

    def _source(self, source: str, resolve: Callable[[], list[PublisherInfo]]) -> list[PublisherInfo]:
        try:
            fresh = resolve()
        except DebpulseError as exc:
            self.errors[source] = str(exc)
            kept = self._last.get(source, [])
            log.warning("%s: %s; keeping the last good answer (%d publishers)", source, exc, len(kept))
            metrics.inc("debpulse_discovery_failures_total", help="failed SRV or endpoints-file lookups",
                        source=source)
            return kept
        self.errors.pop(source, None)
        before = {p.endpoint for p in self._last.get(source, [])}
        after = {p.endpoint for p in fresh}
        if before != after:
            log.info("%s: publishers now %s (added %s, dropped %s)", source, sorted(after) or "none",
                     sorted(after - before) or "none", sorted(before - after) or "none")
        self._last[source] = fresh
        return fresh


def resolver_from(args: argparse.Namespace, config: Config) -> SrvResolver:
    """An SrvResolver from --nameserver/--trust-anchor flags over the [dns] table."""
    section = DNS.read(config)
    nameservers = list(getattr(args, "nameserver", None) or []) or section["nameservers"]
    anchor = getattr(args, "trust_anchor", None) or section["trust_anchor"]
    timeout = float(section["timeout"])
    if timeout <= 0:
        raise ConfigError(f"{section.where}: [dns] timeout must be more than 0 seconds")
    anchors = TrustAnchors.from_file(Path(anchor)) if anchor else None
    return SrvResolver(nameservers, timeout, anchors)

