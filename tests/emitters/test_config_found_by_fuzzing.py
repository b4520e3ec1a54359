"""Configuration files the fuzzer (tests/fuzz) found to end the programs
with a traceback (UnicodeDecodeError, RecursionError): now one line naming
the file, and exit 2.  The policy and endpoints files had the same fault."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from debpulse.emitters.config import load_config, parse_toml
from debpulse.emitters.discovery import read_endpoints_file
from debpulse.emitters.errors import ConfigError
from debpulse.emitters.policy import Policy

NOT_UTF8 = b"[bus]\nusername = \"\xe9\"\n"  # Latin-1, as an editor may save it


def test_parse_toml_names_the_place() -> None:
    with pytest.raises(ConfigError, match=r"^debpulse.toml: not UTF-8 \(invalid continuation byte at byte 18\)$"):
        parse_toml(NOT_UTF8, "debpulse.toml")


@pytest.mark.parametrize("value", [b"[" * 5000 + b"]" * 5000, b"{a = " * 5000 + b"1" + b"}" * 5000])
def test_values_nested_too_deeply(value: bytes) -> None:
    # was: RecursionError from tomllib
    with pytest.raises(ConfigError, match="^debpulse.toml: values nested too deeply$"):
        parse_toml(b"x = " + value + b"\n", "debpulse.toml")


@pytest.mark.parametrize("read", [load_config, Policy.from_file, read_endpoints_file])
def test_files_that_are_not_utf8(tmp_path: Path, read) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "debpulse.toml"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(ConfigError, match=f"^{path}: not UTF-8"):
        read(str(path) if read is load_config else path)


def test_the_command_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "debpulse.toml"
    path.write_bytes(NOT_UTF8)
    done = subprocess.run([sys.executable, "-m", "debpulse.emitters.commands.tail", "--config", str(path),
                           "--timeout", "1"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DEBPULSE_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"debpulse-tail: {path}: not UTF-8 (invalid continuation byte at byte 18)"]
