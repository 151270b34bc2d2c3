"""The demo in a real process, and a headless Chromium to drive it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.hubprocess import HubProcess


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """``hub demo`` on free ports with a fresh database; ``.urls[0]`` is its HTTP URL."""
    data_dir = tmp_path_factory.mktemp("demo")
    process = HubProcess(
        "demo",
        "--http",
        "127.0.0.1:0",
        "--mqtt",
        "127.0.0.1:0",
        "--tcp",
        "127.0.0.1:0",
        "--smtp",
        "127.0.0.1:0",
        "--data-dir",
        str(data_dir),
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Debian's Chromium, headless, through chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        pytest.fail("chromium and chromium-driver are not installed: run ./dev.sh test")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
