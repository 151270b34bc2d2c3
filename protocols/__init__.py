"""hub's protocol servers: sockets in, ASGI out.

Each subpackage turns one wire protocol into ASGI scopes and events: a sans-I/O
parser (bytes in, events out) and an asyncio server around it. Nothing here
imports Django or ``hub``; any ASGI application can be served.
"""
