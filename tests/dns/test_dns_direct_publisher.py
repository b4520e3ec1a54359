"""A long-running adapter that publishes directly announces itself from the
configuration, as the relay does, and withdraws when it closes."""

from __future__ import annotations

import argparse
import socket

import dns.query
import dns.update
import pytest

from debpulse.emitters.config import Config
from debpulse.emitters.emitter import open_emitter
from debpulse.emitters.event import Event

DOMAIN = "update.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def clean(knot):
    yield
    u = dns.update.UpdateMessage(DOMAIN, keyring=knot.key)
    u.delete("_fedmsg._tcp", "SRV")
    u.delete("_fedmsg._tcp", "TXT")
    dns.query.tcp(u, "127.0.0.1", port=knot.port, timeout=3)


def test_direct_publisher_announces_and_withdraws(knot, clean, gpg_key, tmp_path):
    port, replay = free_port(), free_port()
    config = Config({
        "bus": {"publish": f"tcp://127.0.0.1:{port}", "replay": f"tcp://127.0.0.1:{replay}",
                "signing_key": str(gpg_key.secret_file), "state_dir": str(tmp_path)},
        "dns": {"announce": {"domain": DOMAIN, "server": knot.server, "tsig_key_file": str(knot.key_file),
                             "target": "buildd-db.example.org"}},
    })
    emitter = open_emitter(argparse.Namespace(), config, name="wannabuild")
    try:
        assert knot.records(DOMAIN, "SRV") == [f"0 0 {port} buildd-db.example.org."]
        [txt] = knot.records(DOMAIN, "TXT")
        assert f'"fpr={gpg_key.fingerprint}"' in txt and f'"replay=tcp://127.0.0.1:{replay}"' in txt
        emitter.emit(Event("logger.log", {"log": "announced"}))
    finally:
        emitter.close()
    assert knot.records(DOMAIN, "SRV") == []


def test_a_refused_announcement_does_not_stop_the_publisher(knot, clean, gpg_key, tmp_path, caplog):
    port = free_port()
    config = Config({
        "bus": {"publish": f"tcp://127.0.0.1:{port}", "replay": f"tcp://127.0.0.1:{free_port()}",
                "signing_key": str(gpg_key.secret_file), "state_dir": str(tmp_path)},
        "dns": {"announce": {"domain": DOMAIN, "server": knot.server, "tsig_key_file": str(knot.stranger_key_file),
                             "target": "buildd-db.example.org"}},
    })
    emitter = open_emitter(argparse.Namespace(), config, name="wannabuild")
    try:
        emitter.emit(Event("logger.log", {"log": "still publishing"}))
        assert knot.records(DOMAIN, "SRV") == []
        assert "could not announce in DNS" in caplog.text
    finally:
        emitter.close()
