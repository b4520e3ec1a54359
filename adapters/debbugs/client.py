"""A client for debbugs' SOAP service (requests), with timeouts and retries.

Faults, malformed answers and 4xx are errors a retry will not mend and are
raised at once; timeouts, refused connections and 5xx without a SOAP fault
are retried with exponential backoff, then raised as SoapUnavailable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

from debpulse.emitters import metrics

from . import soap
from .soap import SoapError, SoapFault, SoapUnavailable

log = logging.getLogger(__name__)

DEFAULT_URL = "https://bugs.debian.org/cgi-bin/soap.cgi"
BATCH_SIZE = 500  # get_status: as python-debianbts, to keep answers reasonable


class DebbugsClient:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        attempts: int = 3,
        backoff: float = 1.0,
        namespace: str = soap.NAMESPACE,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.namespace = namespace
        self.session = session or requests.Session()
        self.session.headers.update({"User-Agent": "debpulse-debbugs"})
        self._sleep = sleep

    def close(self) -> None:
        self.session.close()

    # --- the methods --------------------------------------------------

    def get_status(self, bugs: Iterable[int]) -> dict[int, dict[str, Any]]:
        """{bug: status} for the bugs that exist, asked 500 at a time."""
        wanted = sorted(set(int(b) for b in bugs))
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(wanted), BATCH_SIZE):
            batch = wanted[i:i + BATCH_SIZE]
            asked = set(batch)
            out.update((bug, status) for bug, status in self.call("get_status", batch).items() if bug in asked)
        return out

    def newest_bugs(self, count: int) -> list[int]:
        return self.call("newest_bugs", int(count))  # type: ignore[no-any-return]

    def get_bug_log(self, bug: int) -> list[dict[str, Any]]:
        return self.call("get_bug_log", int(bug))  # type: ignore[no-any-return]

    def get_bugs(self, **query: str | int) -> list[int]:
        """get_bugs(package="xfsprogs", status="open"): key/value pairs as
        arguments, as debbugs expects them."""
        args: list[Any] = []
        for key, value in query.items():
            args += [key, value]
        return self.call("get_bugs", *args)  # type: ignore[no-any-return]

    # --- transport ----------------------------------------------------

    def call(self, method: str, *args: Any) -> Any:
        """`method`'s answer, as soap.read_answer reads it."""
        request = soap.build_request(method, *args, namespace=self.namespace)
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return self._once(method, request)
            except SoapError as exc:
                metrics.inc("debpulse_debbugs_soap_errors_total", method=method, kind=type(exc).__name__,
                            help="failed SOAP calls to debbugs")
                if not exc.retry or attempt == self.attempts:
                    raise
                log.info("%s failed (%s); retry %d/%d in %.1f s", method, exc, attempt,
                         self.attempts - 1, delay)
                self._sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _once(self, method: str, request: bytes) -> Any:
        try:
            response = self.session.post(
                self.url,
                data=request,
                headers={"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": '""'},
                timeout=self.timeout,
            )
        except requests.Timeout:
            raise SoapUnavailable(f"{method}: no answer from {self.url} within {self.timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise SoapUnavailable(f"{method}: cannot reach {self.url}: {_reason(exc)}") from None
        except requests.RequestException as exc:
            raise SoapError(f"{method}: {exc}") from None
        status = response.status_code
        if status >= 500:
            # SOAP 1.1 sends faults with status 500: a fault is the server's
            # answer, anything else there is the server being unwell.
            try:
                soap.parse_envelope(response.content)
            except SoapFault:
                raise
            except SoapError:
                pass
            raise SoapUnavailable(f"{method}: HTTP {status} {response.reason} from {self.url}")
        if status != 200:
            raise SoapError(f"{method}: HTTP {status} {response.reason} from {self.url}")
        return soap.read_answer(method, response.content)


def _reason(exc: Exception) -> str:
    text = str(exc.args[0] if exc.args else exc)
    return text.rsplit(": ", 1)[-1].strip("')\"") or type(exc).__name__
