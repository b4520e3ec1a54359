"""Shared test fixtures: real gpg keys, free ports, the shared sample data.

Real components only: each fixture starts the real thing on loopback and
stops it by PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.pop("RUST_BACKTRACE", None)


def fixtures_dir() -> Path:
    return Path(os.environ.get("DEBPULSE_FIXTURES") or ROOT.parent / "shared" / "fixtures")


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    path = fixtures_dir()
    if not path.is_dir():
        pytest.skip(f"shared sample data not found at {path} (set DEBPULSE_FIXTURES)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class GpgKey:
    home: Path           # GNUPGHOME holding the secret key
    fingerprint: str     # upper-case hex
    secret_file: Path    # armored, unprotected secret key (for the in-process backend)
    public_file: Path    # armored certificate (for keyrings)


def make_gpg_key(uid: str = "debpulse test <test@example.org>", algo: str = "ed25519") -> GpgKey:
    # Short path: gpg-agent's socket path has a length limit.
    home = Path(tempfile.mkdtemp(prefix="gh-", dir="/tmp"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, algo, "sign", "never"],
        env=env, check=True, capture_output=True,
    )
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    secret = home / "secret.asc"
    public = home / "public.asc"
    secret.write_bytes(subprocess.run(
        ["gpg", "--batch", "--armor", "--export-secret-keys", fpr],
        env=env, check=True, capture_output=True).stdout)
    public.write_bytes(subprocess.run(
        ["gpg", "--batch", "--armor", "--export", fpr],
        env=env, check=True, capture_output=True).stdout)
    return GpgKey(home, fpr, secret, public)


def drop_gpg_key(key: GpgKey) -> None:
    subprocess.run(["gpgconf", "--kill", "gpg-agent"],
                   env={**os.environ, "GNUPGHOME": str(key.home)}, capture_output=True)
    shutil.rmtree(key.home, ignore_errors=True)


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
