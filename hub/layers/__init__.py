"""Channel layers: how consumers message each other.

``hub.layers`` has the names of ``channels.layers``; the Redis layer lives in
``hub.layers.redis``.
"""

from hub import DEFAULT_CHANNEL_LAYER
from hub.exceptions import ChannelFull, InvalidChannelLayerError
from hub.layers.base import BaseChannelLayer
from hub.layers.manager import ChannelLayerManager, channel_layers, get_channel_layer
from hub.layers.memory import InMemoryChannelLayer

__all__ = [
    "DEFAULT_CHANNEL_LAYER",
    "BaseChannelLayer",
    "ChannelFull",
    "ChannelLayerManager",
    "InMemoryChannelLayer",
    "InvalidChannelLayerError",
    "channel_layers",
    "get_channel_layer",
]
