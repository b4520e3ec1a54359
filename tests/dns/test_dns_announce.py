"""RFC 2136 announce and withdraw against a real knot with a TSIG update ACL."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from pathlib import Path

import dns.query
import dns.rdatatype
import dns.tsig
import dns.update
import dns.zonefile
import pytest

from debpulse.emitters.announce import Announcement, Announcer, UpdateRefused, read_tsig_key
from debpulse.emitters.commands.dns import main as dns_main
from debpulse.emitters.config import Config
from debpulse.emitters.discovery import PublisherInfo, parse_endpoints, parse_txt
from debpulse.emitters.errors import ConfigError

DOMAIN = "update.test"  # the zone the conftest's `clean` fixture empties


def announcer(knot, target: str = "relay.example.org", port: int = 9940, key=None, **kw) -> Announcer:
    a = Announcement(domain=DOMAIN, target=target, port=port, **kw)
    return Announcer(a, knot.server, knot.key if key is None else key)


def dns_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debpulse.emitters.commands.dns", *args],
                          capture_output=True, text=True, timeout=30)


def test_announce_adds_then_leaves_alone_then_refreshes(knot, clean):
    a = announcer(knot, name="relay@ftp-master", fingerprint="AB" * 20, replay="tcp://relay.example.org:9941")
    assert a.announce() is True
    assert knot.records(DOMAIN, "SRV") == ["0 0 9940 relay.example.org."]
    assert knot.records(DOMAIN, "TXT") == [
        '"debpulse=1" "endpoint=tcp://relay.example.org:9940" "name=relay@ftp-master" '
        f'"fpr={"AB" * 20}" "replay=tcp://relay.example.org:9941"'
    ]
    assert a.announce() is False  # already there: nothing sent

    # A new signing key and weight replace the old records instead of adding more.
    b = announcer(knot, name="relay@ftp-master", fingerprint="CD" * 20, weight=7)
    assert b.announce() is True
    assert knot.records(DOMAIN, "SRV") == ["0 7 9940 relay.example.org."]
    assert knot.records(DOMAIN, "TXT") == [
        f'"debpulse=1" "endpoint=tcp://relay.example.org:9940" "name=relay@ftp-master" "fpr={"CD" * 20}"'
    ]


def test_withdraw_removes_only_its_own_records(knot, clean):
    mine, other = announcer(knot, port=9940), announcer(knot, target="other.example.org", port=9950)
    mine.announce()
    other.announce()
    assert len(knot.records(DOMAIN, "SRV")) == 2
    assert mine.withdraw() is True
    assert knot.records(DOMAIN, "SRV") == ["0 0 9950 other.example.org."]
    assert knot.records(DOMAIN, "TXT") == ['"debpulse=1" "endpoint=tcp://other.example.org:9950"']
    assert mine.withdraw() is False


def test_acl_limits_the_key_to_fedmsg_srv_and_txt(knot, clean):
    for owner, rdtype, rdata in (("www", "A", "192.0.2.1"), ("_other._tcp", "SRV", "0 0 1 x.example.org."),
                                 ("_fedmsg._tcp", "A", "192.0.2.1")):
        u = dns.update.UpdateMessage(DOMAIN, keyring=knot.key)
        u.add(owner, 60, rdtype, rdata)
        with pytest.raises(dns.tsig.PeerBadKey):  # knot's answer to an ACL denial
            dns.query.tcp(u, "127.0.0.1", port=knot.port, timeout=3)
    assert knot.records(DOMAIN, "A") == []


@pytest.mark.parametrize("who", ["wrong secret", "key in no ACL", "unsigned"])
def test_refused_update_is_one_line_and_exit_2(knot, who, tmp_path: Path):
    key_file = tmp_path / "key"
    if who == "wrong secret":  # BIND's tsig-keygen format, right name, wrong secret
        key_file.write_text('key "debpulse" {\n\talgorithm hmac-sha256;\n\tsecret "'
                            'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0cw==";\n};\n')
    elif who == "key in no ACL":
        key_file = knot.stranger_key_file
    args = ["announce", "--domain", DOMAIN, "--server", knot.server, "--target", "relay.example.org"]
    if who != "unsigned":
        args += ["--tsig-key-file", str(key_file)]
    result = dns_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "refused" in lines[0]
    assert knot.records(DOMAIN, "SRV") == []


def test_cli_announce_and_withdraw_with_the_right_key(knot, clean):
    args = ["--domain", DOMAIN, "--server", knot.server, "--tsig-key-file", str(knot.key_file),
            "--target", "relay.example.org", "--port", "9940", "--name", "relay@test"]
    result = dns_cli("announce", *args)
    assert result.returncode == 0, result.stderr
    assert "announced" in result.stdout
    assert knot.records(DOMAIN, "SRV") == ["0 0 9940 relay.example.org."]
    result = dns_cli("withdraw", *args)
    assert result.returncode == 0, result.stderr
    assert knot.records(DOMAIN, "SRV") == []


def test_unreachable_server_is_exit_1():
    with socket.socket() as s:  # a port with certainly nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = dns_cli("announce", "--domain", DOMAIN, "--server", f"127.0.0.1:{port}", "--target", "x.example.org")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot reach DNS server" in result.stderr


def test_zone_not_served_is_exit_2(knot):
    result = dns_cli("announce", "--domain", "elsewhere.test", "--server", knot.server,
                     "--tsig-key-file", str(knot.key_file), "--target", "x.example.org")
    assert result.returncode == 2
    assert "does not serve" in result.stderr


def test_from_config_without_a_table_is_none():
    assert Announcer.from_config(Config({"dns": {"nameservers": ["127.0.0.1"]}}), name="relay",
                                 endpoint="tcp://*:9940", replay=None, fingerprint=None) is None


def test_from_config_fills_in_what_the_publisher_knows(knot):
    config = Config({"dns": {"announce": {"domain": DOMAIN, "server": knot.server, "target": "relay.example.org",
                                          "tsig_key_file": str(knot.key_file), "priority": 5}}})
    a = Announcer.from_config(config, name="relay@ftp-master", endpoint="tcp://*:9940",
                              replay="tcp://*:9941", fingerprint="AB" * 20)
    assert a is not None
    info = a.announcement.info
    assert (info.endpoint, info.replay, info.name, info.fingerprint, info.priority) == (
        "tcp://relay.example.org:9940", "tcp://relay.example.org:9941", "relay@ftp-master", "AB" * 20, 5)
    assert a.key is not None and a.key.name.to_text() == "debpulse."


def test_bad_configuration_names_the_key():
    config = Config({"dns": {"announce": {"domain": DOMAIN, "server": "127.0.0.1", "prot": 1}}}, {"dns": "x.toml"})
    with pytest.raises(ConfigError, match=r"x.toml: \[dns.announce\] unknown key 'prot'"):
        Announcer.from_config(config, name="r", endpoint="tcp://*:9940", replay=None, fingerprint=None)
    config = Config({"dns": {"announce": {"domain": DOMAIN, "server": "127.0.0.1", "weight": 70000}}})
    with pytest.raises(ConfigError, match="weight must be from 0 to 65535"):
        Announcer.from_config(config, name="r", endpoint="tcp://*:9940", replay=None, fingerprint=None)


def test_tsig_key_files_of_knot_and_bind(knot, tmp_path: Path):
    assert read_tsig_key(knot.key_file) == knot.key
    bind = tmp_path / "bind.key"  # as BIND's tsig-keygen writes it
    secret = base64.b64encode(knot.key.secret).decode()
    bind.write_text(f'key "debpulse" {{\n\talgorithm hmac-sha256;\n\tsecret "{secret}";\n}};\n')
    assert read_tsig_key(bind) == knot.key
    garbage = tmp_path / "garbage.key"
    garbage.write_text("nothing here\n")
    with pytest.raises(ConfigError, match="no TSIG key found"):
        read_tsig_key(garbage)


def test_refused_is_a_configuration_error():
    assert issubclass(UpdateRefused, ConfigError)


def test_zone_prints_lines_for_hand_edited_zones(capsys, tmp_path: Path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    argv = ["--config", str(empty), "--domain", "example.org", "--target", "relay.example.org", "--port", "9940",
            "--name", "relay@ftp-master", "--fingerprint", "AB" * 20]
    assert dns_main(["zone", *argv]) == 0
    rrsets = {r.rdtype: r for r in dns.zonefile.read_rrsets(capsys.readouterr().out, rdclass=None, relativize=False)}
    assert {r.name.to_text() for r in rrsets.values()} == {"_fedmsg._tcp.example.org."}
    assert rrsets[dns.rdatatype.SRV][0].to_text() == "0 0 9940 relay.example.org."
    assert parse_txt(rrsets[dns.rdatatype.TXT][0].strings) == {
        "debpulse": "1", "endpoint": "tcp://relay.example.org:9940", "name": "relay@ftp-master", "fpr": "AB" * 20}
    assert dns_main(["zone", "--endpoints", *argv]) == 0
    assert parse_endpoints(capsys.readouterr().out, "out") == [
        PublisherInfo("tcp://relay.example.org:9940", name="relay@ftp-master", fingerprint="AB" * 20)]


def test_usage_errors_are_one_line_and_exit_2(capsys, tmp_path: Path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert dns_main(["lookup", "--config", str(empty)]) == 2
    assert dns_main(["announce", "--config", str(empty), "--server", "127.0.0.1"]) == 2
    assert dns_main(["lookup", "example.org", "--config", str(empty), "--nameserver", "127.0.0.1:x"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert "nothing to look up" in err[0] and "--domain (or [dns.announce] domain) is required" in err[1]
    assert "port must be a number" in err[2]
    with pytest.raises(SystemExit) as exit_:
        dns_main(["announce", "--help"])
    assert exit_.value.code == 0 and "debpulse-dns announce --domain example.org" in capsys.readouterr().out
