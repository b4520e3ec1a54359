"""The pictures in the README and the manual: the live page, the pulse, a
week, a package, and the live page on a phone, from a generated history.

    python tests/web/screenshots.py [OUTPUT_DIR]     # default docs/images

A real PostgreSQL 15, the history written by the archive's Store (three
weeks up to now, the last hour busier), debpulse-web as a process, and
headless Chromium.  Run it after changing how the pages look.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from pg import Postgres  # noqa: E402
from testbus import free_port  # noqa: E402

from debpulse.consumers.web.weeks import Week  # noqa: E402
from web.conftest import chrome  # noqa: E402
from web.history import History, monday_of, recent, store, weeks_of_history  # noqa: E402

SHOTS = [  # (file, path, width, height, phone)
    ("live.png", "/", 1200, 1250, False),
    ("pulse.png", "/pulse", 1200, 930, False),
    ("week.png", "/week/{last_week}", 1200, 1480, False),
    ("package.png", "/package/hello", 1200, 1250, False),
    ("live-phone.png", "/?category=dak", 390, 844, True),
]


def serve(dsn: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    notify = log.with_suffix(".notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(60)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "debpulse.consumers.web.cli", "--dsn", dsn, "--listen",
                                 f"127.0.0.1:{port}"], stdout=out, stderr=out,
                                env={**os.environ, "NOTIFY_SOCKET": str(notify)})
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
    finally:
        sock.close()
    return proc


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="shots-"))
    db = Postgres(prefix="shots-")
    db.start()
    web = None
    try:
        dsn = db.create_database("archive")
        now = datetime.now(UTC)
        h = History(seed=2024)
        events = weeks_of_history(h, monday_of(now) - timedelta(weeks=2), 3, per_day=3000)
        events = [e for e in events if e["timestamp"] < (now - timedelta(hours=1)).timestamp()]
        events += recent(h, now, per_minute=5.0)
        print(f"{store(dsn, events)} messages stored")
        port = free_port()
        web = serve(dsn, port, tmp / "web.log")
        last_week = Week.of(now).shift(-1).name
        for name, path, width, height, phone in SHOTS:
            driver = chrome(width, height)
            try:
                if phone:
                    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                           {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True})
                driver.get(f"http://127.0.0.1:{port}{path.format(last_week=last_week)}")
                if path.startswith("/") and "week" not in path and "package" not in path:
                    from selenium.webdriver.common.by import By
                    from selenium.webdriver.support.ui import WebDriverWait

                    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "status").text == "live")
                driver.save_screenshot(str(out / name))
                print(f"{out / name}")
            finally:
                driver.quit()
                shutil.rmtree(driver.profile_dir, ignore_errors=True)
    finally:
        if web is not None:
            web.send_signal(signal.SIGTERM)
            web.wait(20)
        db.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
