"""Shared fixtures: real gpg keys, the shared sample data, a real relay.

The helpers behind them live in tests/testbus.py: import from `testbus`,
not from `conftest` (any folder's conftest.py can shadow that name).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from testbus import Bus, GpgKey, drop_gpg_key, fixtures_dir, make_gpg_key


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    path = fixtures_dir()
    if not path.is_dir():
        pytest.skip(f"shared sample data not found at {path} (set DEBPULSE_FIXTURES)")
    return path


@pytest.fixture(scope="session")
def gpg_key() -> Iterator[GpgKey]:
    """An ed25519 signing key in its own temporary GnuPG home."""
    key = make_gpg_key()
    yield key
    drop_gpg_key(key)


@pytest.fixture(scope="session")
def rsa_key() -> Iterator[GpgKey]:
    key = make_gpg_key("debpulse rsa <rsa@example.org>", "rsa3072")
    yield key
    drop_gpg_key(key)


@pytest.fixture
def bus(tmp_path: Path, gpg_key: GpgKey) -> Iterator[Bus]:
    """A real relay with a fresh state, signing with the session's key."""
    b = Bus(tmp_path / "bus", gpg_key)
    b.start()
    yield b
    b.close()
