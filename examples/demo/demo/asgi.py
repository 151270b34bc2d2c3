"""The demo's ASGI application: Django for HTTP, consumers for everything else."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
django_application = get_asgi_application()

from dashboard.devices import MailConsumer, SensorConsumer, TrackerConsumer  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

from hub.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from hub.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from hub.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from hub.tcp_routing import ListenerRouter  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "mqtt": SensorConsumer.as_asgi(),
        "tcp": ListenerRouter({"devices": TrackerConsumer.as_asgi()}),
        "smtp": MailConsumer.as_asgi(),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
