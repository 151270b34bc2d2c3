"""The demo in a real browser: the live dashboard over WebSocket, and the Django admin."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

#: Seconds the browser may take for a page or a message round trip.
WAIT = 20


def wait(browser):
    return WebDriverWait(browser, WAIT)


def open_dashboard(browser, demo):
    """Load the dashboard and wait until its WebSocket is open."""
    browser.get(demo.urls[0] + "/")
    status = (By.ID, "status")
    wait(browser).until(expected_conditions.text_to_be_present_in_element(status, "live"))


class TestDashboard:
    def test_the_page_connects_its_websocket_and_shows_a_sent_message(self, demo, browser):
        browser.get(demo.urls[0] + "/")
        wait(browser).until(
            expected_conditions.text_to_be_present_in_element((By.ID, "status"), "live")
        )
        box = browser.find_element(By.ID, "say-text")
        box.send_keys("hello from chromium")
        browser.find_element(By.CSS_SELECTOR, "#say button").click()
        wait(browser).until(
            expected_conditions.text_to_be_present_in_element(
                (By.ID, "feed"), "visitor: hello from chromium"
            )
        )

    def test_a_device_command_is_echoed_on_the_dashboard(self, demo, browser):
        browser.get(demo.urls[0] + "/")
        wait(browser).until(
            expected_conditions.text_to_be_present_in_element((By.ID, "status"), "live")
        )
        browser.find_element(By.ID, "command-device").send_keys("tracker-1")
        browser.find_element(By.ID, "command-text").send_keys("ping")
        browser.find_element(By.CSS_SELECTOR, "#command button").click()
        wait(browser).until(
            expected_conditions.text_to_be_present_in_element(
                (By.ID, "feed"), "command 'ping' sent to tracker-1"
            )
        )


class TestAdmin:
    def test_an_operator_logs_in_and_edits_a_device(self, demo, browser):
        browser.get(demo.urls[0] + "/admin/login/")
        browser.find_element(By.NAME, "username").send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys("admin")
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait(browser).until(expected_conditions.title_contains("Site administration"))
        browser.get(demo.urls[0] + "/admin/dashboard/device/")
        browser.find_element(By.LINK_TEXT, "sensor-1").click()
        topics = browser.find_element(By.NAME, "allowed_topics")
        topics.clear()
        topics.send_keys("sensors/sensor-1/#\ncommands/sensor-1")
        browser.find_element(By.NAME, "_save").click()
        wait(browser).until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, ".messagelist"), "was changed successfully"
            )
        )

    def test_the_hub_status_page_is_live_and_lists_connections(self, demo, browser):
        browser.get(demo.urls[0] + "/admin/")
        browser.find_element(By.LINK_TEXT, "Hub status").click()
        live = (By.ID, "hub-live")
        wait(browser).until(expected_conditions.text_to_be_present_in_element(live, "live"))
        listeners = (By.ID, "hub-listeners")
        wait(browser).until(expected_conditions.text_to_be_present_in_element(listeners, "http"))
        connections = (By.ID, "hub-connections")
        wait(browser).until(
            expected_conditions.text_to_be_present_in_element(connections, "StatusConsumer")
        )

    def test_the_admin_action_sends_a_command_to_devices(self, demo, browser):
        browser.get(demo.urls[0] + "/admin/dashboard/device/")
        browser.find_element(By.CSS_SELECTOR, "input.action-select[value]").click()
        browser.find_element(By.CSS_SELECTOR, "select[name=action] option[value=send_ping]").click()
        browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
        wait(browser).until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, ".messagelist"), "Sent 'ping' to 1 device(s)."
            )
        )
