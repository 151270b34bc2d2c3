"""The benchmark project's settings for Channels: the same, with Channels' in-memory layer."""

from benchmarks.apps.django_project.settings import *  # noqa: F403

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
