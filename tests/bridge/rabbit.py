"""A real RabbitMQ node for tests: its own epmd, node name, ports, mnesia
and logs in a temporary directory, listening on 127.0.0.1 only, run as the
rabbitmq user and owned by PID (the packaged service, if any, is left alone).
"""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "debpulse"
PASSWORD = "bridge-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # A test run that is itself killed leaves no broker behind.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def server_script() -> str | None:
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"))
    return found[-1] if found else None


class Broker:
    def __init__(self) -> None:
        script = server_script()
        if script is None or shutil.which("epmd") is None:
            raise FileNotFoundError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        self.script = script
        self.base = Path(tempfile.mkdtemp(prefix="rmq-"))
        self.port = free_port()
        self.epmd_port = free_port()
        self.dist_port = free_port()
        self.node = f"debpulse{self.port}@localhost"
        self.url = f"amqp://{USER}:{PASSWORD}@127.0.0.1:{self.port}/%2F"
        self.log = self.base / "server.log"
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            f"default_user = {USER}\ndefault_pass = {PASSWORD}\n"
            "default_permissions.configure = .*\ndefault_permissions.read = .*\ndefault_permissions.write = .*\n"
            # A test disk is small; the default 50 MB free-space alarm would block publishers.
            "disk_free_limit.absolute = 1MB\n"
        )
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "env.conf").write_text("")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.base),
            "LANG": "C.UTF-8",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "server.pid"),
            # Makes the start script exec the VM, so the PID we hold is the broker's.
            "NOTIFY_SOCKET": str(self.base / "notify.sock"),
        }
        shutil.chown(self.base, "rabbitmq", "rabbitmq")
        for name in os.listdir(self.base):
            shutil.chown(self.base / name, "rabbitmq", "rabbitmq")
        self.epmd: subprocess.Popen | None = None
        self.proc: subprocess.Popen | None = None
        self._notify: socket.socket | None = None

    def start(self, timeout: float = 60.0) -> None:
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = subprocess.Popen(
                ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                env=self.env, user="rabbitmq", group="rabbitmq",
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        # RabbitMQ says READY=1 on this socket once it accepts clients.
        if self._notify is None:
            self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._notify.bind(self.env["NOTIFY_SOCKET"])
            os.chmod(self.env["NOTIFY_SOCKET"], 0o777)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.script], env=self.env, user="rabbitmq", group="rabbitmq", cwd=self.base,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        self._notify.settimeout(0.2)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.proc.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-3000:]}")
            try:
                if b"READY=1" in self._notify.recv(4096):
                    return
            except TimeoutError:
                pass
        self.kill()
        raise RuntimeError(f"rabbitmq-server not ready in {timeout} s: {self.log.read_text(errors='replace')[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the broker: SIGKILL is a crash, SIGTERM a clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            # The session we started holds the VM and its helpers (erl_child_setup, inet_gethost).
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        if self.epmd is not None and self.epmd.poll() is None:
            self.epmd.kill()
            self.epmd.wait(10)
        if self._notify is not None:
            self._notify.close()
        shutil.rmtree(self.base, ignore_errors=True)
