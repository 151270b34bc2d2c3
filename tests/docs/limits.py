"""The limits tables of docs/security.md, generated from the code that sets the limits.

Each table sits between ``<!-- limits: KEY -->`` and ``<!-- /limits -->``; its
rows come from the sources in :data:`TABLES`: a listener config dataclass (every
field, its default, and the comment above it in the source), class attributes
(``#:`` comments), a constructor's parameters (its docstring's ``Args:``) or
module constants. ``tests/docs/test_security.py`` fails when the page and the
code differ; rewrite the page with::

    .venv/bin/python -m tests.docs.limits
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parents[2] / "docs" / "security.md"

BLOCK = re.compile(r"(<!-- limits: (\S+) -->\n)(.*?)(<!-- /limits -->)", re.DOTALL)

HEADER = "| setting | default | why |\n|---|---|---|\n"

#: Names whose integer values are byte counts, shown in KiB / MiB.
BYTES = re.compile(r"size|high_water")
#: Names whose values are seconds.
SECONDS = re.compile(r"timeout|grace|interval|expiry|TIMEOUT")


@dataclasses.dataclass(frozen=True)
class Row:
    names: tuple[str, ...]
    defaults: tuple[Any, ...]
    why: str

    def render(self) -> str:
        names = ", ".join(f"`{name}`" for name in self.names)
        defaults = ", ".join(
            format_default(name, value)
            for name, value in zip(self.names, self.defaults, strict=True)
        )
        return f"| {names} | {defaults} | {self.why} |\n"


def format_default(name: str, value: Any) -> str:
    """A default as the page shows it: ``64 KiB``, ``10 s``, ``None``, ``"hub"``."""
    if isinstance(value, enum.Enum):
        shown = value.value if isinstance(value.value, str) else value.name
        return f"`{shown}`"
    if value is None or isinstance(value, bool):
        return f"`{value}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, tuple | list):
        return f"`{tuple(value)!r}`"
    if isinstance(value, int | float):
        if isinstance(value, int) and BYTES.search(name) and value >= 1024 and value % 1024 == 0:
            for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
                if value % size == 0:
                    return f"{value // size} {unit}"
        # Thousands separators from 10,000 on: ports and 2048 read better without.
        number = f"{value:,}" if value >= 10_000 else f"{value:g}"
        return f"{number} s" if SECONDS.search(name) else number
    return f"`{value!r}`"


def clean(text: str) -> str:
    """A source comment as a table cell: RST literals to Markdown, pipes escaped."""
    text = " ".join(text.split())
    text = re.sub(r":\w+:`", "`", text)
    text = text.replace("``", "`").replace("|", "\\|")
    return text[:1].upper() + text[1:]


def resolve(dotted: str) -> Any:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def commented_lines(lines: list[str], indent: str) -> Iterator[tuple[str, str, bool]]:
    """``(name, comment, follows_a_name)`` for each ``name: ...`` or ``NAME = ...`` at ``indent``.

    ``comment`` is the block of ``#`` / ``#:`` lines right above it;
    ``follows_a_name`` says the line before was another such name (one comment
    for several fields, as ``host``/``port``/``uds``).
    """
    assignment = re.compile(rf"^{indent}(\w+)\s*(?::[^=]*)?=|^{indent}(\w+)\s*:")
    comment: list[str] = []
    previous_was_name = False
    for line in lines:
        stripped = line.strip()
        if line.startswith(indent + "#"):
            comment.append(stripped.lstrip("#:").strip())
            previous_was_name = False
            continue
        match = assignment.match(line)
        if match and not line.startswith(indent + " "):
            yield match[1] or match[2], " ".join(comment), previous_was_name and not comment
            previous_was_name = True
        else:
            previous_was_name = False
        comment = []


def config_rows(dotted: str) -> list[Row]:
    """Every field of a config dataclass, grouped as its source comments group them."""
    cls = resolve(dotted)
    defaults = {field.name: field.default for field in dataclasses.fields(cls)}
    lines, _ = inspect.getsourcelines(cls)
    rows: list[Row] = []
    for name, comment, shares in commented_lines(lines, "    "):
        if name not in defaults:
            continue
        if shares and rows:
            last = rows.pop()
            rows.append(Row((*last.names, name), (*last.defaults, defaults[name]), last.why))
        else:
            rows.append(Row((name,), (defaults[name],), clean(comment)))
    missing = set(defaults) - {name for row in rows for name in row.names}
    assert not missing, f"{dotted}: fields not found in the source: {sorted(missing)}"
    return rows


def attribute_rows(dotted: str, names: list[str]) -> list[Row]:
    """Class attributes and their ``#:`` comments (looked up along the MRO)."""
    cls = resolve(dotted)
    comments: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if base.__module__.startswith(("hub", "protocols")):
            lines, _ = inspect.getsourcelines(base)
            for name, comment, _shares in commented_lines(lines, "    "):
                if comment:
                    comments[name] = comment
    return [
        Row((f"{cls.__name__}.{name}",), (getattr(cls, name),), clean(comments.get(name, "")))
        for name in names
    ]


def parameter_rows(dotted: str) -> list[Row]:
    """A constructor's parameters with defaults, explained by its docstring's ``Args:``."""
    cls = resolve(dotted)
    docstring = inspect.getdoc(cls) or ""
    args = docstring.partition("Args:\n")[2]
    explained: dict[str, str] = {}
    current = None
    for line in args.splitlines():
        match = re.match(r"^    (\w+): (.*)", line)
        if match:
            current = match[1]
            explained[current] = match[2]
        elif line.startswith("        ") and current:
            explained[current] += " " + line.strip()
        else:
            current = None
    rows = []
    for name, parameter in inspect.signature(cls).parameters.items():
        why = re.sub(r"\s*\(default [^)]*\)", "", explained.get(name, ""))
        rows.append(Row((name,), (parameter.default,), clean(why)))
    return rows


def constant_rows(dotted_names: list[str]) -> list[Row]:
    """Module constants and the ``#:`` comment above each."""
    rows = []
    for dotted in dotted_names:
        module_name, _, name = dotted.partition(":")
        module = importlib.import_module(module_name)
        lines, _ = inspect.getsourcelines(module)
        comment = next(c for n, c, _ in commented_lines(lines, "") if n == name)
        rows.append(Row((f"{module_name}.{name}",), (getattr(module, name),), clean(comment)))
    return rows


#: Table key -> rows, in page order.
TABLES: dict[str, Any] = {
    "http": lambda: config_rows("protocols.http_ws.config:HttpWsConfig"),
    "mqtt": lambda: config_rows("protocols.mqtt.config:MqttConfig"),
    "mqtt-bridge": lambda: config_rows("protocols.mqtt.bridge_config:MqttBridgeConfig"),
    "tcp": lambda: config_rows("protocols.tcp.config:TcpConfig"),
    "smtp": lambda: config_rows("protocols.smtp.config:SmtpConfig"),
    "consumers": lambda: [
        *attribute_rows(
            "hub.consumer:AsyncConsumer",
            ["max_concurrent_handlers", "outbound_policy", "outbound_queue_size"],
        ),
        *attribute_rows("hub.mqtt.broker:BrokerConsumer", ["delivery_timeout"]),
        *attribute_rows("hub.mqtt.consumer:AsyncMqttConsumer", ["allow_anonymous"]),
        *attribute_rows("hub.generic.tcp:AsyncTcpConsumer", ["authentication", "framing"]),
        *attribute_rows("hub.generic.tcp:AsyncLineConsumer", ["errors"]),
    ],
    "layer-memory": lambda: parameter_rows("hub.layers.memory:InMemoryChannelLayer"),
    "layer-redis": lambda: parameter_rows("hub.layers.redis:RedisChannelLayer"),
    "fixed": lambda: constant_rows(
        [
            "hub.consumer:FAREWELL_TIMEOUT",
            "hub.layers.base:MAX_NAME_LENGTH",
            "hub.layers.redis_connections:CONNECT_TIMEOUT",
            "hub.mqtt.state:MAX_OFFLINE_MESSAGES",
            "hub.views:LAYER_CHECK_TIMEOUT",
            "hub.workers:START_TIMEOUT",
        ]
    ),
}

#: The config class of each table of listener options, by table key.
CONFIG_TABLES = {
    "http": "protocols.http_ws.config:HttpWsConfig",
    "mqtt": "protocols.mqtt.config:MqttConfig",
    "mqtt-bridge": "protocols.mqtt.bridge_config:MqttBridgeConfig",
    "tcp": "protocols.tcp.config:TcpConfig",
    "smtp": "protocols.smtp.config:SmtpConfig",
}


def render(key: str) -> str:
    return HEADER + "".join(row.render() for row in TABLES[key]())


def regenerate(page: str) -> str:
    """``page`` with every limits table rewritten from the code."""
    return BLOCK.sub(lambda m: m[1] + render(m[2]) + m[4], page)


def table_keys(page: str) -> list[str]:
    return [match[2] for match in BLOCK.finditer(page)]


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    text = PAGE.read_text()
    PAGE.write_text(regenerate(text))
    print(f"rewrote {len(table_keys(text))} tables in {PAGE}", file=sys.stderr)
