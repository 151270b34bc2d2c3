"""hub's Django settings and their defaults, read in one place.

=====================  ==============================  ==========================================
Setting                Default                         Meaning
=====================  ==============================  ==========================================
CHANNEL_LAYERS         one in-memory layer             see :mod:`hub.layers.manager`
HUB_LISTENERS          ``["http://127.0.0.1:8000"]``   listeners when the command line names none
HUB_WORKERS            ``1``                           processes sharing each port
HUB_SHUTDOWN_GRACE     ``10.0``                        seconds in-flight work gets at shutdown
HUB_LIFESPAN           ``"auto"``                      run ASGI lifespan: auto, on or off
HUB_MQTT_ALLOW_...     ``False``                       HUB_MQTT_ALLOW_ANONYMOUS: MQTT clients
                                                       without credentials may connect
HUB_SMTP_CHECK_...     ``False``                       HUB_SMTP_CHECK_AUTHENTICATION: add SPF,
                                                       DKIM and DMARC verdicts to inbound mail
HUB_HANDLER_TIMING...  ``8``                           HUB_HANDLER_TIMING_EVERY: one consumer
                                                       handler run in N is timed for
                                                       ``hub_handler_seconds`` (1: every one)
=====================  ==============================  ==========================================

Loopback is the default address: a development server must not be reachable
from the network until someone says so.
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    "HUB_LISTENERS": ["http://127.0.0.1:8000"],
    "HUB_WORKERS": 1,
    "HUB_SHUTDOWN_GRACE": 10.0,
    "HUB_LIFESPAN": "auto",
    "HUB_MQTT_ALLOW_ANONYMOUS": False,
    "HUB_SMTP_CHECK_AUTHENTICATION": False,
    "HUB_HANDLER_TIMING_EVERY": 8,
}


def hub_setting(name: str) -> Any:
    """The value of hub setting ``name``: Django's if configured, else the default."""
    from django.conf import settings

    if settings.configured:
        return getattr(settings, name, DEFAULTS[name])
    return DEFAULTS[name]
