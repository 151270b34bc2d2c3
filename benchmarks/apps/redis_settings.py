"""Settings of the Redis echo benchmark: nothing but the Redis layer (``HUB_BENCH_REDIS_URL``)."""

import os

SECRET_KEY = "hub-benchmarks-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
LOGGING_CONFIG = None
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "hub.layers.redis.RedisChannelLayer",
        "CONFIG": {
            "hosts": [os.environ.get("HUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")],
            "prefix": os.environ.get("HUB_BENCH_REDIS_PREFIX", "benchecho"),
        },
    }
}
