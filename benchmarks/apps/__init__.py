"""The applications the server benchmarks serve, and a launcher for their servers.

- :mod:`benchmarks.apps.bare`: a plain ASGI app (WebSocket echo, HTTP hello), no framework.
- :mod:`benchmarks.apps.django_project`: one Django project with a "hello" view and an
  ``AsyncWebsocketConsumer`` echo, in a hub flavour and a Channels flavour.
- :mod:`benchmarks.apps.launch`: raises the open-files limit, then execs a server.
"""
