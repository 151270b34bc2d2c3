"""hub's MQTT framework parts: topic routing, broker state, the broker consumer.

The public import path is :mod:`hub.generic.mqtt` (``MqttConsumer``,
``AsyncMqttConsumer``, ``BrokerConsumer``, ``TopicRouter``, ``topic``,
``Refuse``); the modules here hold one idea each:

- :mod:`.routing`: topic patterns with captured segments, ``TopicRouter``;
- :mod:`.messages`: ``MqttMessage``, what a handler receives;
- :mod:`.consumer`: the generic consumers, their auth and ACL hooks;
- :mod:`.state`: the broker's subscription registry, retained messages and
  offline sessions (in memory by default, an interface for shared stores);
- :mod:`.broker`: ``BrokerConsumer``, standard broker semantics on the layer.
"""
