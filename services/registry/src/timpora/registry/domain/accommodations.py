"""Accommodation providers and the guests they report (APOA, UU 6/2011 art. 72).

A provider is registered once (name, address, village); its reports are stays of the guests it names.
A guest the registry already holds becomes a stay on their record at once (an event, routed to the
hotel's area as well as the guest's residence). A guest it does not know yet is kept as an unmatched
report, published nowhere, until immigration links it to a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.events.payloads import ForeignerSnapshot, PresenceStatus
from timpora.registry import repository as repo
from timpora.registry.domain import changes
from timpora.registry.domain.areas import Area
from timpora.registry.domain.changes import ChangeContext
from timpora.registry.domain.commands import AccommodationIn, LinkIn, StayIn, StayReportIn
from timpora.registry.domain.errors import ConflictError, InvalidChangeError, NotFoundError, RegistryError
from timpora.registry.models import accommodations, unmatched_stays


@dataclass(frozen=True, slots=True)
class GuestReported:
    """A stay report's outcome: the stay on a known person's record, or a report kept unmatched."""

    snapshot: ForeignerSnapshot | None
    stay_id: UUID | None
    report_id: UUID | None
    #: The version to answer as the ETag: the person's, only to their own office (else the report's, 1).
    version: int = 1


#: Why a guest report about a person of another office's area is refused: nothing from their record.
_GUEST_ELSEWHERE = (
    "the stay does not fit the record of this guest, whom another immigration office's area holds; "
    "check the dates reported"
)
#: An accommodation of another immigration office's area: that office registers it and takes its reports.
_ELSEWHERE = "the accommodation is in another immigration office's area: that office takes it"


async def register(session: AsyncSession, context: ChangeContext, command: AccommodationIn) -> Row[Any]:
    """A new provider; the same name in the same village is the same provider (409)."""
    if not context.holds(command.village_code):
        raise InvalidChangeError(_ELSEWHERE, field=("body", "village_code"))
    statement = (
        pg_insert(accommodations)
        .values(
            id=uuid4(),
            name=command.name,
            name_key=command.name.casefold(),
            address=command.address,
            village_code=command.village_code,
            registered_by=context.actor,
            registered_at=context.clock.now(),
        )
        .on_conflict_do_nothing(constraint="accommodations_village_name_key")
        .returning(*accommodations.c)
    )
    row = (await session.execute(statement)).first()
    if row is None:
        raise ConflictError("an accommodation of this name is registered in this village", field=("body", "name"))
    return row


async def listed(session: AsyncSession, region: str | None) -> list[Row[Any]]:
    statement = select(accommodations).order_by(accommodations.c.village_code, accommodations.c.name_key)
    if region is not None:
        statement = statement.where(repo.within(accommodations.c.village_code, (region,)))
    return list((await session.execute(statement)).all())


async def report_guest(session: AsyncSession, context: ChangeContext, command: StayReportIn) -> GuestReported:
    place = await repo.get_accommodation(session, command.accommodation_id)
    if place is None:
        raise InvalidChangeError("no accommodation with this id is registered", field=("body", "accommodation_id"))
    if not context.holds(place.village_code):  # its guests are reported to the office of its area
        raise InvalidChangeError(_ELSEWHERE, field=("body", "accommodation_id"))
    guest = command.guest
    holder = await repo.find_by_passport(session, guest.nationality, guest.passport_number)
    if holder is None and (old := await repo.find_previous_passport(session, guest.nationality, guest.passport_number)):
        holder = await repo.lock_foreigner(session, old.foreigner_id)
    # A guest the registry holds as here is matched; anyone else (unknown, or recorded as gone, which
    # immigration must look into) is kept for immigration to link, not guessed at.
    if holder is not None and holder.presence == PresenceStatus.PRESENT.value:
        # A guest of another office's area is the hotel office's to record too (see areas): the answer is ids
        # only, and a refusal names nothing from the guest's record (their arrival date, their version).
        elsewhere = not await changes.in_area(session, context, holder)
        try:
            snapshot, stay_id = await changes.report_stay(session, context, holder.id, _stay(command), guest=True)
        except RegistryError as error:
            if not elsewhere:
                raise
            raise type(error)(_GUEST_ELSEWHERE, field=error.field) from None
        version = 1 if elsewhere else snapshot.version
        return GuestReported(snapshot=snapshot, stay_id=stay_id, report_id=None, version=version)
    report_id = uuid4()
    await repo.insert_row(
        session,
        unmatched_stays,
        {
            "id": report_id,
            "accommodation_id": command.accommodation_id,
            "full_name": guest.full_name,
            "nationality": guest.nationality,
            "passport_number": guest.passport_number,
            "check_in": command.check_in,
            "check_out": command.check_out,
            "planned_check_out": command.planned_check_out,
            "reported_by": context.actor,
            "reported_at": context.clock.now(),
        },
    )
    return GuestReported(snapshot=None, stay_id=None, report_id=report_id)


def _stay(command: StayReportIn) -> StayIn:
    return StayIn(
        accommodation_id=command.accommodation_id,
        check_in=command.check_in,
        check_out=command.check_out,
        planned_check_out=command.planned_check_out,
    )


async def unmatched(session: AsyncSession, area: Area | None) -> list[Row[Any]]:
    """The reports not linked yet, of accommodations in ``area`` (None: every office's)."""
    statement = (
        select(unmatched_stays, accommodations.c.name.label("accommodation_name"), accommodations.c.village_code)
        .join(accommodations, accommodations.c.id == unmatched_stays.c.accommodation_id)
        .where(unmatched_stays.c.foreigner_id.is_(None))
        .order_by(unmatched_stays.c.reported_at, unmatched_stays.c.id)
    )
    if area is not None:
        statement = statement.where(repo.within(accommodations.c.village_code, area.codes))
    return list((await session.execute(statement)).all())


async def link(
    session: AsyncSession, context: ChangeContext, report_id: UUID, command: LinkIn
) -> tuple[ForeignerSnapshot, UUID]:
    """Immigration's decision that an unmatched report was about this person: it becomes their stay."""
    report = (
        await session.execute(
            select(unmatched_stays, accommodations.c.village_code)
            .join(accommodations, accommodations.c.id == unmatched_stays.c.accommodation_id)
            .where(unmatched_stays.c.id == report_id)
            .with_for_update(of=unmatched_stays)
        )
    ).first()
    if report is None or not context.holds(report.village_code):  # another office's report: as if missing
        raise NotFoundError("no such stay report", field=("path", "report_id"))
    if report.foreigner_id is not None:
        raise ConflictError("the report is linked already", field=("path", "report_id"))
    stay_in = StayIn(
        accommodation_id=report.accommodation_id,
        check_in=report.check_in,
        check_out=report.check_out,
        planned_check_out=report.planned_check_out,
    )
    snapshot, stay_id = await changes.report_stay(session, context, command.foreigner_id, stay_in)
    now: datetime = context.clock.now()
    await session.execute(
        update(unmatched_stays)
        .where(unmatched_stays.c.id == report_id)
        .values(foreigner_id=command.foreigner_id, stay_id=stay_id, linked_by=context.actor, linked_at=now)
    )
    return snapshot, stay_id
