"""Production settings: several processes behind nginx, Redis between them."""

import os

from mysite.settings import *  # noqa: F403

DEBUG = False
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
ALLOWED_HOSTS = ["chat.example.com"]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "hub.layers.redis.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")]},
    }
}
# nginx on the same machine proxies to this socket; trust its X-Forwarded-* headers.
HUB_LISTENERS = ["http://unix:/run/hub/http.sock?forwarded_allow_ips=unix&server_header=none"]
HUB_WORKERS = 4
HUB_SHUTDOWN_GRACE = 30.0
