"""Prometheus metrics from :data:`hub.status.STATUS` (needs ``prometheus-client``).

A collector reads the status at scrape time, so the hot path only increments
plain integers; nothing here runs per message. Exposed metrics:

- ``hub_connections{protocol}``: open connections (gauge)
- ``hub_connections_total{protocol}``: connections accepted since start
- ``hub_messages_received_total{protocol}`` / ``hub_messages_sent_total{protocol}``
- ``hub_errors_total{protocol,kind}``: consumer crashes, slow clients cut off...
- ``hub_handler_seconds{protocol}``: handler duration histogram (one run in
  ``HUB_HANDLER_TIMING_EVERY`` timed, see :mod:`hub.status`)
- ``hub_draining``: 1 while shutting down
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from hub.status import LATENCY_BUCKETS, STATUS, HubStatus


class HubCollector:
    """A Prometheus collector over a :class:`HubStatus`."""

    def __init__(self, status: HubStatus = STATUS) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        status = self.status
        open_connections = GaugeMetricFamily(
            "hub_connections", "Open connections", labels=["protocol"]
        )
        for protocol, count in status.open_connections().items():
            open_connections.add_metric([protocol], count)
        yield open_connections
        yield _counter("hub_connections", "Connections accepted", status.connections_total)
        yield _counter("hub_messages_received", "Messages handled", status.messages_in)
        yield _counter("hub_messages_sent", "Messages sent to clients", status.messages_out)
        errors = CounterMetricFamily("hub_errors", "Errors", labels=["protocol", "kind"])
        for (protocol, kind), count in status.errors.items():
            errors.add_metric([protocol, kind], count)
        yield errors
        latency = HistogramMetricFamily(
            "hub_handler_seconds",
            "Consumer handler duration (one run in HUB_HANDLER_TIMING_EVERY is timed)",
            labels=["protocol"],
        )
        for protocol, histogram in status.traffic.items():
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*LATENCY_BUCKETS, float("inf")), histogram.counts, strict=True
            ):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            latency.add_metric([protocol], buckets, histogram.total)
        yield latency
        yield GaugeMetricFamily("hub_draining", "1 while shutting down", value=int(status.draining))


def _counter(name: str, documentation: str, values: Any) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["protocol"])
    for protocol, count in values.items():
        family.add_metric([protocol], count)
    return family


def exposition(status: HubStatus = STATUS) -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry()
    registry.register(HubCollector(status))
    return generate_latest(registry)
