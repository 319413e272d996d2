"""Applying one registry event to every agency's projection and topic, inside the consumer's transaction.

For each agreement in force: a person in the agency's jurisdiction gets their record redacted to
the agreement's fields; a person outside it (moved away, or no village yet) becomes a tombstone.
Only an event newer than what the projection holds changes it, so redelivered and reordered events
change nothing. If the agreement lists the event's type, the agency's topic gets the event as the
agency may see it — also once when the person leaves its view (``in_view`` false, no record) — by
way of the sharing service's outbox, in this same transaction. Each change of a person in the agency's
view (or leaving it) is also appended to the agency's projection history, in this same transaction, for
reports as of a past moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.events import CloudEvent, new_event
from timpora.common.events.envelope import attribute_headers
from timpora.common.events.payloads import Contract, ForeignerEvent, SharedRecord
from timpora.common.kafka.consumer import PermanentEventError
from timpora.common.register.agreements import Agreement
from timpora.common.standing import zone_of
from timpora.common.topics import TopicCatalog
from timpora.sharing.models import outbox, projection_history, projections

SOURCE = "/timpora/sharing"
#: The Kafka header naming the agreement version a record was written under.
AGREEMENT_VERSION_HEADER = "timpora_agreement_version"


async def apply(
    session: AsyncSession,
    event: CloudEvent[Contract],
    agreements: Sequence[Agreement],
    now: datetime,
    catalog: TopicCatalog,
) -> None:
    data = event.data
    if not isinstance(data, ForeignerEvent):
        raise PermanentEventError(f"{event.type} carries no foreigner snapshot")
    for agreement in agreements:
        if agreement.in_force_at(now):
            await _apply_one(session, event, data, agreement, catalog)


async def _apply_one(
    session: AsyncSession,
    event: CloudEvent[Contract],
    data: ForeignerEvent,
    agreement: Agreement,
    catalog: TopicCatalog,
) -> None:
    snapshot = data.foreigner
    held = (
        await session.execute(
            select(projections.c.version, projections.c.visible)
            .where(projections.c.agency_id == agreement.agency_id, projections.c.foreigner_id == snapshot.foreigner_id)
            .with_for_update()
        )
    ).first()
    newer = held is None or held.version < snapshot.version
    was_visible = held is not None and bool(held.visible)
    if newer:
        visible = agreement.shows(data)
        record = agreement.record_of(data) if visible else None
        await _upsert(
            session,
            agreement,
            snapshot.foreigner_id,
            snapshot.version,
            visible=visible,
            record=record,
            time_zone=zone_of(data.jurisdiction).key,
        )
        # Someone never in the agency's view leaves no trace in its history, as in its topic.
        if visible or was_visible:
            await session.execute(
                pg_insert(projection_history)
                .values(history_row(agreement, event.spec.name, event.time, data, visible=visible, record=record))
                .on_conflict_do_nothing()
            )
    elif held is not None and held.version == snapshot.version:
        # Same version, nothing changed (an expiry reminder): the agency may still be told.
        visible = bool(held.visible)
        record = agreement.record_of(data) if visible else None
    else:
        return  # an older event overtaken by a newer one
    if event.spec.name in agreement.event_types and (visible or (newer and was_visible)):
        topic = catalog.agency_events(agreement.agency_id).name
        await _publish(session, event, agreement, topic, in_view=visible, record=record)


def history_row(
    agreement: Agreement,
    event_type: str,
    occurred_at: datetime,
    data: ForeignerEvent,
    *,
    visible: bool,
    record: dict[str, Any] | None,
) -> dict[str, Any]:
    """The agency's history row for one event (the live consumer and a rebuild write the same)."""
    return {
        "agency_id": agreement.agency_id,
        "foreigner_id": data.foreigner.foreigner_id,
        "version": data.foreigner.version,
        "agreement_version": agreement.version,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "visible": visible,
        "record": record,
        "time_zone": zone_of(data.jurisdiction).key,
    }


async def _upsert(
    session: AsyncSession,
    agreement: Agreement,
    foreigner_id: UUID,
    version: int,
    *,
    visible: bool,
    record: dict[str, Any] | None,
    time_zone: str,
) -> None:
    statement = pg_insert(projections).values(
        agency_id=agreement.agency_id,
        foreigner_id=foreigner_id,
        version=version,
        agreement_version=agreement.version,
        visible=visible,
        record=record,
        time_zone=time_zone,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[projections.c.agency_id, projections.c.foreigner_id],
            set_={
                "version": statement.excluded.version,
                "agreement_version": statement.excluded.agreement_version,
                "visible": statement.excluded.visible,
                "record": statement.excluded.record,
                "time_zone": statement.excluded.time_zone,
                "updated_at": func.now(),
            },
            where=projections.c.version < statement.excluded.version,
        )
    )


async def _publish(
    session: AsyncSession,
    event: CloudEvent[Contract],
    agreement: Agreement,
    topic: str,
    *,
    in_view: bool,
    record: dict[str, Any] | None,
) -> None:
    shared: CloudEvent[Contract] = new_event(
        SharedRecord(event=event.spec.name, in_view=in_view, record=record),
        source=SOURCE,
        subject=event.subject,
        # Derived from the registry event's id and the agency: the same on every redelivery, so the
        # agency can deduplicate, and distinct across agencies, as the outbox requires.
        event_id=str(uuid5(UUID(event.id), agreement.agency_id)),
        time=event.time,
    )
    await session.execute(
        pg_insert(outbox)
        .values(
            event_id=UUID(shared.id),
            event_type=shared.type,
            topic=topic,
            partition_key=shared.subject or "",
            # Which terms it was written under: the relay's gate drops it if other terms are in force by the time
            # it leaves (who is in view may have changed, and the record cannot tell).
            headers={**attribute_headers(shared), AGREEMENT_VERSION_HEADER: str(agreement.version)},
            payload=shared.data.model_dump_json(),
        )
        .on_conflict_do_nothing(index_elements=[outbox.c.event_id])
    )
