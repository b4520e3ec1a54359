"""A mistake in a copy of an example configuration: the real command says so
in one line naming the file and the key (or table), and exits 2."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from testbus import GpgKey, free_port

from .roles import Role, command, drop_role, install_role

LOCAL = "tcp://127.0.0.1"


def _relay() -> list[str]:
    # Local ports, so that a mistake that went unnoticed cannot bind the real ones.
    return ["debpulse-relay", "--publish", f"{LOCAL}:{free_port()}", "--replay", f"{LOCAL}:{free_port()}"]


# (role, command, text in the example, its mistaken replacement, what the one line must say)
MISTAKES = [
    ("ftp-master", ["debpulse-dak", "run", "--once"], "settle = 2", 'settle = "two"',
     "[dak] settle must be int or float, not 'two'"),
    ("ftp-master", ["debpulse-dak", "run", "--once"], "\n[dak]\n", "\n[dakk]\n",
     "unknown table [dakk] (did you mean [dak]?)"),
    ("ftp-master", ["debpulse-dak", "run", "--once"], "keyrings = [", "keyring = [",
     "[dak] unknown key 'keyring'"),
    ("ftp-master", _relay(), "relay_timeout = 1.0", 'relay_timeout = 1.0\npublsh = "tcp://*:9940"',
     "[bus] unknown key 'publsh'"),
    ("ftp-master", _relay(), 'environment = "production"', 'environment = "prod"',
     "[bus] environment must be one of dev, stg, production"),
    ("ftp-master", _relay(), "tsig_key_file =", "tsig_keyfile =",
     "[dns.announce] unknown key 'tsig_keyfile'"),
    ("ftp-master", ["debpulse-tail", "--timeout", "1"], "window = 600", 'window = "ten minutes"',
     "[subscribe] window must be int or float, not 'ten minutes'"),
    ("buildd-db", ["debpulse-wanna-build", "--once"], "batch = 1000", "batch = 1000.5",
     "[wannabuild] batch must be int, not 1000.5"),
    ("buildd-db", ["debpulse-wanna-build", "--once"], "architectures = [", "architecture = [",
     "[wannabuild] unknown key 'architecture'"),
    ("buildd-db", ["debpulse-wanna-build", "--once"], "metrics_port = 9952", "metrics_port = 99520",
     "[wannabuild] metrics_port must be a port number (0-65535), not 99520"),
    ("bugs", ["debpulse-debbugs", "maildir"], "soap_timeout = 30", 'soap_timeout = "30"',
     "[debbugs] soap_timeout must be int or float, not '30'"),
    ("bugs", ["debpulse-debbugs", "poll", "--once"], "\n[debbugs]\n", "\n[debugs]\n",
     "unknown table [debugs] (did you mean [debbugs]?)"),
    ("bugs", ["debpulse-debbugs", "--no-soap", "maildir"], "metrics_port = 9953", "metrics_port = true",
     "[debbugs] metrics_port must be int, not True"),
    ("git-host", ["debpulse-git", "webhook"], "max_body = 2097152", 'max_body = "2M"',
     "[git] max_body must be int, not '2M'"),
    ("git-host", ["debpulse-git", "webhook"], "\n[git]\n", "\n[gti]\n",
     "unknown table [gti] (did you mean [git]?)"),
]


@pytest.fixture(scope="module")
def roles(gpg_key: GpgKey) -> Iterator[dict[str, Role]]:
    made: dict[str, Role] = {}

    def get(name: str) -> Role:
        if name not in made:
            made[name] = install_role(name, gpg_key)
        return made[name]

    yield get  # type: ignore[misc]
    for r in made.values():
        drop_role(r)


@pytest.mark.parametrize(("role_name", "argv", "good", "bad", "says"), MISTAKES,
                         ids=[f"{m[0]}:{m[1][0]}:{m[4].split()[0]}-{m[3].split()[0].strip('[]')}" for m in MISTAKES])
def test_mistake_is_one_line_naming_file_and_key(roles, role_name: str, argv: list[str], good: str,  # type: ignore[no-untyped-def]
                                                 bad: str, says: str) -> None:
    role: Role = roles(role_name)
    text = role.config.read_text()
    assert text.count(good) == 1, f"the example no longer has {good!r}"
    wrong = role.etc / f"mistake-{free_port()}.toml"
    wrong.write_text(text.replace(good, bad))
    proc = subprocess.run([*command(argv[0]), *argv[1:], "--config", str(wrong)] if argv[0] != "debpulse-debbugs"
                          else [*command(argv[0]), "--config", str(wrong), *argv[1:]],
                          env=role.env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0] == f"{argv[0]}: {wrong}: {says}"


def test_the_unmistaken_example_is_accepted_by_the_same_commands(roles) -> None:  # type: ignore[no-untyped-def]
    """The same command on the example itself gets past the configuration."""
    role: Role = roles("ftp-master")
    proc = subprocess.run([*command("debpulse-dak"), "run", "--once", "--config", str(role.config)],
                          env=role.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
