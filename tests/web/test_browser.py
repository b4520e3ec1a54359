"""The live page in a real browser: Debian's chromium, headless, driven by
selenium, over the real relay, debpulse-archive and debpulse-web as
processes and a real PostgreSQL."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from archive.test_archive_bus import join, stored
from bridge.samples import dak_events, publish
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from debpulse.emitters.event import Event
from web.history import History, monday_of, store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def shown(driver) -> list[str]:  # type: ignore[no-untyped-def]
    """The summaries on the page, top to bottom."""
    for _ in range(5):
        try:
            return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#messages li .sum")]
        except StaleElementReferenceException:  # the list changed while read
            continue
    return []


def wait_until(driver, predicate, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    WebDriverWait(driver, timeout, poll_frequency=0.02).until(lambda d: predicate(d), message=what)


def status(driver) -> str:  # type: ignore[no-untyped-def]
    return driver.find_element(By.ID, "status").text


def log(text: str) -> Event:
    return Event("logger.log", {"log": text})


def test_a_published_message_appears_on_the_open_page(bus, archive_dsn, start_archive, start_web, browser,
                                                      record_property):
    archive = start_archive("--resume", "live")
    web = start_web()
    join(bus, archive_dsn, archive)
    browser.get(web.url + "/")
    wait_until(browser, lambda d: status(d) == "live", "the page's stream opened")
    assert browser.find_element(By.CSS_SELECTOR, "[data-chart=minute] svg")
    before = len(shown(browser))
    latencies = []
    for n in range(3):
        text = f"hello from the bus {n}"
        t0 = time.monotonic()
        publish(bus, [log(text)], name="browser")
        wait_until(browser, lambda d, text=text: any(text in s for s in shown(d)[:1]), f"{text!r} on the page")
        latencies.append(time.monotonic() - t0)
    record_property("bus_to_browser_s", [round(x, 3) for x in latencies])
    print("bus -> browser:", ", ".join(f"{x * 1000:.0f} ms" for x in latencies))
    texts = shown(browser)
    assert texts[:3] == [f"hello from the bus {n}" for n in (2, 1, 0)]  # newest first
    assert len(texts) == before + 3
    first = browser.find_element(By.CSS_SELECTOR, "#messages li")
    assert "logger" in first.find_element(By.CSS_SELECTOR, ".svc").text
    assert "✓" in first.find_element(By.CSS_SELECTOR, ".sig").text  # verified, and by whom
    assert bus.key.fingerprint.endswith(first.find_element(By.CSS_SELECTOR, ".sig").text[2:].strip())


def test_a_filter_in_the_url_shows_only_what_matches(bus, archive_dsn, start_archive, start_web, browser,
                                                     shared_fixtures):
    archive = start_archive("--resume", "filter")
    web = start_web()
    join(bus, archive_dsn, archive)
    browser.get(web.url + "/?package=xfsprogs")
    wait_until(browser, lambda d: status(d) == "live", "the filtered stream opened")
    assert browser.find_element(By.NAME, "package").get_attribute("value") == "xfsprogs"  # the form says so
    publish(bus, [log("not about xfsprogs")], name="filter")
    publish(bus, dak_events(shared_fixtures), name="filter")
    wait_until(browser, lambda d: any("xfsprogs 5.6.0-1" in s for s in shown(d)), "the xfsprogs upload")
    # The log message came first: had it matched, it would be there already.
    assert shown(browser) == [s for s in shown(browser) if "xfsprogs" in s] != []
    # The same filter on the API lists the same message.
    assert web.json("/raw?package=xfsprogs")["total"] == len(shown(browser)) == 1


def test_a_restarted_web_resumes_the_open_page_once(bus, archive_dsn, start_archive, start_web, browser):
    archive = start_archive("--resume", "restart")
    web = start_web()
    join(bus, archive_dsn, archive)
    browser.get(web.url + "/")
    wait_until(browser, lambda d: status(d) == "live", "the stream opened")
    publish(bus, [log("before the restart")], name="restart")
    wait_until(browser, lambda d: "before the restart" in shown(d), "the first message")

    web.service.stop(signal.SIGKILL)
    wait_until(browser, lambda d: status(d) != "live", "the page noticed")
    away = [f"while away {n}" for n in range(5)]
    publish(bus, [log(t) for t in away], name="restart")
    wait_until(browser, lambda d: set(away) <= set(stored(archive_dsn)), "stored meanwhile")
    web.service.start()

    wait_until(browser, lambda d: set(away) <= set(shown(d)), "what was published meanwhile", timeout=60)
    wait_until(browser, lambda d: status(d) == "live", "live again")
    publish(bus, [log("after the restart")], name="restart")
    wait_until(browser, lambda d: "after the restart" in shown(d), "a new message after the restart")
    texts = shown(browser)
    for text in [*away, "before the restart", "after the restart"]:
        assert texts.count(text) == 1, (text, texts)
    assert texts[:6] == ["after the restart", *reversed(away)]
    ids = [e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, "#messages li")]
    assert len(ids) == len(set(ids))


def test_pages_without_javascript_and_on_a_phone(pg_server, start_web):
    from web.conftest import chrome

    dsn = pg_server.create_database("phone")
    h = History(seed=3)
    now = datetime.now(UTC)
    monday = monday_of(now) - timedelta(weeks=1)
    store(dsn, [e for e in h.week(monday, 200) + h.week(monday + timedelta(weeks=1), 200)
                if e["timestamp"] <= now.timestamp()])
    web = start_web(dsn=dsn)
    driver = chrome(width=390, height=844)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
        for path in ("/", "/week", "/pulse", "/package/hello", "/user/jane"):
            driver.get(web.url + path)
            assert driver.find_element(By.TAG_NAME, "h1").text
            # Nothing wider than the phone: no sideways scrolling.
            width, viewport = driver.execute_cdp_cmd("Runtime.evaluate", {
                "expression": "[document.documentElement.scrollWidth, window.innerWidth]",
                "returnByValue": True})["result"]["value"]
            assert viewport == 390 and width <= viewport, (path, width)
        driver.get(web.url + "/")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#messages li")) == 50
        assert "scripts are off" in driver.find_element(By.ID, "status").text
        driver.get(web.url + "/week")
        assert driver.find_elements(By.CSS_SELECTOR, "table.week tr td.count")
    finally:
        driver.quit()
