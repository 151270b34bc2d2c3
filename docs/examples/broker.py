"""An MQTT broker made of every hub process: subscriptions, retained messages, sessions in Redis."""

from hub.generic.mqtt import BrokerConsumer
from hub.mqtt.redis_state import RedisBrokerState
from hub.routing import ProtocolTypeRouter


class Broker(BrokerConsumer):
    # Redis at CHANNEL_LAYERS["default"]'s first host; keys under "mqtt:".
    state = RedisBrokerState(prefix="mqtt")


application = ProtocolTypeRouter({"mqtt": Broker.as_asgi()})
