"""Channel layers: how consumers message each other.

``hub.layers`` has the names of ``channels.layers``; the Redis layer lives in
``hub.layers.redis``.
"""

from hub.layers.base import BaseChannelLayer
from hub.layers.manager import ChannelLayerManager, channel_layers, get_channel_layer
from hub.layers.memory import InMemoryChannelLayer

__all__ = [
    "BaseChannelLayer",
    "ChannelLayerManager",
    "InMemoryChannelLayer",
    "channel_layers",
    "get_channel_layer",
]
