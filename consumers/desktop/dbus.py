"""org.freedesktop.Notifications on the session bus, through jeepney (a
pure-Python D-Bus client)."""

from __future__ import annotations

import logging
from typing import Any

from .collapse import Notice

log = logging.getLogger("debpulse.desktop")

PATH = "/org/freedesktop/Notifications"
NAME = "org.freedesktop.Notifications"


class NotifyError(Exception):
    """No notification server, or it refused."""


class Notifications:
    def __init__(self, expire_ms: int = -1, timeout: float = 10.0) -> None:
        try:
            import jeepney  # noqa: F401
        except ImportError:
            from debpulse.emitters.errors import ConfigError

            raise ConfigError("jeepney is not installed (pip install 'debpulse[desktop]')") from None
        self.expire_ms, self.timeout = expire_ms, timeout
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            from jeepney.io.blocking import open_dbus_connection

            try:
                self._conn = open_dbus_connection(bus="SESSION")
            except (OSError, KeyError, ValueError) as exc:
                raise NotifyError(f"no session bus: {exc}") from None
        return self._conn

    def show(self, n: Notice) -> int:
        """Show `n`; returns the server's id."""
        from jeepney import DBusAddress, DBusErrorResponse, new_method_call
        from jeepney.wrappers import unwrap_msg

        address = DBusAddress(PATH, bus_name=NAME, interface=NAME)
        hints = {"category": ("s", n.category), "desktop-entry": ("s", "debpulse")}
        call = new_method_call(address, "Notify", "susssasa{sv}i",
                               ("debpulse", 0, "dialog-information", n.summary, n.body, [], hints, self.expire_ms))
        try:
            body = unwrap_msg(self._connection().send_and_get_reply(call, timeout=self.timeout))
        except DBusErrorResponse as exc:
            raise NotifyError(f"{exc.name}: {' '.join(map(str, exc.data))}") from None
        except (OSError, TimeoutError) as exc:
            self.close()
            raise NotifyError(f"session bus: {exc}") from None
        if not body or not isinstance(body[0], int):
            raise NotifyError(f"unexpected answer {body!r}")
        return body[0]

    def server(self) -> str:
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import unwrap_msg

        call = new_method_call(DBusAddress(PATH, bus_name=NAME, interface=NAME), "GetServerInformation")
        body = unwrap_msg(self._connection().send_and_get_reply(call, timeout=self.timeout))
        return f"{body[0]} {body[2]}"

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None
