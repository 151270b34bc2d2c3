"""A reading published by a device reaches a browser: two protocols, one channel layer."""

from hub.testing import WebsocketCommunicator
from hub.testing.mqtt import MqttCommunicator

from thermostat import application


class TestThermostat:
    async def test_a_published_reading_reaches_every_dashboard(self):
        browser = WebsocketCommunicator(application, "/ws/dashboard/")
        assert (await browser.connect())[0]
        device = MqttCommunicator(application, "kitchen-thermometer")
        assert await device.connect() == (True, 0)
        await device.publish("sensors/kitchen/temperature", "21.5", qos=1)
        assert await browser.receive_json_from() == {"device": "kitchen", "celsius": 21.5}
        await device.disconnect()
        await browser.disconnect()
