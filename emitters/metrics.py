"""Counters in the Prometheus text format, served on an optional local port.

Deliberately tiny: a process-wide registry of labelled counters and gauges,
and a threaded HTTP server for /metrics.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
_help: dict[str, tuple[str, str]] = {}


def inc(name: str, amount: float = 1.0, help: str = "", **labels: str) -> None:
    key = (name, tuple(sorted(labels.items())) if labels else ())
    with _lock:
        _values[key] = _values.get(key, 0.0) + amount
        _help.setdefault(name, ("counter", help))


def set_gauge(name: str, value: float, help: str = "", **labels: str) -> None:
    key = (name, tuple(sorted(labels.items())))
    with _lock:
        _values[key] = value
        _help.setdefault(name, ("gauge", help))


def value(name: str, **labels: str) -> float:
    with _lock:
        return _values.get((name, tuple(sorted(labels.items()))), 0.0)


def render() -> str:
    lines: list[str] = []
    with _lock:
        items = sorted(_values.items())
        for metric in sorted({k[0] for k, _ in items}):
            kind, text = _help[metric]
            if text:
                lines.append(f"# HELP {metric} {text}")
            lines.append(f"# TYPE {metric} {kind}")
            for (name, labels), v in items:
                if name != metric:
                    continue
                lab = ",".join(f'{k}="{_escape(val)}"' for k, val in labels)
                lines.append(f"{name}{{{lab}}} {v:g}" if lab else f"{name} {v:g}")
    return "\n".join(lines) + "\n"


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def serve(port: int, host: str = "127.0.0.1") -> Any:
    """Serve /metrics in a daemon thread; returns the server (for its port).
    http.server is imported here: short-lived processes (the git hook) never
    pay for it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    try:
        server = ThreadingHTTPServer((host, port), _Handler)
    except OSError as exc:  # two programs given one port: the operator's to fix
        from .errors import ConfigError

        raise ConfigError(f"metrics port {port}: {exc.strerror}") from None
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server
