"""``ApplicationCommunicator``: drive any ASGI application from a test, no server.

It is asgiref's (``send_input``, ``receive_output``, ``receive_nothing``,
``wait``): the application runs in an empty ``contextvars.Context``, as under a
server, so context set by the test does not leak into it.
"""

from asgiref.testing import ApplicationCommunicator

__all__ = ["ApplicationCommunicator"]
