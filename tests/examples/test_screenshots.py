"""The documentation's screenshots, taken from the real demo in headless Chromium.

Each test drives the demo until the page shows what the picture is meant to
show (live events from every protocol, a status page with traffic), then
saves it. With ``HUB_UPDATE_SCREENSHOTS=1`` the pictures go to ``docs/images/``,
where docs/index.md and the README show them::

    HUB_UPDATE_SCREENSHOTS=1 ./dev.sh test tests/examples/test_screenshots.py

Otherwise they go to a temporary directory, so an ordinary test run checks the
pages without rewriting files under version control.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.examples.test_demo_browser import log_in, open_dashboard, send_command, wait_for_text

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots are written (see the module docstring)."""
    if os.environ.get("HUB_UPDATE_SCREENSHOTS"):
        return DOCS_IMAGES
    return tmp_path_factory.mktemp("screenshots")


#: Width of the screenshots in CSS pixels: a laptop screen, readable when scaled down.
WIDTH = 1280

#: Seconds the page may take to show what the screenshot needs.
WAIT = 30

#: Snapshots (one a second) the status page must have drawn before its chart shows a line.
CHART_POINTS = 10

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def save(browser, directory: Path, name: str) -> Path:
    """Save the whole page, as tall as its content, ``WIDTH`` pixels wide."""
    directory.mkdir(exist_ok=True)
    path = directory / name
    height = browser.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        assert browser.save_screenshot(str(path)), f"Chromium could not write {path}"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


class SnapshotsCounted:
    """A wait condition: true once an element's text has changed ``count`` times."""

    def __init__(self, element_id: str, count: int) -> None:
        self.element_id = element_id
        self.count = count
        self.seen: list[str] = []

    def __call__(self, browser) -> bool:
        text = browser.find_element(By.ID, self.element_id).text
        if not self.seen or self.seen[-1] != text:
            self.seen.append(text)
        return len(self.seen) > self.count


class TestScreenshotsForTheDocs:
    def test_the_dashboard_is_saved_with_live_events_from_every_protocol(
        self, demo, browser, images
    ):
        open_dashboard(browser, demo)
        # Once a reading is stored, a reload lists it under "Recent readings" too.
        wait_for_text(browser, "feed", "sensor-1 temperature = ")
        open_dashboard(browser, demo)
        browser.find_element(By.ID, "say-text").send_keys("hello from the docs")
        browser.find_element(By.CSS_SELECTOR, "#say button").click()
        wait_for_text(browser, "feed", "visitor: hello from the docs")
        send_command(browser, "sensor-1", "calibrate")
        wait_for_text(browser, "feed", "sensor-1 acknowledged: done: calibrate")
        wait_for_text(browser, "feed", "tracker-1 says: $POS,tracker-1,")
        path = save(browser, images, "dashboard.png")
        assert png_size(path)[0] == WIDTH

    def test_the_hub_status_page_is_saved_with_connections_and_traffic(self, demo, browser, images):
        log_in(browser, demo)
        browser.find_element(By.LINK_TEXT, "Hub status").click()
        wait_for_text(browser, "hub-live", "live")
        wait_for_text(browser, "hub-connections", "SensorConsumer")
        wait_for_text(browser, "hub-connections", "TrackerConsumer")
        WebDriverWait(browser, WAIT).until(SnapshotsCounted("hub-traffic", CHART_POINTS))
        WebDriverWait(browser, WAIT).until(
            expected_conditions.text_to_be_present_in_element((By.ID, "hub-traffic"), "mqtt")
        )
        path = save(browser, images, "status.png")
        assert png_size(path)[0] == WIDTH
