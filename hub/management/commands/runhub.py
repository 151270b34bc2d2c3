"""``manage.py runhub``: hub's server for this project, like ``runserver`` in DEBUG.

With ``DEBUG = True`` it reloads on code changes and serves static files, as
``runserver`` does; otherwise it runs as in production. ``manage.py runhub
0.0.0.0:8000`` adds an HTTP listener as ``runserver``'s address does, and
every ``hub run`` option is accepted (see ``hub run --help``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand

from hub.cli import add_run_arguments, config_from_args, run


class Command(BaseCommand):
    help = "Serve this project on hub's listeners (HTTP/WebSocket and every other protocol)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "addrport", nargs="?", help="an HTTP listener as PORT or HOST:PORT, as for runserver"
        )
        add_run_arguments(parser, include_app=False, include_settings=False)
        parser.add_argument(
            "--noreload", action="store_true", help="do not reload on code changes in DEBUG"
        )
        parser.add_argument(
            "--nostatic", action="store_true", help="do not serve static files in DEBUG"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["addrport"]:
            options["http"] = [options["addrport"], *options["http"]]
        config = config_from_args(argparse.Namespace(**{**options, "settings": None, "app": None}))
        debug = bool(settings.DEBUG)
        config = dataclasses.replace(
            config,
            settings=os.environ.get("DJANGO_SETTINGS_MODULE"),
            reload=config.reload or (debug and not options["noreload"]),
            static=config.static
            or (
                debug
                and not options["nostatic"]
                and apps.is_installed("django.contrib.staticfiles")
            ),
        )
        run(config)
