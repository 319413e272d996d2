"""The sharing service's Kafka consumers: registry events into the per-agency projections."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.events import CloudEvent
from timpora.common.events.payloads import Contract
from timpora.common.kafka.consumer import InboxConsumer, KafkaDeadLetterSink, subscribe
from timpora.common.service import ServiceRuntime
from timpora.sharing import projection
from timpora.sharing.domain.agreements import Agreement
from timpora.sharing.models import inbox


def projection_consumer(runtime: ServiceRuntime, agreements: Sequence[Agreement]) -> InboxConsumer:
    catalog = runtime.settings.kafka.catalog

    async def handle(event: CloudEvent[Contract], session: AsyncSession) -> None:
        # Each agreement is in force by its own region's calendar.
        await projection.apply(session, event, agreements, runtime.clock.now(), catalog)

    return InboxConsumer(
        name="projections",
        service=runtime.name,
        session_factory=runtime.sessions,
        inbox=inbox,
        handler=handle,
        dead_letters=KafkaDeadLetterSink(runtime.producer, catalog.sharing_dead_letters.name),
    )


def wire(runtime: ServiceRuntime, agreements: Sequence[Agreement], *, topic: str, group_id: str) -> InboxConsumer:
    consumer = projection_consumer(runtime, agreements)
    subscribe(runtime.broker, consumer, topic=topic, group_id=group_id)
    return consumer
