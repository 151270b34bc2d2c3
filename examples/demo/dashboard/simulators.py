"""Simulated devices the demo starts beside its listeners.

A sensor (paho-mqtt, as a real device would use) publishes a temperature every
two seconds and answers each command on ``commands/<name>`` with an
acknowledgement on ``sensors/<name>/ack``. A tracker (plain asyncio streams)
logs in with its first line, reports a position every two seconds and answers
``CMD <command>`` lines with ``ACK <command>``.
"""

import asyncio
import contextlib
import logging
import random
import threading

import paho.mqtt.client as mqtt

logger = logging.getLogger("dashboard.simulators")

#: Seconds between two readings of a simulated sensor.
READING_INTERVAL = 2.0


def run_sensor(host: str, port: int, name: str, token: str, stop: threading.Event) -> None:
    """Connect as sensor ``name`` and publish readings until ``stop`` is set."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{name}", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(name, token)

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe(f"commands/{name}", qos=1)

    def on_message(client, userdata, message):
        command = message.payload.decode(errors="replace")
        client.publish(f"sensors/{name}/ack", f"done: {command}", qos=1)

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, port)
    client.loop_start()
    temperature = 21.0
    try:
        while not stop.wait(READING_INTERVAL):
            temperature += random.uniform(-0.4, 0.4)
            client.publish(f"sensors/{name}/temperature", f"{temperature:.2f}", qos=1)
    finally:
        client.disconnect()
        client.loop_stop()


async def tracker(host: str, port: int, name: str, token: str, stop: threading.Event) -> None:
    """Connect as tracker ``name``, report positions and answer commands until ``stop``."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"{name} {token}\n".encode())

    async def answer_commands() -> None:
        while line := await reader.readline():
            if line.startswith(b"CMD "):
                writer.write(b"ACK " + line[4:])

    answers = asyncio.ensure_future(answer_commands())
    latitude, longitude = 52.37, 4.89
    try:
        while not stop.is_set() and not answers.done():
            latitude += random.uniform(-1e-3, 1e-3)
            longitude += random.uniform(-1e-3, 1e-3)
            writer.write(f"$POS,{name},{latitude:.5f},{longitude:.5f}\n".encode())
            await writer.drain()
            await asyncio.sleep(READING_INTERVAL)
    finally:
        answers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await answers
        writer.close()


def run_tracker(host: str, port: int, name: str, token: str, stop: threading.Event) -> None:
    asyncio.run(tracker(host, port, name, token, stop))


def start_simulators(
    mqtt_address: tuple[str, int] | None, tcp_address: tuple[str, int] | None = None
) -> threading.Event:
    """Start every simulated device in a daemon thread; set the event to stop them."""
    stop = threading.Event()
    if tcp_address is not None:
        host, port = tcp_address
        threading.Thread(
            target=run_tracker,
            args=(host, port, "tracker-1", "tracker-1-secret", stop),
            name="tracker-1",
            daemon=True,
        ).start()
    if mqtt_address is not None:
        host, port = mqtt_address
        threading.Thread(
            target=run_sensor,
            args=(host, port, "sensor-1", "sensor-1-secret", stop),
            name="sensor-1",
            daemon=True,
        ).start()
    return stop
