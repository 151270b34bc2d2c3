"""A Django project for the server benchmarks, in a hub and a Channels flavour.

Both flavours share the view, the URL and the consumer code; only the imports
differ (hub's ``AsyncWebsocketConsumer`` and routers, or Channels'), and each
flavour's settings point ``CHANNEL_LAYERS`` at its own in-memory layer, so
every consumer runs the same layer receive loop.

- ``settings`` / ``asgi_hub``: hub's consumer and routers, hub's in-memory layer.
- ``settings_channels`` / ``asgi_channels``: Channels', with Channels' in-memory layer.
- ``asgi``: Django's own ASGI handler (HTTP only), served by every server in
  ``http-django-hello``.
"""
