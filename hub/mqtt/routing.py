"""Topic routing: patterns with captured levels, as natural as ``URLRouter``.

A pattern is a topic with named levels in angle brackets::

    sensors/<device>/temperature          one level, as a str
    plc/<int:unit>/coil/<int:coil>        converted with int()
    logs/<path:rest>                      the rest of the topic (last level only)

Each pattern has the MQTT topic filter that receives its messages
(``sensors/+/temperature``, ``logs/#``), so a consumer can subscribe to
exactly what it routes. :class:`TopicRouter` tries routes in order.

Routing happens per message, not per connection: an MQTT connection carries
many topics, so a consumer asks its router for each PUBLISH
(:meth:`TopicRouter.match`). As a :class:`hub.routing.Router` it resolves a
scope that carries a ``topic`` (one message, e.g. in bridge mode), adding
``mqtt_route`` with the captured values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.exceptions import NoRouteFound
from hub.routing import Router
from hub.types import ASGIApp, Scope

_CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^/]+", str),
    "int": (r"[0-9]+", int),
    "path": (r".*", str),
}
_LEVEL = re.compile(r"^<(?:(?P<converter>[a-z]+):)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)>$")


@dataclass(frozen=True)
class TopicPattern:
    """A compiled topic pattern: its regex, converters and MQTT filter."""

    pattern: str
    regex: re.Pattern[str]
    converters: dict[str, Callable[[str], Any]]
    topic_filter: str

    @classmethod
    def compile(cls, pattern: str) -> TopicPattern:
        """Compile ``pattern``.

        Raises:
            ValueError: an unknown converter, a ``<path:...>`` not last, or MQTT
                wildcards mixed into a pattern level.
        """
        parts: list[str] = []
        filters: list[str] = []
        converters: dict[str, Callable[[str], Any]] = {}
        levels = pattern.split("/")
        for index, level in enumerate(levels):
            match = _LEVEL.match(level)
            if match is None:
                if "<" in level or ">" in level:
                    raise ValueError(f"topic pattern {pattern!r}: cannot parse level {level!r}")
                parts.append(re.escape(level) if level not in ("+", "#") else level)
                if level == "#" and index != len(levels) - 1:
                    raise ValueError(f"topic pattern {pattern!r}: '#' must be the last level")
                filters.append(level)
                continue
            kind = match["converter"] or "str"
            if kind not in _CONVERTERS:
                raise ValueError(
                    f"topic pattern {pattern!r}: unknown converter {kind!r} "
                    f"(have {', '.join(_CONVERTERS)})"
                )
            if kind == "path" and index != len(levels) - 1:
                raise ValueError(f"topic pattern {pattern!r}: <path:...> must be the last level")
            regex, convert = _CONVERTERS[kind]
            parts.append(f"(?P<{match['name']}>{regex})")
            converters[match["name"]] = convert
            filters.append("#" if kind == "path" else "+")
        source = "/".join(parts).replace("+", "[^/]+")
        if source.endswith("/#"):
            source = source[:-2] + "(?:/.*)?"
        elif source == "#":
            source = ".*"
        return cls(pattern, re.compile(f"^{source}$"), converters, "/".join(filters))

    def match(self, topic: str) -> dict[str, Any] | None:
        """The captured values if ``topic`` matches, else None."""
        found = self.regex.match(topic)
        if found is None:
            return None
        if topic.startswith("$") and self.topic_filter[:1] in ("+", "#"):
            return None  # MQTT 4.7.2: wildcards at the start never match $ topics
        try:
            return {name: self.converters[name](value) for name, value in found.groupdict().items()}
        except ValueError:
            return None


@dataclass(frozen=True)
class TopicRoute:
    """A pattern and what handles its messages (a consumer method name, or any object)."""

    pattern: TopicPattern
    target: Any
    kwargs: dict[str, Any]


def topic(pattern: str, target: Any, kwargs: dict[str, Any] | None = None) -> TopicRoute:
    """A route: ``topic("sensors/<device>/temperature", "temperature")``."""
    return TopicRoute(TopicPattern.compile(pattern), target, dict(kwargs or {}))


class TopicRouter(Router):
    """Routes topics to targets by pattern, first match wins."""

    def __init__(self, routes: Sequence[TopicRoute]) -> None:
        self.routes = list(routes)

    @property
    def topic_filters(self) -> list[str]:
        """The MQTT filters of every route, in order (what to subscribe to)."""
        return [route.pattern.topic_filter for route in self.routes]

    def match(self, topic_name: str) -> tuple[Any, dict[str, Any]]:
        """The target for ``topic_name`` and the captured values (with the route's kwargs).

        Raises:
            NoRouteFound: no pattern matched.
        """
        for route in self.routes:
            captured = route.pattern.match(topic_name)
            if captured is not None:
                return route.target, {**route.kwargs, **captured}
        tried = ", ".join(repr(route.pattern.pattern) for route in self.routes) or "no routes"
        raise NoRouteFound(f"No route for MQTT topic {topic_name!r} (tried {tried})")

    def resolve(self, scope: Scope) -> tuple[ASGIApp, Scope]:
        topic_name = scope.get("topic")
        if not isinstance(topic_name, str):
            raise NoRouteFound(
                f"TopicRouter routes one message's scope (with a 'topic'); a {scope['type']!r} "
                "connection scope has none: use TopicRouter.match() in the consumer"
            )
        target, kwargs = self.match(topic_name)
        return target, dict(scope, mqtt_route={"args": (), "kwargs": kwargs})
