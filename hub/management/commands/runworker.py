"""``manage.py runworker CHANNEL [CHANNEL ...]``: run background consumers (see hub.worker)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from hub import DEFAULT_CHANNEL_LAYER
from hub.layers import get_channel_layer
from hub.routing import get_default_application
from hub.worker import Worker

logger = logging.getLogger("hub.worker")


class Command(BaseCommand):
    help = "Run the ASGI application for messages sent to the named channels."
    leave_locale_alone = True
    worker_class = Worker

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--layer", default=DEFAULT_CHANNEL_LAYER, help="channel layer alias (default: default)"
        )
        parser.add_argument("channels", nargs="+", help="channels to listen on")

    def handle(self, *args: Any, **options: Any) -> None:
        layer = get_channel_layer(options["layer"])
        if layer is None:
            raise CommandError(f"No channel layer {options['layer']!r} in CHANNEL_LAYERS")
        logger.info("Running worker for channels %s", ", ".join(options["channels"]))
        self.worker_class(
            application=get_default_application(),
            channels=options["channels"],
            channel_layer=layer,
        ).run()  # type: ignore[no-untyped-call]
