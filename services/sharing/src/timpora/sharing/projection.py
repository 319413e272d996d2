"""Applying one registry event to every agency's projection, inside the consumer's transaction.

For each agreement in force: a person in the agency's jurisdiction gets their record redacted to
the agreement's fields; a person outside it (moved away, or no village yet) becomes a tombstone.
Either way only if the event's version is newer than what the projection holds, so redelivered
and reordered events change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.events import CloudEvent
from timpora.common.events.payloads import Contract, ForeignerEvent
from timpora.common.kafka.consumer import PermanentEventError
from timpora.sharing.domain.agreements import Agreement
from timpora.sharing.domain.fields import redact
from timpora.sharing.models import projections


async def apply(
    session: AsyncSession, event: CloudEvent[Contract], agreements: Sequence[Agreement], today: date
) -> None:
    data = event.data
    if not isinstance(data, ForeignerEvent):
        raise PermanentEventError(f"{event.type} carries no foreigner snapshot")
    snapshot = data.foreigner
    for agreement in agreements:
        if not agreement.is_valid_on(today):
            continue
        visible = agreement.covers(data.jurisdiction)
        statement = insert(projections).values(
            agency_id=agreement.agency_id,
            foreigner_id=snapshot.foreigner_id,
            version=snapshot.version,
            agreement_version=agreement.version,
            visible=visible,
            record=redact(snapshot, agreement.allowed) if visible else None,
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[projections.c.agency_id, projections.c.foreigner_id],
                set_={
                    "version": statement.excluded.version,
                    "agreement_version": statement.excluded.agreement_version,
                    "visible": statement.excluded.visible,
                    "record": statement.excluded.record,
                    "updated_at": func.now(),
                },
                # Only newer versions: a redelivered or overtaken event is a no-op.
                where=projections.c.version < statement.excluded.version,
            )
        )
