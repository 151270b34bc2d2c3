"""The demo in a real browser: the live dashboard over WebSocket, devices, and the admin."""

from __future__ import annotations

import queue
import smtplib
import socket
from email.message import EmailMessage
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

#: Seconds the browser may take for a page or a message round trip.
WAIT = 20


def wait(browser):
    return WebDriverWait(browser, WAIT)


def wait_for_text(browser, element_id, text):
    located = (By.ID, element_id)
    wait(browser).until(expected_conditions.text_to_be_present_in_element(located, text))


def open_dashboard(browser, demo):
    """Load the dashboard and wait until its WebSocket is open."""
    browser.get(demo.urls[0] + "/")
    wait_for_text(browser, "status", "live")


def send_command(browser, device, command):
    browser.find_element(By.ID, "command-device").send_keys(device)
    browser.find_element(By.ID, "command-text").send_keys(command)
    browser.find_element(By.CSS_SELECTOR, "#command button").click()


class TestDashboard:
    def test_the_page_connects_its_websocket_and_shows_a_sent_message(self, demo, browser):
        open_dashboard(browser, demo)
        browser.find_element(By.ID, "say-text").send_keys("hello from chromium")
        browser.find_element(By.CSS_SELECTOR, "#say button").click()
        wait_for_text(browser, "feed", "visitor: hello from chromium")

    def test_the_simulated_sensor_readings_appear_live(self, demo, browser):
        open_dashboard(browser, demo)
        wait_for_text(browser, "feed", "sensor-1 temperature = ")

    def test_a_command_reaches_the_mqtt_sensor_and_its_ack_comes_back(self, demo, browser):
        open_dashboard(browser, demo)
        send_command(browser, "sensor-1", "calibrate")
        wait_for_text(browser, "feed", "command 'calibrate' sent to sensor-1")
        wait_for_text(browser, "feed", "sensor-1 acknowledged: done: calibrate")

    def test_the_simulated_tcp_tracker_lines_appear_and_commands_are_acknowledged(
        self, demo, browser
    ):
        open_dashboard(browser, demo)
        wait_for_text(browser, "feed", "tracker-1 says: $POS,tracker-1,")
        send_command(browser, "tracker-1", "blink")
        wait_for_text(browser, "feed", "tracker-1 acknowledged: blink")


def log_in(browser, demo):
    """Log in to the admin as the demo's operator (once per browser session)."""
    browser.get(demo.urls[0] + "/admin/")
    if "Log in" in browser.title:
        browser.find_element(By.NAME, "username").send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys("admin")
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(browser).until(expected_conditions.title_contains("Site administration"))

    def test_an_email_sent_with_smtplib_appears_with_its_subject_and_attachment(
        self, demo, browser
    ):
        open_dashboard(browser, demo)
        [smtp_url] = [url for url in demo.urls if url.startswith("smtp://")]
        host, port = urlsplit(smtp_url).hostname, urlsplit(smtp_url).port
        mail = EmailMessage()
        mail["From"] = "operator@example.org"
        mail["To"] = "demo@example.com"
        mail["Subject"] = "Pump 3 pressure report"
        mail.set_content("See the attached readings.")
        mail.add_attachment(b"t,p\n1,2.5\n", maintype="text", subtype="csv", filename="pump3.csv")
        with smtplib.SMTP(host, port, timeout=10) as client:
            client.send_message(mail)
        wait_for_text(
            browser, "feed", "mail from operator@example.org: Pump 3 pressure report (pump3.csv)"
        )


class TestAdmin:
    def test_an_operator_logs_in_and_edits_a_device(self, demo, browser):
        log_in(browser, demo)
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
        log_in(browser, demo)
        browser.find_element(By.LINK_TEXT, "Hub status").click()
        wait_for_text(browser, "hub-live", "live")
        wait_for_text(browser, "hub-listeners", "mqtt://")
        wait_for_text(browser, "hub-connections", "SensorConsumer")

    def test_the_admin_action_sends_a_command_that_the_sensor_acknowledges(self, demo, browser):
        log_in(browser, demo)
        browser.get(demo.urls[0] + "/admin/dashboard/device/")
        row = "//tr[.//a[text()='sensor-1']]//input[contains(@class, 'action-select')]"
        browser.find_element(By.XPATH, row).click()
        browser.find_element(By.CSS_SELECTOR, "select[name=action] option[value=send_ping]").click()
        browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
        wait(browser).until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, ".messagelist"), "Sent 'ping' to 1 device(s)."
            )
        )
        browser.get(demo.urls[0] + "/admin/dashboard/devicemessage/")
        wait(browser).until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, "#result_list"), "done: ping"
            )
        )


class TestDevicesOpenedByTheTest:
    """Clients the test itself opens: a paho-mqtt sensor and a raw TCP tracker."""

    def test_a_reading_a_paho_client_publishes_appears_on_the_dashboard(self, demo, browser):
        open_dashboard(browser, demo)
        mqtt_url = urlsplit(next(u for u in demo.urls if u.startswith("mqtt://")))
        device = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher", protocol=mqtt.MQTTv5
        )
        device.username_pw_set("sensor-1", "sensor-1-secret")
        device.connect(mqtt_url.hostname, mqtt_url.port)
        device.loop_start()
        try:
            device.publish("sensors/sensor-1/pressure", "3.25", qos=1).wait_for_publish(WAIT)
            wait_for_text(browser, "feed", "sensor-1 pressure = 3.25")
        finally:
            device.loop_stop()
            device.disconnect()

    def test_a_device_may_publish_only_to_its_allowed_topics(self, demo):
        mqtt_url = urlsplit(next(u for u in demo.urls if u.startswith("mqtt://")))
        answers: queue.Queue[int] = queue.Queue()
        device = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-acl", protocol=mqtt.MQTTv5
        )
        device.username_pw_set("sensor-1", "sensor-1-secret")
        device.on_publish = lambda client, userdata, mid, reason, properties: answers.put(
            reason.value
        )
        device.connect(mqtt_url.hostname, mqtt_url.port)
        device.loop_start()
        try:
            device.publish("sensors/sensor-1/temperature", "20.5", qos=1)
            assert answers.get(timeout=WAIT) == 0x00
            device.publish("sensors/someone-else/temperature", "99", qos=1)
            assert answers.get(timeout=WAIT) == 0x87, "Not authorized"
        finally:
            device.loop_stop()
            device.disconnect()

    def test_a_line_sent_on_a_tcp_socket_appears_on_the_dashboard(self, demo, browser):
        open_dashboard(browser, demo)
        tcp_line = next(line for line in demo.output if "Be the tracker: nc " in line)
        tcp_host, tcp_port = tcp_line.split("nc ")[1].split(",")[0].split()
        with socket.create_connection((tcp_host, int(tcp_port)), timeout=WAIT) as tracker:
            tracker.sendall(b"tracker-1 tracker-1-secret\nBATTERY 87%\n")
            wait_for_text(browser, "feed", "tracker-1 says: BATTERY 87%")

    def test_admin_commands_reach_them_and_the_status_page_counts_them(self, demo, browser):
        mqtt_url = urlsplit(next(u for u in demo.urls if u.startswith("mqtt://")))
        tcp_line = next(line for line in demo.output if "Be the tracker: nc " in line)
        tcp_host, tcp_port = tcp_line.split("nc ")[1].split(",")[0].split()
        received: queue.Queue[str] = queue.Queue()
        sensor = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-sensor", protocol=mqtt.MQTTv5
        )
        sensor.username_pw_set("sensor-1", "sensor-1-secret")
        sensor.on_message = lambda client, userdata, message: received.put(message.payload.decode())
        sensor.connect(mqtt_url.hostname, mqtt_url.port)
        sensor.subscribe("commands/sensor-1", qos=1)
        sensor.loop_start()
        tracker = socket.create_connection((tcp_host, int(tcp_port)), timeout=WAIT)
        try:
            tracker.sendall(b"tracker-1 tracker-1-secret\n")
            log_in(browser, demo)
            browser.find_element(By.LINK_TEXT, "Hub status").click()
            wait_for_text(browser, "hub-connections", "test-sensor")
            browser.get(demo.urls[0] + "/admin/dashboard/device/")
            browser.find_element(By.ID, "action-toggle").click()
            browser.find_element(
                By.CSS_SELECTOR, "select[name=action] option[value=send_ping]"
            ).click()
            browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
            assert received.get(timeout=WAIT) == "ping"
            assert tracker.makefile("rb").readline() == b"CMD ping\n"
        finally:
            tracker.close()
            sensor.loop_stop()
            sensor.disconnect()
