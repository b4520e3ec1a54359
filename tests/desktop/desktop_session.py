"""A desktop session for the tests: a session dbus-daemon with its own
configuration and address, Xvfb, and dunst (a real notification server)
printing every notification it gets."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

BUS_CONF = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
_BLOCK = re.compile(r"\tsummary: '(?P<summary>.*?)'\n\tbody: '(?P<body>.*?)'\n\ticon: ", re.S)


class Session:
    def __init__(self, base: Path) -> None:
        for tool in ("dbus-daemon", "Xvfb", "dunst"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed (deploy/packages.txt)")
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dunst_out = base / "dunst.out"
        self.env: dict[str, str] = {}

    def start(self) -> Session:
        conf = self.base / "session.conf"
        conf.write_text(BUS_CONF.format(socket=self.base / "bus"))
        bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(bus)
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()  # printed once it listens
        if not address:
            raise RuntimeError("dbus-daemon did not start")
        read, write = os.pipe()
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0",
                                 "640x480x24"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        os.close(write)
        self.procs.append(xvfb)
        with os.fdopen(read) as fh:
            display = fh.readline().strip()  # written once the server is ready
        if not display:
            raise RuntimeError("Xvfb did not start")
        self.env = {"DBUS_SESSION_BUS_ADDRESS": address, "DISPLAY": f":{display}",
                    "XDG_CONFIG_HOME": str(self.base / "config")}
        with open(self.dunst_out, "wb") as out:
            self.procs.append(subprocess.Popen(["dunst", "-print"], stdout=out, stderr=subprocess.DEVNULL,
                                               env={**os.environ, **self.env}))
        self._wait_for_server()
        return self

    def _wait_for_server(self) -> None:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection

        name = "org.freedesktop.Notifications"
        deadline = time.monotonic() + 20
        with open_dbus_connection(bus=self.env["DBUS_SESSION_BUS_ADDRESS"]) as conn:
            while time.monotonic() < deadline:
                call = new_method_call(DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                                                   interface="org.freedesktop.DBus"), "NameHasOwner", "s", (name,))
                if conn.send_and_get_reply(call, timeout=5).body[0]:
                    return
                time.sleep(0.02)
        raise RuntimeError("dunst did not take org.freedesktop.Notifications")

    def notifications(self) -> list[tuple[str, str]]:
        """(summary, body) of every notification dunst got, in order."""
        text = self.dunst_out.read_text(errors="replace") if self.dunst_out.exists() else ""
        return [(m["summary"], m["body"]) for m in _BLOCK.finditer(text)]

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
