"""System checks: misconfiguration is reported at startup, not at the first connection.

Run by ``manage.py check``, ``runserver``, ``runhub`` and the test runner.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.utils.module_loading import import_string


@register(Tags.compatibility)
def check_channel_layers(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Every ``CHANNEL_LAYERS`` alias names an importable BACKEND and a dict CONFIG."""
    layers = getattr(settings, "CHANNEL_LAYERS", None)
    if layers is None:
        return []
    if not isinstance(layers, dict):
        return [
            Error(
                f"CHANNEL_LAYERS must be a dict of aliases, got {type(layers).__name__}",
                id="hub.E001",
            )
        ]
    errors = []
    for alias, config in layers.items():
        where = f"CHANNEL_LAYERS[{alias!r}]"
        if not isinstance(config, dict) or "BACKEND" not in config:
            errors.append(
                Error(
                    f"{where} needs a 'BACKEND' key",
                    hint="For example {'BACKEND': 'hub.layers.InMemoryChannelLayer'}",
                    id="hub.E002",
                )
            )
            continue
        try:
            import_string(config["BACKEND"])
        except ImportError as exc:
            errors.append(
                Error(
                    f"{where} BACKEND {config['BACKEND']!r} cannot be imported: {exc}",
                    id="hub.E003",
                )
            )
        for key in ("CONFIG", "TEST_CONFIG"):
            if key in config and not isinstance(config[key], dict):
                errors.append(
                    Error(
                        f"{where}[{key!r}] must be a dict of keyword arguments, "
                        f"got {type(config[key]).__name__}",
                        id="hub.E004",
                    )
                )
    return errors
