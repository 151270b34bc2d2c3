"""Settings of the benchmark project: the least a "hello" view and a consumer need.

No database, no middleware, no installed apps: the benchmarks measure the
server and the consumer machinery, not Django's request pipeline.
``DEBUG = False`` so Django keeps no query log and serves like production.
"""

SECRET_KEY = "hub-benchmarks-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
ROOT_URLCONF = "benchmarks.apps.django_project.urls"
LOGGING_CONFIG = None

# Every flavour runs its consumers with an in-memory layer of its own framework.
CHANNEL_LAYERS = {"default": {"BACKEND": "hub.layers.InMemoryChannelLayer"}}
