"""Settings for several machines: Redis through Sentinel, listeners behind a TCP balancer."""

import os

from mysite.settings_production import *  # noqa: F403

# Sentinel: the layer asks the Sentinels for the master, and follows a failover.
REDIS_SENTINEL = {
    "sentinels": [("10.0.0.7", 26379), ("10.0.0.8", 26379), ("10.0.0.9", 26379)],
    "master_name": "hub",
    "password": os.environ.get("REDIS_PASSWORD"),
    "sentinel_kwargs": {"password": os.environ.get("REDIS_SENTINEL_PASSWORD")},
}
# Or a Redis Cluster, found from any of its nodes.
REDIS_CLUSTER = {"cluster": True, "address": "redis://10.0.0.20:7000"}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "hub.layers.redis.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_CLUSTER if os.environ.get("REDIS_CLUSTER") else REDIS_SENTINEL],
            "symmetric_encryption_keys": [SECRET_KEY],  # noqa: F405
        },
    }
}
# Every machine listens on its private address; the balancer in front is 10.0.0.2.
HUB_LISTENERS = [
    "http://0.0.0.0:8000?forwarded_allow_ips=10.0.0.2",
    "mqtt://0.0.0.0:1883",
    "tcp://trackers=0.0.0.0:5000?framing=line&proxy_protocol=10.0.0.2",
]
HUB_WORKERS = 2
