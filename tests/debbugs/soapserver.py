"""A local stand-in for bugs.debian.org's soap.cgi: a real HTTP server on
127.0.0.1 that answers with the responses recorded from the real service
(fixtures/debbugs-soap), byte for byte.

Which recording answers: the one whose recorded request had the same
method and arguments; for get_status, the recording that holds most of the
bugs asked about (the empty answer when none does, as debbugs answers for
unknown bugs).  `pin(method, name)` makes one recording answer every call
of a method, `fail(mode)` makes every call fail: "fault", "500", "timeout",
"malformed".
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from debpulse.adapters.debbugs import soap

FAULT = (
    b'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope '
    b'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>'
    b"<faultcode>soap:Client</faultcode><faultstring>Failed to locate method (get_stauts) in "
    b'class (Debbugs::SOAP) at /usr/share/perl5/SOAP/Lite.pm line 2870.</faultstring>'
    b"</soap:Fault></soap:Body></soap:Envelope>"
)


class SoapServer:
    def __init__(self, recordings: Path) -> None:
        self.responses: dict[str, bytes] = {}
        self.requests: dict[str, tuple[str, list[Any]]] = {}
        for request in sorted(recordings.glob("*.request.xml")):
            name = request.name.removesuffix(".request.xml")
            self.requests[name] = soap.decode_request(request.read_bytes())
            self.responses[name] = (recordings / f"{name}.response.xml").read_bytes()
        self.status_bugs = {
            name: set(soap.statuses_of(soap.decode_response(self.responses[name], "get_status")))
            for name, (method, _) in self.requests.items() if method == "get_status"
        }
        self.pinned: dict[str, str] = {}
        self.mode: str | None = None
        self.delay = 0.0
        self.calls: list[tuple[str, list[Any]]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="soap", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/cgi-bin/soap.cgi"

    def start(self) -> SoapServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def pin(self, method: str, name: str) -> None:
        self.pinned[method] = name

    def fail(self, mode: str | None) -> None:
        self.mode = mode

    def reset(self) -> None:
        self.pinned.clear()
        self.mode = None
        self.calls.clear()

    def answer(self, method: str, args: list[Any]) -> tuple[int, bytes]:
        if method in self.pinned:
            return 200, self.responses[self.pinned[method]]
        if method == "get_status":
            asked = {int(b) for b in (args[0] if args and isinstance(args[0], list) else args)}
            best = max(self.status_bugs, key=lambda n: len(self.status_bugs[n] & asked))
            if self.status_bugs[best] & asked:
                return 200, self.responses[best]
            return 200, self.responses["testEmptyGetStatus"]
        wanted = [str(a) for a in args]
        for name, (m, recorded) in self.requests.items():
            if m == method and [str(a) for a in recorded] == wanted:
                return 200, self.responses[name]
        return 500, FAULT.replace(b"get_stauts", method.encode())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                method, args = soap.decode_request(data)
                with server.lock:
                    server.calls.append((method, args))
                    mode = server.mode
                if mode == "timeout":
                    time.sleep(server.delay or 2.0)
                    return self._send(200, server.responses["testEmptyGetStatus"])
                if mode == "fault":
                    return self._send(500, FAULT)
                if mode == "500":
                    return self._send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
                if mode == "malformed":
                    return self._send(200, server.responses["testNewestBugs"][:-40])
                self._send(*server.answer(method, args))

            def _send(self, status: int, body: bytes, ctype: str = "text/xml; charset=utf-8") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("SOAPServer", "SOAP::Lite/Perl/1.11")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        return Handler
