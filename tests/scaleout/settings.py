"""Settings of the scale-out project: the Redis layer, from the environment the test sets.

``HUB_TEST_REDIS_URL`` is the test's redis-server; ``HUB_TEST_REDIS_PREFIX``
keeps each test's keys apart.
"""

import os

SECRET_KEY = "hub-scale-out-tests-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "hub"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "hub.layers.redis.RedisChannelLayer",
        "CONFIG": {
            "hosts": [os.environ["HUB_TEST_REDIS_URL"]],
            "prefix": os.environ.get("HUB_TEST_REDIS_PREFIX", "scaleout"),
        },
    }
}
HUB_MQTT_ALLOW_ANONYMOUS = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
