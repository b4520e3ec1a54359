"""debpulse-wanna-build's command line: install-trigger, usage and configuration errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from debpulse.adapters.wannabuild.cli import main

from .wannabuild_cluster import WannaBuildCluster


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def triggers(wb: WannaBuildCluster) -> list[str]:
    with wb.connect() as c:
        rows = c.execute("SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'debpulse_notify'"
                         " ORDER BY 1").fetchall()
    return [r[0].decode() for r in rows]  # an SQL_ASCII database returns bytes


def test_install_trigger_prints_installs_and_removes(wb: WannaBuildCluster, capsys) -> None:
    code, out, _ = run(["install-trigger"], capsys)
    assert code == 0
    assert "pg_notify('debpulse_wannabuild', NEW.architecture)" in out
    assert "AFTER INSERT ON public.transactions" in out and "AFTER INSERT ON public.pkg_history" in out
    assert triggers(wb) == []  # printing changes nothing

    assert run(["install-trigger", "--install", "--dsn", wb.dsn(user="postgres")], capsys)[0] == 0
    assert triggers(wb) == ["pkg_history", "transactions"]
    assert run(["install-trigger", "--install", "--dsn", wb.dsn(user="postgres")], capsys)[0] == 0  # idempotent
    assert run(["install-trigger", "--uninstall", "--install", "--dsn", wb.dsn(user="postgres")], capsys)[0] == 0
    assert triggers(wb) == []


def test_install_trigger_as_the_guest_is_one_line(wb: WannaBuildCluster, capsys) -> None:
    code, _, err = run(["install-trigger", "--install", "--dsn", wb.dsn()], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "permission denied" in err


@pytest.mark.parametrize("argv, message", [
    (["--dsn", "host=127.0.0.1"], "no architecture to follow"),
    (["--arch", "amd64", "--batch", "0"], "batch must be positive"),
    (["--arch", "amd64", "--bogus"], "unrecognized arguments: --bogus"),
    (["install-trigger", "--channel", "Bad-Name"], "must be a lower-case SQL identifier"),
    (["--arch", "amd64", "--start", "yesterday"], "start must be 'now', 'beginning' or an ISO timestamp"),
])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], message: str, capsys, tmp_path: Path,
                                              monkeypatch) -> None:
    monkeypatch.setenv("DEBPULSE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DEBPULSE_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("DEBPULSE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err


def test_configuration_errors_name_the_key_and_the_file(tmp_path: Path, capsys, monkeypatch) -> None:
    config = tmp_path / "debpulse.toml"
    config.write_text('[wannabuild]\narchitectures = ["amd64"]\nlookbak = 60\n')
    monkeypatch.setenv("DEBPULSE_STATE_DIR", str(tmp_path))
    code, _, err = run(["--config", str(config)], capsys)
    assert code == 2 and f"{config}: [wannabuild] unknown key 'lookbak'" in err
    config.write_text('[wannabuild]\narchitectures = "amd64"\n')
    code, _, err = run(["--config", str(config)], capsys)
    assert code == 2 and "[wannabuild] architectures must be" in err


def test_help_has_an_example() -> None:
    out = subprocess.run(["debpulse-wanna-build", "--help"], capture_output=True, text=True, check=True).stdout
    assert "examples:" in out and "--arch amd64" in out and "install-trigger" in out


def test_once_without_a_database_fails_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    monkeypatch.setenv("DEBPULSE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DEBPULSE_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("DEBPULSE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    code, _, err = run(["--dsn", f"host=127.0.0.1 port={port} dbname=wanna-build user=guest", "--arch", "amd64",
                        "--once"], capsys)
    assert code == 1
    assert err.count("\n") == 1 and "wanna-build unavailable" in err, err


def test_bad_connection_string_is_exit_2_without_the_password(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DEBPULSE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DEBPULSE_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("DEBPULSE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    code, _, err = run(["--dsn", "host=127.0.0.1 password=s3cret bogus=1", "--arch", "amd64", "--once"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert 'invalid connection option "bogus"' in err and "s3cret" not in err
