"""What a long-running adapter tells its service manager and its monitoring:
readiness to systemd (Type=notify) and counters on an optional local port.

The port comes from --metrics-port or a key in the adapter's own table
(not [bus]: several programs on one host each need their own port).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from debpulse.emitters import metrics, systemd
from debpulse.emitters.config import Config, Values
from debpulse.emitters.errors import ConfigError

log = logging.getLogger(__name__)

def check_tables(config: Config) -> None:
    """Kept for callers; load_config checks the tables of every program."""
    config.check_tables()


def adapter_state_dir(args: argparse.Namespace, config: Config, name: str) -> Path:
    """An adapter's own directory (positions, quarantine) under the state
    directory: --state-dir, else [bus] state_dir, else the default."""
    from debpulse.emitters.options import BUS

    return Path(args.state_dir or BUS.read(config)["state_dir"]) / name


def add_metrics_flag(p: Any) -> None:
    """`p`: a parser, or cli.after_command(subparser)."""
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on 127.0.0.1:PORT (/metrics)")


def metrics_port(args: argparse.Namespace, section: Values, key: str = "metrics_port") -> int | None:
    """The flag wins over `key` in the adapter's table."""
    flag = getattr(args, "metrics_port", None)
    port = section.pick(flag, key)
    if port is not None and not 0 <= port <= 65535:
        where = "--metrics-port" if flag is not None else f"{section.where}: [{section.name}] {key}"
        raise ConfigError(f"{where} must be a port number (0-65535), not {port}")
    return port


def serve_metrics(port: int | None) -> None:
    """Serve /metrics on 127.0.0.1:port; a port in use is a configuration
    error (two programs given the same port), not a traceback."""
    if port is None:
        return
    server = metrics.serve(port)
    log.info("metrics on http://127.0.0.1:%d/metrics", server.server_address[1])


def ready(status: str) -> None:
    """Tell systemd we are up (READY=1), with a one-line status for `systemctl status`."""
    systemd.notify(f"READY=1\nSTATUS={status}")


def stopping() -> None:
    systemd.notify("STOPPING=1")
