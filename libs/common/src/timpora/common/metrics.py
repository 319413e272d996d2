"""Prometheus metrics shared by every service; each service adds its own on the same default registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "timpora_events_consumed_total",
    "Registry events a consumer finished with, by outcome (processed, duplicate, dead_lettered).",
    ["service", "consumer", "outcome"],
)
EVENT_PROCESSING_SECONDS = Histogram(
    "timpora_event_processing_seconds",
    "Time from receiving an event to committing its database transaction.",
    ["service", "consumer"],
)
EVENT_RETRIES = Counter(
    "timpora_event_retries_total",
    "Transient failures retried while processing an event.",
    ["service", "consumer"],
)
READY = Gauge("timpora_ready", "1 when every readiness check of the service passes.", ["service"])
CONSUMER_LAG = Gauge(
    "timpora_consumer_lag_records",
    "Records of a topic a consumer group has not committed yet.",
    ["service", "group", "topic"],
)
