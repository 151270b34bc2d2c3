"""Django's own ASGI handler for the benchmark project: HTTP only, any server."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.apps.django_project.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
