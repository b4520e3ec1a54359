"""Real fedmsg 1.1.7 (from PyPI, in its own virtual environment) reads
debpulse: `fedmsg-tail --validate` accepts fedmsg-scope messages and
refuses envelope-scope ones, which it cannot check."""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import pytest
from testbus import ROOT, free_port

from debpulse.emitters.config import Config
from debpulse.emitters.event import Event
from debpulse.emitters.options import BusOptions
from debpulse.emitters.publisher import Publisher

FEDMSG_VENV = Path(os.environ.get("DEBPULSE_FEDMSG_VENV", ROOT / ".venv-fedmsg"))


@pytest.fixture
def fedmsg_tail():
    exe = FEDMSG_VENV / "bin" / "fedmsg-tail"
    if not exe.exists():
        pytest.skip(f"fedmsg 1.1.7 not installed in {FEDMSG_VENV} (deploy/setup creates it)")
    return exe


def publisher(tmp_path, key, scope, port):
    args = argparse.Namespace(publish=f"tcp://127.0.0.1:{port}", signing_key=str(key.secret_file),
                              state_dir=str(tmp_path / scope), environment="dev")
    opts = BusOptions.from_args(args, Config(), name=f"interop-{scope}")
    opts.scope = scope
    opts.replay = f"tcp://127.0.0.1:{free_port()}"
    return Publisher(opts)


def test_fedmsg_tail_validates_fedmsg_scope_messages(tmp_path, gpg_key, fedmsg_tail):
    port = free_port()
    home = tmp_path / "fedmsg-gnupg"
    home.mkdir(mode=0o700)
    subprocess.run(["gpg", "--batch", "--import", str(gpg_key.public_file)], env={**os.environ, "GNUPGHOME": str(home)},
                   check=True, capture_output=True)
    cfg = tmp_path / "fedmsg.d.py"
    cfg.write_text(f"""config = dict(
    topic_prefix="org.debian", environment="dev",
    endpoints={{"debian.interop": ["tcp://127.0.0.1:{port}"]}},
    relay_inbound=["tcp://127.0.0.1:{free_port()}"],
    sign_messages=False, validate_signatures=True,
    crypto_backend="gpg", crypto_validate_backends=["gpg"], gpg_home={str(home)!r},
    zmq_reconnect_ivl=100, zmq_reconnect_ivl_max=1000,
)
""")
    fed = publisher(tmp_path, gpg_key, "fedmsg", port)
    out_file, err_file = tmp_path / "tail.out", tmp_path / "tail.err"
    tail = subprocess.Popen([str(fedmsg_tail), "--config-filename", str(cfg), "--validate"],
                            stdout=out_file.open("w"), stderr=err_file.open("w"), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        n = 0
        out = ""
        while time.monotonic() < deadline and "fedmsg-scope" not in out:
            n += 1
            fed.publish_events([Event("logger.log", {"log": f"fedmsg-scope {n}"})])
            time.sleep(0.5)
            out = out_file.read_text()
        assert "fedmsg-scope" in out, err_file.read_text()[-3000:]
        # An envelope-scope message is not something fedmsg can check: refused.
        fed.close()
        env_pub = publisher(tmp_path, gpg_key, "envelope", port)
        for i in range(4):
            env_pub.publish_events([Event("logger.log", {"log": f"envelope-scope {i}"})])
            time.sleep(0.3)
        time.sleep(1)
        out = out_file.read_text()
        env_pub.close()
    finally:
        tail.terminate()
        tail.wait(10)
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)},
                       capture_output=True)
    printed = [line for line in out.splitlines() if "scope" in line]
    assert printed and all("fedmsg-scope" in line for line in printed)
    assert "envelope-scope" not in out
    # ... because fedmsg received them and refused them, not because they were lost.
    assert "invalid message received" in err_file.read_text()
