"""The snippets in deploy/dns/ do what they say: knot runs with them and
its ACL lets the key touch only _fedmsg._tcp SRV and TXT; BIND accepts its
configuration; the examples parse."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import dns.query
import dns.tsig
import dns.update
import pytest

from debpulse.emitters.announce import Announcement, Announcer, announcement_from, read_tsig_key
from debpulse.emitters.config import Config, Section
from debpulse.emitters.discovery import DNS, PublisherInfo, SrvResolver, read_endpoints_file
from debpulse.emitters.dnssec import TrustAnchors
from debpulse.emitters.errors import ConfigError
from debpulse.emitters.options import SUBSCRIBE

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "dns"


@pytest.fixture(scope="module")
def deployed_knot(knot_tools) -> Iterator[tuple[Path, int]]:
    """knot with deploy/dns/knot.conf as given, plus only what a test run
    needs on top: a loopback port and temporary storage."""
    d = Path(tempfile.mkdtemp(prefix="knot-deploy-"))
    subprocess.run([knot_tools.keymgr, "-t", "debpulse-relay", "hmac-sha256"], check=True,
                   stdout=(d / "debpulse-relay.key").open("w"))
    shutil.copy(DEPLOY / "example.org.zone", d / "example.org.zone")
    snippet = (DEPLOY / "knot.conf").read_text().replace("/etc/knot/debpulse-relay.key", str(d / "debpulse-relay.key"))
    port = knot_tools.free_port()
    (d / "knot.conf").write_text(
        f"server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n"
        f"database:\n    storage: {d}/db\n"
        f"template:\n  - id: default\n    storage: {d}\n"
        + snippet
    )
    proc = knot_tools.run_knotd(d, port, {"example.org": True})
    yield d, port
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    shutil.rmtree(d, ignore_errors=True)


def test_knot_snippet_takes_announcements_and_nothing_else(deployed_knot, knot_tools):
    d, port = deployed_knot
    key = read_tsig_key(d / "debpulse-relay.key")
    a = Announcer(Announcement("example.org", "new.example.org", 9940), f"127.0.0.1:{port}", key)
    assert a.announce() is True
    for owner, rdtype, rdata in (("relay", "A", "192.0.2.66"), ("_fedmsg._tcp", "NS", "ns1.example.org.")):
        u = dns.update.UpdateMessage("example.org", keyring=key)
        u.add(owner, 60, rdtype, rdata)
        with pytest.raises(dns.tsig.PeerBadKey):
            dns.query.tcp(u, "127.0.0.1", port=port, timeout=3)
    # The hand-written records of the example zone and the announced one,
    # signed by the snippet's policy, checked against the exported DS.
    anchor = d / "example.org.ds"
    anchor.write_text(subprocess.run([knot_tools.keymgr, "-c", str(d / "knot.conf"), "example.org", "ds"],
                                     check=True, capture_output=True, text=True).stdout)
    pubs = SrvResolver([f"127.0.0.1:{port}"], anchors=TrustAnchors.from_file(anchor)).publishers("example.org")
    assert {p.endpoint: p for p in pubs}["tcp://relay.example.org:9940"] == PublisherInfo(
        "tcp://relay.example.org:9940", "tcp://relay.example.org:9941", "relay@ftp-master",
        "0123456789ABCDEF0123456789ABCDEF01234567")
    assert sorted(p.endpoint for p in pubs) == [
        "tcp://buildd.example.org:9940", "tcp://new.example.org:9940", "tcp://relay.example.org:9940"]
    a.withdraw()


def test_bind_snippet_is_valid_named_configuration(tmp_path: Path):
    checkconf = shutil.which("named-checkconf")
    if not checkconf:
        pytest.skip("named-checkconf not installed (apt-get install bind9-utils)")
    key = tmp_path / "debpulse-relay.key"
    key.write_text('key "debpulse-relay" {\n\talgorithm hmac-sha256;\n'
                   '\tsecret "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";\n};\n')
    conf = tmp_path / "named.conf"
    conf.write_text((DEPLOY / "named.conf.debpulse").read_text().replace("/etc/bind/debpulse-relay.key", str(key)))
    result = subprocess.run([checkconf, str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # and its key file format is one debpulse reads
    assert read_tsig_key(key).name.to_text() == "debpulse-relay."


def test_example_key_is_refused_until_replaced():
    with pytest.raises(ConfigError, match="bad TSIG key 'debpulse-relay'"):
        read_tsig_key(DEPLOY / "tsig.key.example")


def test_examples_parse():
    assert [p.endpoint for p in read_endpoints_file(DEPLOY / "endpoints.example")] == [
        "tcp://relay.example.org:9940", "tcp://buildd.example.org:9940"]
    data = tomllib.loads((DEPLOY / "debpulse.toml.example").read_text())
    config = Config(data)
    DNS.read(config)
    a = announcement_from(Section("dns.announce", data["dns"]["announce"], "example"), endpoint="tcp://*:9940")
    assert a.info.endpoint == "tcp://relay.example.org:9940"
    assert SUBSCRIBE.read(config)["srv_domains"] == ["example.org"]
