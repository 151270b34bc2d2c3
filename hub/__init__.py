"""hub: a multi-protocol consumer hub for Django.

The framework half: consumers, routing, channel layers, Django integration and
testing communicators. Module paths follow Django Channels (``channels.X`` is
``hub.X``), so porting a Channels application means changing its imports.
"""

__version__ = "0.1.0"

DEFAULT_CHANNEL_LAYER = "default"
