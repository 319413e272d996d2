"""The alerts service's Kafka consumer: registry events in, alerts and queued deliveries out."""

from __future__ import annotations

from timpora.alerts.alerting import Alerting
from timpora.alerts.models import inbox
from timpora.common.kafka.consumer import InboxConsumer, KafkaDeadLetterSink, subscribe
from timpora.common.service import ServiceRuntime


def routing_consumer(runtime: ServiceRuntime, alerting: Alerting) -> InboxConsumer:
    return InboxConsumer(
        name="routing",
        service=runtime.name,
        session_factory=runtime.sessions,
        inbox=inbox,
        handler=alerting.handle,
        before_commit=alerting.flush,
        dead_letters=KafkaDeadLetterSink(runtime.producer, runtime.settings.kafka.catalog.alerts_dead_letters.name),
    )


def wire(runtime: ServiceRuntime, alerting: Alerting, *, topic: str, group_id: str, batch_size: int) -> InboxConsumer:
    consumer = routing_consumer(runtime, alerting)
    subscribe(runtime.broker, consumer, topic=topic, group_id=group_id, batch_size=batch_size)
    return consumer
