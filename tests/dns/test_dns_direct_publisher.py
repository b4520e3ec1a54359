"""A long-running adapter that publishes directly announces itself from the
configuration, as the relay does, and withdraws when it closes."""

from __future__ import annotations

import argparse
from pathlib import Path

from testbus import free_port

from debpulse.emitters.config import Config
from debpulse.emitters.emitter import Emitter, open_emitter
from debpulse.emitters.event import Event

DOMAIN = "update.test"  # emptied after each test by the conftest's `clean`


def direct_publisher(knot, key, state: Path, tsig_key_file: Path, port: int, replay: int) -> Emitter:
    """What open_emitter gives an adapter run with [bus] publish and [dns.announce]."""
    config = Config({
        "bus": {"publish": f"tcp://127.0.0.1:{port}", "replay": f"tcp://127.0.0.1:{replay}",
                "signing_key": str(key.secret_file), "state_dir": str(state)},
        "dns": {"announce": {"domain": DOMAIN, "server": knot.server, "tsig_key_file": str(tsig_key_file),
                             "target": "buildd-db.example.org"}},
    })
    return open_emitter(argparse.Namespace(), config, name="wannabuild")


def test_direct_publisher_announces_and_withdraws(knot, clean, gpg_key, tmp_path):
    port, replay = free_port(), free_port()
    emitter = direct_publisher(knot, gpg_key, tmp_path, knot.key_file, port, replay)
    try:
        assert knot.records(DOMAIN, "SRV") == [f"0 0 {port} buildd-db.example.org."]
        [txt] = knot.records(DOMAIN, "TXT")
        assert f'"fpr={gpg_key.fingerprint}"' in txt and f'"replay=tcp://127.0.0.1:{replay}"' in txt
        emitter.emit(Event("logger.log", {"log": "announced"}))
    finally:
        emitter.close()
    assert knot.records(DOMAIN, "SRV") == []


def test_a_refused_announcement_does_not_stop_the_publisher(knot, clean, gpg_key, tmp_path, caplog):
    emitter = direct_publisher(knot, gpg_key, tmp_path, knot.stranger_key_file, free_port(), free_port())
    try:
        emitter.emit(Event("logger.log", {"log": "still publishing"}))
        assert knot.records(DOMAIN, "SRV") == []
        assert "could not announce tcp://buildd-db.example.org:" in caplog.text and "retrying in" in caplog.text
    finally:
        emitter.close()
