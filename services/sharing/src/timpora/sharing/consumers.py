"""The sharing service's Kafka consumers: registry events into the per-agency projections."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import register
from timpora.common.events import CloudEvent
from timpora.common.events.payloads import Contract
from timpora.common.kafka.consumer import InboxConsumer, KafkaDeadLetterSink, subscribe
from timpora.common.service import ServiceRuntime
from timpora.common.settings import narrow
from timpora.sharing import projection
from timpora.sharing.models import inbox
from timpora.sharing.settings import SharingSettings


def projection_consumer(runtime: ServiceRuntime) -> InboxConsumer:
    settings = narrow(runtime.settings, SharingSettings)
    catalog = settings.kafka.catalog

    async def handle(event: CloudEvent[Contract], session: AsyncSession) -> None:
        # The register in force now, for every event: a changed agreement applies from the next event on.
        # Each agreement is in force by its own region's calendar.
        agreements = register.current(settings.register_file).agreements.values()
        await projection.apply(session, event, list(agreements), runtime.clock.now(), catalog)

    return InboxConsumer(
        name="projections",
        service=runtime.name,
        session_factory=runtime.sessions,
        inbox=inbox,
        handler=handle,
        dead_letters=KafkaDeadLetterSink(runtime.producer, catalog.sharing_dead_letters.name),
    )


def wire(runtime: ServiceRuntime, *, topic: str, group_id: str) -> InboxConsumer:
    consumer = projection_consumer(runtime)
    subscribe(runtime.broker, consumer, topic=topic, group_id=group_id)
    return consumer
