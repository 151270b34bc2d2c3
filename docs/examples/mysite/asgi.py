"""The project's ASGI application: Django's views, the chat API and the chat WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the imports below

from django.urls import path, re_path  # noqa: E402
from hub.auth import AuthMiddlewareStack  # noqa: E402
from hub.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from hub.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chat.api import PostMessageConsumer  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                path("api/rooms/<slug:room>/messages/", PostMessageConsumer.as_asgi()),
                re_path(r"", django_asgi_app),
            ]
        ),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
