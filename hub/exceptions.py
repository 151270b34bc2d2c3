"""Exceptions raised by hub's consumers, layers and routers.

Names and meanings are those of ``channels.exceptions``::

    Exception
    ├── RequestAborted           the client went away while a body was read
    │   └── RequestTimeout
    ├── AcceptConnection         raised in connect() to accept
    ├── DenyConnection           raised in connect() to refuse
    ├── ChannelFull              a channel is at its capacity
    ├── MessageTooLarge          a message exceeds the layer's size limit
    ├── StopConsumer             a consumer asks to end its application instance
    ├── ConnectionError
    │   └── ChannelLayerUnavailable    the layer's backend (Redis) cannot be reached
    └── ValueError
        ├── InvalidChannelLayerError   CHANNEL_LAYERS is misconfigured
        └── NoRouteFound               no route of a router matched the scope
"""


class RequestAborted(Exception):
    """The client disconnected part way through sending the request body."""


class RequestTimeout(RequestAborted):
    """The request body did not arrive in time."""


class InvalidChannelLayerError(ValueError):
    """A channel layer is configured wrongly, or lacks an extension a consumer needs."""


class AcceptConnection(Exception):
    """Raised in a ``connect()`` handler to accept the connection."""


class DenyConnection(Exception):
    """Raised in a ``connect()`` handler to refuse the connection."""


class ChannelFull(Exception):
    """A channel holds ``capacity`` messages already; this one was not queued."""


class MessageTooLarge(Exception):
    """A message is larger than the channel layer accepts."""


class StopConsumer(Exception):
    """Raised by a handler to end its consumer's application instance cleanly."""


class NoRouteFound(ValueError):
    """No route of a router matched the scope; the message names the scope and the routes."""


class ChannelLayerUnavailable(ConnectionError):
    """The channel layer's backend cannot be reached; nothing was sent or changed."""
