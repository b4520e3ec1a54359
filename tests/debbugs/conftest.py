"""Fixtures of the debbugs adapter tests: the recorded sample data and a
local SOAP server answering with the real recorded responses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .soapserver import SoapServer


@pytest.fixture(scope="session")
def bts_mails(shared_fixtures: Path) -> Path:
    return shared_fixtures / "debbugs" / "mails"


@pytest.fixture(scope="session")
def soap_recordings(shared_fixtures: Path) -> Path:
    return shared_fixtures / "debbugs-soap"


@pytest.fixture(scope="session")
def _soap_server(soap_recordings: Path) -> Iterator[SoapServer]:
    server = SoapServer(soap_recordings).start()
    yield server
    server.stop()


@pytest.fixture
def soap_server(_soap_server: SoapServer) -> Iterator[SoapServer]:
    _soap_server.reset()
    yield _soap_server
    _soap_server.reset()
