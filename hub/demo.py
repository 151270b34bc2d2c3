"""``hub demo``: the all-protocol demo in ``examples/demo``, on embedded defaults.

It migrates a SQLite database, creates the demo's admin user and devices,
and serves the demo project on every listener it needs, all on 127.0.0.1.
The demo lives in the source checkout (``examples/`` is not installed), so
``hub demo`` runs from a clone: ``./dev.sh demo``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub.cli import RunConfig, run
from hub.listeners import parse_listener

DEMO_DIR = Path(__file__).resolve().parent.parent / "examples" / "demo"

#: The demo's admin login, printed at startup. Demo only.
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http", default="127.0.0.1:8000", help="HTTP/WebSocket address")
    parser.add_argument("--mqtt", default="127.0.0.1:1883", help="MQTT address")
    parser.add_argument("--tcp", default="127.0.0.1:7000", help="raw TCP (line) device address")
    parser.add_argument("--smtp", default="127.0.0.1:2525", help="SMTP address")
    parser.add_argument("--data-dir", default=None, help="directory for the demo's SQLite database")
    parser.add_argument("--reload", action="store_true", help="restart on code changes")


def prepare() -> None:
    """Create the demo's tables, admin user and devices (idempotent)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    users: Any = get_user_model().objects
    if not users.filter(username=ADMIN_USERNAME).exists():
        users.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
    from dashboard.models import Device  # type: ignore[import-not-found]  # examples/demo

    Device.objects.get_or_create(
        name="sensor-1",
        defaults={
            "kind": Device.Kind.MQTT,
            "token": "sensor-1-secret",
            "allowed_topics": "sensors/sensor-1/#\ncommands/sensor-1",
        },
    )
    Device.objects.get_or_create(
        name="tracker-1", defaults={"kind": Device.Kind.TCP, "token": "tracker-1-secret"}
    )


def run_demo(args: argparse.Namespace) -> None:
    if not DEMO_DIR.is_dir():
        raise SystemExit(
            "hub demo runs from a source checkout (examples/demo was not found): "
            "clone the repository and run ./dev.sh demo"
        )
    sys.path.insert(0, str(DEMO_DIR))
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo.settings"
    if args.data_dir:
        Path(args.data_dir).mkdir(parents=True, exist_ok=True)
        os.environ["HUB_DEMO_DATA_DIR"] = str(Path(args.data_dir).resolve())
    import django

    django.setup()
    prepare()
    print(f"Demo admin: {ADMIN_USERNAME} / {ADMIN_PASSWORD}  (log in at /admin/)", flush=True)
    config = RunConfig(
        settings="demo.settings",
        static=True,
        reload=args.reload,
        listeners=[
            parse_listener("http", args.http),
            parse_listener("mqtt", args.mqtt),
            parse_listener("tcp", f"devices={args.tcp}?framing=line"),
            # The demo allows AUTH without TLS; a real deployment should not.
            parse_listener("smtp", f"{args.smtp}?auth_allow_plaintext=true"),
        ],
    )
    run(config, on_started=started)


def started(urls: list[str]) -> None:
    """Listeners are up: start the simulated devices and say what to try."""
    from dashboard.simulators import start_simulators  # type: ignore[import-not-found]
    from django.conf import settings

    # A named listener's URL starts with its name: "devices=tcp://127.0.0.1:7000".
    parsed = [
        urlsplit(url.partition("=")[2] if "=" in url.split("://")[0] else url) for url in urls
    ]
    addresses = {parts.scheme: parts for parts in parsed}
    mqtt, tcp, smtp = addresses.get("mqtt"), addresses.get("tcp"), addresses.get("smtp")
    tries = []
    mqtt_address = tcp_address = None
    if mqtt is not None:
        mqtt_address = (mqtt.hostname or "127.0.0.1", mqtt.port or 1883)
        tries.append(
            f"Publish as the sensor: mosquitto_pub -h {mqtt_address[0]} -p {mqtt_address[1]} "
            "-u sensor-1 -P sensor-1-secret -t sensors/sensor-1/humidity -m 40"
        )
    if tcp is not None:
        tcp_address = (tcp.hostname or "127.0.0.1", tcp.port or 7000)
        tries.append(
            f"Be the tracker: nc {tcp_address[0]} {tcp_address[1]}, then type "
            "'tracker-1 tracker-1-secret' and any line"
        )
    if smtp is not None:
        tries.append(
            f"Send a mail: swaks --server {smtp.hostname}:{smtp.port} --to demo@example.com "
            "--header 'Subject: Hello hub' --attach @README.md   (or Python's smtplib)"
        )
    start_simulators(mqtt_address, tcp_address)
    settings.HUB_DEMO_URLS = tries
    for line in tries:
        print(line, flush=True)
