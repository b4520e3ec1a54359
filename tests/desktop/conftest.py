"""Fixtures of the desktop tests: a real desktop session (session bus,
Xvfb, dunst) and debpulse-desktop as a real process in it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from irc.conftest import publish  # noqa: F401  (fixture)
from services import BusService

from .desktop_session import Session


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    try:
        s = Session(tmp_path / "session").start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield s
    s.stop()


class DesktopProcess(BusService):
    def __init__(self, bus, base: Path, session: Session, rules: Path, config: Path) -> None:  # type: ignore[no-untyped-def]
        super().__init__(bus, base, "desktop", "debpulse.consumers.desktop.cli",
                         ["--config", str(config), "--rules", str(rules)])
        self.env = {**self.env, **session.env}


@pytest.fixture
def desktop(bus, session: Session, tmp_path: Path) -> Iterator[Callable[..., DesktopProcess]]:
    started: list[DesktopProcess] = []

    def make(rules: Path, config_text: str = "[desktop]\nhold = 0.5\n") -> DesktopProcess:
        config = tmp_path / "desktop.toml"
        config.write_text(config_text)
        d = DesktopProcess(bus, tmp_path, session, rules, config)
        started.append(d)
        return d

    yield make
    for d in started:
        if d.proc is not None:
            d.stop()
