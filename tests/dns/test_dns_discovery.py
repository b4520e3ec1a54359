"""Finding publishers: SRV order, the endpoints file, SRV lookups against a
real knot, refresh, failing domains, and DNSSEC validation."""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.update
import pytest

from debpulse.emitters.announce import Announcement, Announcer
from debpulse.emitters.config import Config
from debpulse.emitters.discovery import (
    Discovery,
    PublisherInfo,
    SrvResolver,
    order,
    parse_endpoints,
)
from debpulse.emitters.dnssec import TrustAnchors
from debpulse.emitters.errors import ConfigError


def replace_rrset(section: list[dns.rrset.RRset], rdtype: str, *texts: str) -> None:
    """Swap the rdata of the RRset of `rdtype` in a message section (an on-path attacker)."""
    for i, rrset in enumerate(section):
        if rrset.rdtype == dns.rdatatype.from_text(rdtype):
            section[i] = dns.rrset.from_text(rrset.name, rrset.ttl, "IN", rdtype, *texts)


def args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"endpoint": [], "srv": [], **kw})


def announce(knot, domain: str, target: str, port: int, **kw: object) -> Announcer:
    a = Announcer(Announcement(domain=domain, target=target, port=port, **kw), knot.server, knot.key)  # type: ignore[arg-type]
    a.announce()
    return a


def dns_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debpulse.emitters.commands.dns", *argv],
                          capture_output=True, text=True, timeout=30)


# --- RFC 2782 order -------------------------------------------------------------

def test_order_is_by_priority_then_weighted_draw():
    pubs = [PublisherInfo(f"tcp://h{i}:1", priority=p, weight=w)
            for i, (p, w) in enumerate([(20, 0), (10, 1), (10, 9), (30, 5)])]
    firsts: Counter[str] = Counter()
    rng = random.Random(7)
    for _ in range(2000):
        ordered = order(pubs, rng)
        assert [p.priority for p in ordered] == [10, 10, 20, 30]
        firsts[ordered[0].endpoint] += 1
    # RFC 2782 draws from 0..sum inclusive: weight 9 against 1 comes first 9 times in 11
    assert 0.78 < firsts["tcp://h2:1"] / 2000 < 0.86


def test_order_keeps_zero_weights():
    pubs = [PublisherInfo(f"tcp://h{i}:1") for i in range(4)]
    assert sorted(p.endpoint for p in order(pubs)) == [p.endpoint for p in pubs]


# --- the endpoints file, no DNS at all --------------------------------------------

def test_endpoints_file_parses_and_names_bad_lines():
    pubs = parse_endpoints("# the static fallback\n"
                           "tcp://relay.example.org:9940 name=relay@ftp-master fpr=ABCD replay=tcp://r:9941\n"
                           "\n  tcp://buildd.example.org:9940 priority=10 weight=5  # backup\n", "endpoints")
    assert pubs == [PublisherInfo("tcp://relay.example.org:9940", "tcp://r:9941", "relay@ftp-master", "ABCD"),
                    PublisherInfo("tcp://buildd.example.org:9940", priority=10, weight=5)]
    with pytest.raises(ConfigError, match=r"^endpoints:2: 'relay.example.org:9940' is not"):
        parse_endpoints("tcp://a:1\nrelay.example.org:9940\n", "endpoints")
    with pytest.raises(ConfigError, match=r"^endpoints:1: expected name="):
        parse_endpoints("tcp://a:1 colour=blue\n", "endpoints")
    with pytest.raises(ConfigError, match=r"^endpoints:1: weight must be"):
        parse_endpoints("tcp://a:1 weight=-1\n", "endpoints")


def test_endpoints_file_works_without_any_dns_server(tmp_path: Path):
    f = tmp_path / "endpoints"
    f.write_text("tcp://relay.example.org:9940 name=relay\n")
    config = Config({"subscribe": {"endpoints_file": str(f), "refresh": 1},
                     "dns": {"nameservers": ["127.0.0.1:1"]}})  # nobody there: it must not be asked
    d = Discovery.from_args(args(), config)
    assert not d.is_empty_configuration() and d.refresh_interval == 1
    assert d.current() == [PublisherInfo("tcp://relay.example.org:9940", name="relay")]
    # An edit is picked up at the next refresh...
    f.write_text("tcp://relay.example.org:9940\ntcp://second.example.org:9940\n")
    assert {p.endpoint for p in d.current()} == {"tcp://relay.example.org:9940", "tcp://second.example.org:9940"}
    # ...and a broken edit keeps the last good list.
    f.write_text("tcp://relay.example.org\n")
    assert {p.endpoint for p in d.current()} == {"tcp://relay.example.org:9940", "tcp://second.example.org:9940"}
    assert "has no valid port" in d.errors[str(f)]


def test_a_bad_endpoints_file_fails_at_start(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read endpoints file"):
        Discovery.from_args(args(endpoints_file=str(tmp_path / "absent")), Config())


def test_flags_replace_the_configured_sources():
    config = Config({"subscribe": {"endpoints": ["tcp://configured:1"], "srv_domains": ["example.org"]}})
    d = Discovery.from_args(args(endpoint=["tcp://flag:1"]), config)
    assert d.current() == [PublisherInfo("tcp://flag:1")] and d.srv_domains == []
    assert Discovery.from_args(args(), Config()).is_empty_configuration()
    with pytest.raises(ConfigError, match="refresh must be more than 0"):
        Discovery.from_args(args(), Config({"subscribe": {"refresh": 0}}))
    with pytest.raises(ConfigError, match=r"\[dns\] unknown key 'nameserver'"):
        Discovery.from_args(args(srv=["example.org"]), Config({"dns": {"nameserver": "x"}}))


# --- SRV lookups against knot ------------------------------------------------------

def test_srv_and_txt_become_publishers(knot):
    a = announce(knot, "lookup.test", "relay.example.org.", 9940, priority=1, weight=2, name="relay@ftp-master",
                 fingerprint="AB" * 20, replay="tcp://relay.example.org:9941")
    try:
        d = Discovery.from_args(args(srv=["lookup.test."]), Config({"dns": {"nameservers": [knot.server]}}))
        assert d.current() == [PublisherInfo("tcp://relay.example.org:9940", "tcp://relay.example.org:9941",
                                             "relay@ftp-master", "AB" * 20, 1, 2)]
        result = dns_cli("lookup", "lookup.test", "--nameserver", knot.server)
        assert result.returncode == 0, result.stderr
        assert result.stdout == ("tcp://relay.example.org:9940 priority=1 weight=2 name=relay@ftp-master "
                                 f"fpr={'AB' * 20} replay=tcp://relay.example.org:9941\n")
    finally:
        a.withdraw()


def test_refresh_picks_up_a_new_publisher_and_drops_a_withdrawn_one(knot):
    d = Discovery.from_args(args(srv=["refresh.test"]), Config({"dns": {"nameservers": [knot.server]}}))
    assert d.current() == []
    first = announce(knot, "refresh.test", "one.example.org", 9940)
    assert [p.endpoint for p in d.current()] == ["tcp://one.example.org:9940"]
    second = announce(knot, "refresh.test", "two.example.org", 9940)
    assert sorted(p.endpoint for p in d.current()) == ["tcp://one.example.org:9940", "tcp://two.example.org:9940"]
    first.withdraw()
    assert [p.endpoint for p in d.current()] == ["tcp://two.example.org:9940"]
    second.withdraw()
    assert d.current() == [] and d.errors == {}


def test_a_failing_domain_does_not_hide_the_others(knot):
    a = announce(knot, "lookup.test", "relay.example.org", 9940)
    try:
        # knot answers REFUSED for a zone it does not serve.
        d = Discovery.from_args(args(srv=["nowhere.test", "lookup.test"], endpoint=["tcp://static:1"]),
                                Config({"dns": {"nameservers": [knot.server], "timeout": 1}}))
        assert {p.endpoint for p in d.current()} == {"tcp://static:1", "tcp://relay.example.org:9940"}
        assert list(d.errors) == ["nowhere.test"]
        result = dns_cli("lookup", "nowhere.test", "lookup.test", "--nameserver", knot.server)
        assert result.returncode == 1
        assert result.stdout.startswith("tcp://relay.example.org:9940 ")
        assert "nowhere.test" in result.stderr and "Traceback" not in result.stderr
    finally:
        a.withdraw()


def test_a_failing_domain_keeps_its_last_good_answer(own_knot):
    announce(own_knot, "lookup.test", "relay.example.org", 9940)
    d = Discovery.from_args(args(srv=["lookup.test"]),
                            Config({"dns": {"nameservers": [own_knot.server], "timeout": 0.5}}))
    assert [p.endpoint for p in d.current()] == ["tcp://relay.example.org:9940"]
    own_knot.stop()
    assert [p.endpoint for p in d.current()] == ["tcp://relay.example.org:9940"]
    assert "lookup.test" in d.errors


# --- DNSSEC -----------------------------------------------------------------------

@pytest.fixture
def signed(knot):
    a = announce(knot, "signed.test", "relay.example.org", 9940, name="relay", fingerprint="AB" * 20)
    yield a
    a.withdraw()


def resolver(server: str, anchor: Path) -> SrvResolver:
    return SrvResolver([server], timeout=2, anchors=TrustAnchors.from_file(anchor))


@pytest.mark.parametrize("kind", ["ds", "dnskey"])
def test_signed_answers_validate_against_the_zone_key(knot, signed, kind):
    pubs = resolver(knot.server, knot.anchor("signed.test", kind)).publishers("signed.test")
    assert pubs == [PublisherInfo("tcp://relay.example.org:9940", name="relay", fingerprint="AB" * 20)]
    result = dns_cli("lookup", "signed.test", "--nameserver", knot.server,
                     "--trust-anchor", str(knot.anchor("signed.test", kind)))
    assert result.returncode == 0 and result.stdout.startswith("tcp://relay.example.org:9940 "), result.stderr


@pytest.mark.parametrize("zone", ["signed.test", "nsec3.test"])
def test_signed_empty_answers_and_announcements_validate(knot, zone):
    check = resolver(knot.server, knot.anchor(zone))
    # Nothing announced: the NSEC or NSEC3 proof that the name does not exist is checked.
    assert check.publishers(zone) == []
    a = announce(knot, zone, "relay.example.org", 9940)
    try:
        assert [p.endpoint for p in check.publishers(zone)] == ["tcp://relay.example.org:9940"]
        # Only a TXT record left at the name: the proof that no SRV exists there.
        u = dns.update.UpdateMessage(zone, keyring=knot.key)
        u.delete("_fedmsg._tcp", "SRV")
        dns.query.tcp(u, "127.0.0.1", port=knot.port, timeout=3)
        assert knot.records(zone, "TXT") != []
        assert check.publishers(zone) == []
    finally:
        a.withdraw()


def test_a_denial_that_proves_nothing_is_refused(knot, tampering_proxy):
    # The signed NSEC of another name, offered as proof for ours.
    other = dns.message.make_query("ns.signed.test.", "SRV", want_dnssec=True)
    stolen = dns.query.udp(other, "127.0.0.1", port=knot.port, timeout=2).authority

    def swap(m: dns.message.Message) -> None:
        if m.question[0].rdtype == dns.rdatatype.SRV:
            m.set_rcode(dns.rcode.NOERROR)
            m.authority = stolen

    proxy = tampering_proxy(swap)
    with pytest.raises(Exception, match="do not prove that the records are absent"):
        resolver(proxy.server, knot.anchor("signed.test")).publishers("signed.test")


def test_a_tampered_answer_is_refused(knot, signed, tampering_proxy):
    proxy = tampering_proxy(lambda m: replace_rrset(m.answer, "SRV", "0 0 6666 evil.example.org."))
    with pytest.raises(Exception, match="DNSSEC validation failed for _fedmsg._tcp.signed.test. SRV"):
        resolver(proxy.server, knot.anchor("signed.test")).publishers("signed.test")
    # The same through a Discovery: nothing to connect to, and the reason kept.
    config = Config({"dns": {"nameservers": [proxy.server], "trust_anchor": str(knot.anchor("signed.test"))}})
    d = Discovery.from_args(args(srv=["signed.test"]), config)
    assert d.current() == [] and "validation failed" in d.errors["signed.test"]


def test_a_tampered_txt_hint_is_refused(knot, signed, tampering_proxy):
    proxy = tampering_proxy(lambda m: replace_rrset(
        m.answer, "TXT", '"debpulse=1" "endpoint=tcp://relay.example.org:9940" "fpr=EVIL"'))
    with pytest.raises(Exception, match="validation failed for _fedmsg._tcp.signed.test. TXT"):
        resolver(proxy.server, knot.anchor("signed.test")).publishers("signed.test")


def strip_signatures(m: dns.message.Message) -> None:
    m.answer = [r for r in m.answer if r.rdtype != dns.rdatatype.RRSIG]
    m.authority = [r for r in m.authority if r.rdtype != dns.rdatatype.RRSIG]


def test_an_answer_stripped_of_signatures_is_refused(knot, signed, tampering_proxy):
    proxy = tampering_proxy(strip_signatures)
    with pytest.raises(Exception, match="unsigned answer for _fedmsg._tcp.signed.test. SRV"):
        resolver(proxy.server, knot.anchor("signed.test")).publishers("signed.test")
    # and so is an unsigned "nothing here" that would drop every publisher
    proxy = tampering_proxy(lambda m: (setattr(m, "answer", []), setattr(m, "authority", [])))
    with pytest.raises(Exception, match="unsigned negative answer"):
        resolver(proxy.server, knot.anchor("signed.test")).publishers("signed.test")


def test_an_unsigned_zone_is_refused_when_an_anchor_is_configured(knot):
    a = announce(knot, "lookup.test", "relay.example.org", 9940)
    try:
        with pytest.raises(Exception, match="unsigned answer"):
            resolver(knot.server, knot.anchor("signed.test")).publishers("lookup.test")
    finally:
        a.withdraw()


def test_an_anchor_of_another_key_is_refused(knot, signed, tmp_path: Path):
    wrong = tmp_path / "wrong.ds"
    wrong.write_text("signed.test. DS 12345 13 2 " + "00" * 32 + "\n")
    with pytest.raises(Exception, match="no DNSKEY of signed.test. matches the trust anchor"):
        resolver(knot.server, wrong).publishers("signed.test")


def test_anchor_lines_as_bind_writes_them(knot, signed, tmp_path: Path):
    # dnssec-dsfromkey writes "owner IN DS ...", keymgr "owner DS ...", with comments around
    ds = knot.anchor("signed.test").read_text().splitlines()[0].split(None, 1)
    anchor = tmp_path / "bind.ds"
    anchor.write_text(f"; from dnssec-dsfromkey\n{ds[0]} 3600 IN {ds[1]}\n")
    assert len(resolver(knot.server, anchor).publishers("signed.test")) == 1


def test_trust_anchor_file_errors_are_configuration_errors(tmp_path: Path):
    bad = tmp_path / "anchor"
    bad.write_text("signed.test. A 192.0.2.1\n")
    with pytest.raises(ConfigError, match="only DS and DNSKEY"):
        TrustAnchors.from_file(bad)
    bad.write_text("this is not a zone file line\n")
    with pytest.raises(ConfigError, match="not DS or DNSKEY records"):
        TrustAnchors.from_file(bad)
