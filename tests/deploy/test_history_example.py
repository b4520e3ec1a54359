"""The history host's example configuration loads through the readers
debpulse-archive and debpulse-web use."""

from __future__ import annotations

import argparse

from testbus import ROOT

from debpulse.consumers.archive.cli import Settings
from debpulse.consumers.web.cli import options
from debpulse.emitters.config import load_config

EXAMPLE = ROOT / "deploy" / "examples" / "history" / "debpulse.toml"


def test_history_example_loads() -> None:
    config = load_config(str(EXAMPLE))
    archive = Settings(argparse.Namespace(dsn=None, resume=None, batch=None, topic=[], metrics_port=None), config)
    assert (archive.dsn, archive.resume, archive.interval, archive.retention_days) == (
        "service=debpulse", "archive", "month", 0)
    assert archive.metrics_port == 9956
    web = options(argparse.Namespace(dsn=None, listen=None), config)
    # The web reads from the replica the archive names.
    assert web["dsn"] == "service=debpulse-replica"
    assert (web["host"], web["port"], web["settings"].statement_timeout) == ("127.0.0.1", 9960, 3.0)
    assert set(config.data) == {"subscribe", "archive", "web"}
