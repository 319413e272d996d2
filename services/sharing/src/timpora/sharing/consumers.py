"""The sharing service's Kafka consumers: registry events into the per-agency projections."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import register
from timpora.common.events import CloudEvent
from timpora.common.events.payloads import Contract, ForeignerEvent
from timpora.common.kafka.consumer import InboxConsumer, KafkaDeadLetterSink, PermanentEventError, subscribe
from timpora.common.service import ServiceRuntime
from timpora.common.settings import narrow
from timpora.sharing import projection
from timpora.sharing.models import inbox
from timpora.sharing.settings import SharingSettings

#: Where a transaction keeps the events it has taken until it applies them (``session.info``).
_TAKEN = "timpora.sharing.taken"


def projection_consumer(runtime: ServiceRuntime) -> InboxConsumer:
    settings = narrow(runtime.settings, SharingSettings)
    catalog = settings.kafka.catalog

    async def take(event: CloudEvent[Contract], session: AsyncSession) -> None:
        # Refused here, not in the batch: a record that is no registry event is dead-lettered on its own.
        if not isinstance(event.data, ForeignerEvent):
            raise PermanentEventError(f"{event.type} carries no foreigner snapshot")
        session.info.setdefault(_TAKEN, []).append(event)

    async def apply(session: AsyncSession) -> None:
        taken: list[CloudEvent[Contract]] = session.info.pop(_TAKEN, [])
        # The register in force now, once per batch: a changed agreement applies from the next batch on. Each
        # agreement is in force by its own region's calendar. Indexed by jurisdiction once per register.
        indexed = register.current(settings.register_file).indexed
        await projection.apply_many(session, taken, indexed, runtime.clock.now(), catalog)

    return InboxConsumer(
        name="projections",
        service=runtime.name,
        session_factory=runtime.sessions,
        inbox=inbox,
        handler=take,
        before_commit=apply,
        dead_letters=KafkaDeadLetterSink(runtime.producer, catalog.sharing_dead_letters.name),
    )


def wire(runtime: ServiceRuntime, *, topic: str, group_id: str, batch_size: int, streams: int = 1) -> InboxConsumer:
    consumer = projection_consumer(runtime)
    subscribe(runtime.broker, consumer, topic=topic, group_id=group_id, batch_size=batch_size, streams=streams)
    return consumer
