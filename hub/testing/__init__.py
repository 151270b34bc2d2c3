"""Testing consumers and applications without a server, and with hub's real one.

``ApplicationCommunicator``, ``WebsocketCommunicator`` and ``HttpCommunicator``
have Channels' names and methods; each can be logged in as a Django user.
"""

from hub.testing.application import ApplicationCommunicator
from hub.testing.http import HttpCommunicator
from hub.testing.live import ChannelsLiveServerTestCase, HubLiveServerTestCase, LiveHub
from hub.testing.mqtt import MqttCommunicator
from hub.testing.tcp import TcpCommunicator
from hub.testing.websocket import WebsocketCommunicator

__all__ = [
    "ApplicationCommunicator",
    "ChannelsLiveServerTestCase",
    "HttpCommunicator",
    "HubLiveServerTestCase",
    "LiveHub",
    "MqttCommunicator",
    "TcpCommunicator",
    "WebsocketCommunicator",
]
