"""Every change to a foreigner's record, as one function each.

Each runs inside the caller's transaction and follows the same steps: lock the foreigner's row,
check the optimistic-concurrency version and the registry's rules, write the change, bump the
version, and append the event that reports it (history + outbox). Nothing is published here: the
outbox relay does that after the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.clock import Clock
from timpora.common.events import new_event
from timpora.common.events.payloads import (
    AccommodationStay,
    Contract,
    EnforcementRecorded,
    ExitPermitIssued,
    ForeignerArrived,
    ForeignerDeparted,
    ForeignerDeported,
    ForeignerSnapshot,
    ForeignerUpdated,
    Movement,
    OverstayFeePayment,
    Passport,
    Permit,
    PermitConverted,
    PermitEndReason,
    PermitExtended,
    PermitIssued,
    PermitOverstayFeePaid,
    PermitRevoked,
    PermitStatus,
    PermitType,
    PresenceStatus,
    ReEntryBan,
    ReEntryBanImposed,
    ReEntryPermitGranted,
    Residence,
    ResidenceReported,
    Sponsor,
    StayReported,
    Visa,
)
from timpora.common.settings import OverstaySettings
from timpora.common.standing import ENDS_ON_EXIT, OPEN, OVERSTAYABLE, local_today, overstay
from timpora.registry import repository as repo
from timpora.registry.domain.areas import Area
from timpora.registry.domain.commands import (
    ArrivalIn,
    BanIn,
    CheckOutIn,
    ConversionIn,
    DepartureIn,
    DeportationIn,
    EnforcementIn,
    ExitPermitIn,
    ExtensionIn,
    ForeignerPatch,
    OverstayFeeIn,
    PassportIn,
    PassportRenewalIn,
    PermitIn,
    ReEntryPermitIn,
    ResidenceIn,
    RevocationIn,
    StayIn,
)
from timpora.registry.domain.errors import ConflictError, InvalidChangeError, NotFoundError, StaleVersionError
from timpora.registry.models import enforcement_actions, movements, permits, previous_passports, residences, stays

#: A permit a change can still act on (extend, revoke, settle): open, or overstayed by someone present.
LIVE = OVERSTAYABLE


@dataclass(frozen=True, slots=True)
class ChangeContext:
    """Who makes the change, when, and which version of the record they saw (``If-Match``)."""

    actor: str
    clock: Clock
    source: str
    #: The registry topic the change's event is published on.
    topic: str
    expected_version: int | None = None
    #: How overstays are counted and settled (the fee, its limit and legal basis).
    overstay: OverstaySettings = field(default_factory=OverstaySettings)
    #: The area of the operator's immigration office (None: every office's); see :mod:`.areas`.
    area: Area | None = None

    def holds(self, place: str | None) -> bool:
        """Whether a person at ``place`` is within the operator's area."""
        return self.area is None or self.area.holds(place)


def jurisdiction_of(residence_village: str | None, stay_village: str | None, *, stay_open: bool) -> str | None:
    """Where a person belongs: where they live, else where they are staying now, else nowhere yet."""
    if residence_village is not None:
        return residence_village
    return stay_village if stay_open else None


def jurisdiction_of_snapshot(snapshot: ForeignerSnapshot) -> str | None:
    return jurisdiction_of(
        snapshot.residence.village_code if snapshot.residence else None,
        snapshot.stay.village_code if snapshot.stay else None,
        stay_open=snapshot.stay is not None and snapshot.stay.check_out is None,
    )


def permit_from_row(row: Row[Any]) -> Permit:
    return repo.permit_from_mapping(row._mapping)


async def _record(
    session: AsyncSession,
    context: ChangeContext,
    foreigner_id: UUID,
    version: int,
    build: Callable[[ForeignerSnapshot, str | None], Contract],
    *,
    where: str | None = None,
    written: ForeignerSnapshot | None = None,
) -> ForeignerSnapshot:
    """Appends the event ``build`` makes of the new snapshot; it belongs to ``where`` if given (a departure
    belongs to the place left, even when leaving ended the stay that made it theirs), else to the snapshot's
    place. The snapshot is read back from what the change wrote, unless the change has it whole (``written``: a
    new person, whose every part the change itself wrote), which saves a round trip on the commonest write."""
    snapshot = written if written is not None else await repo.load_snapshot(session, foreigner_id)
    jurisdiction = where or jurisdiction_of_snapshot(snapshot)
    event = new_event(
        build(snapshot, jurisdiction), source=context.source, subject=str(foreigner_id), time=context.clock.now()
    )
    await repo.append_event(session, event, topic=context.topic, actor=context.actor, version=version)
    return snapshot


async def _locked(
    session: AsyncSession,
    context: ChangeContext,
    foreigner_id: UUID,
    *,
    unless_gone: str | None = None,
) -> Row[Any]:
    """The person's row, locked, at the version the caller saw; with ``unless_gone``, refused (saying so) for
    someone who has left. Someone outside the operator's area is not found, exactly as if missing, before
    anything else about them is said."""
    row, _ = await _locked_moving(session, context, foreigner_id, unless_gone=unless_gone, moving_to=None)
    return row


async def _locked_moving(
    session: AsyncSession,
    context: ChangeContext,
    foreigner_id: UUID,
    *,
    unless_gone: str | None,
    moving_to: str | None,
) -> tuple[Row[Any], bool]:
    """:func:`_locked` for a change that may bring a person of another area into the operator's (``moving_to``:
    where it puts them), and whether the person is already in the area — worked out once here, as it may take
    a query, and passed on to the checks that say more to the office whose person it is."""
    row = await repo.lock_foreigner(session, foreigner_id)
    if await in_area(session, context, row):
        _check_version(row, context)
        if unless_gone is not None:
            _require_present(row, unless_gone)
        return row, True
    if moving_to is None or not context.holds(moving_to):
        raise NotFoundError("no such foreigner", field=("path", "foreigner_id"))
    # Let in only by where the change puts them: refusals say nothing from the record (its version, its dates).
    if context.expected_version is not None and context.expected_version != row.version:
        raise StaleVersionError(OUTSIDER_REFUSED, field=("header", "If-Match"))
    if unless_gone is not None and row.presence != PresenceStatus.PRESENT.value:
        raise InvalidChangeError(OUTSIDER_REFUSED, field=("path", "foreigner_id"))
    return row, False


async def in_area(session: AsyncSession, context: ChangeContext, row: Row[Any]) -> bool:
    """Whether the person of ``row`` is within the operator's area (see :mod:`.areas`): by where they belong, else
    where they lived, else the village of their last stay; someone who never had a place is every office's."""
    if context.area is None:
        return True
    place = row.jurisdiction or row.residence_village_code
    if place is None and row.stay_id is not None:
        place = await repo.stay_village(session, row.stay_id)
    return context.holds(place)


#: Why a change of another area's person, let in only by where it puts them, is refused: nothing from the record.
OUTSIDER_REFUSED = (
    "the change does not fit the record of this person, whom another immigration office's area holds; "
    "that office can say why"
)
#: What an operator is told of a passport held by a person of another office's area: that much, and no more.
ANOTHER_AREA = "this passport is a person's of another immigration office's area: that office records the change"


def _check_version(row: Row[Any], context: ChangeContext) -> None:
    if context.expected_version is not None and context.expected_version != row.version:
        raise StaleVersionError(
            f"the record is at version {row.version}, not {context.expected_version}: reload it and try again",
            field=("header", "If-Match"),
        )


def _require_present(row: Row[Any], what: str) -> None:
    if row.presence != PresenceStatus.PRESENT.value:
        raise InvalidChangeError(
            f"{what}: the person departed on {row.departure_on}; record an arrival first",
            field=("path", "foreigner_id"),
        )


def _not_before_arrival_quietly(row: Row[Any], day: date, field: tuple[str, ...], *, ours: bool) -> None:
    """:func:`_not_before_arrival`, saying the arrival's date only to the office whose person it is (``ours``)."""
    if ours:
        _not_before_arrival(row, day, field)
    elif row.arrival_on is not None and day < row.arrival_on:
        raise InvalidChangeError(OUTSIDER_REFUSED, field=field)


def _not_before_arrival(row: Row[Any], day: date, field: tuple[str, ...]) -> None:
    if row.arrival_on is not None and day < row.arrival_on:
        raise InvalidChangeError(f"{field[-1]} is before the arrival on {row.arrival_on}", field=field)


async def _bump(
    session: AsyncSession, row: Row[Any], context: ChangeContext, staying_at: str | None = None, /, **values: object
) -> int:
    # Every change of a person passes here: the last word on the operator's area, whatever checked it before. The
    # person's place before the change or after it must be in the area (moving in, or away, is the office's), or
    # the stay it records (a hotel in the area reports its guest, wherever they live). Someone left with no place
    # (None) by a change does not make it the office's.
    after = cast("str | None", values.get("jurisdiction", row.jurisdiction))
    # The cheap tests first: where the person was may take a query (the village of their last stay).
    if not (
        (after is not None and context.holds(after))
        or (staying_at is not None and context.holds(staying_at))
        or await in_area(session, context, row)
    ):
        raise NotFoundError("no such foreigner", field=("path", "foreigner_id"))
    version = int(row.version) + 1
    await repo.update_foreigner(
        session, row.id, {"version": version, **repo.now_column_values(context.actor, context.clock.now()), **values}
    )
    return version


async def record_arrival(
    session: AsyncSession, context: ChangeContext, command: ArrivalIn
) -> tuple[ForeignerSnapshot, bool]:
    """The arrival, and whether it created the foreigner (False: matched by nationality + passport)."""
    sponsor = await repo.upsert_sponsor(session, command.sponsor) if command.sponsor else None
    sponsor_id = sponsor.sponsor_id if sponsor else None
    existing, renewed = await _returning(session, context, command)
    identity = {
        "full_name": command.full_name,
        "sex": command.sex.value,
        "date_of_birth": command.date_of_birth,
        "passport_country": command.passport.issuing_country,
        "passport_expires_on": command.passport.expires_on,
        "presence": PresenceStatus.PRESENT.value,
        "arrival_port": command.port,
        "arrival_on": command.arrived_on,
        # The visa is the entry's: an arrival that names none leaves none from an earlier entry.
        "visa_index": command.visa.index if command.visa else None,
        "visa_number": command.visa.number if command.visa else None,
    }
    # A returning person keeps their occupation and sponsor unless the arrival gives new ones.
    optional: dict[str, object] = {}
    if "occupation" in command.model_fields_set:
        optional["occupation"] = command.occupation
    if sponsor_id is not None:
        optional["sponsor_id"] = sponsor_id
    written: ForeignerSnapshot | None = None
    if existing is None:
        foreigner_id, version = uuid4(), 1
        written = new_person(foreigner_id, command, sponsor)
        await repo.insert_foreigner(
            session,
            {
                "id": foreigner_id,
                "version": version,
                "nationality": command.nationality,
                "passport_number": command.passport.number,
                "occupation": command.occupation,
                "sponsor_id": sponsor_id,
                "created_by": context.actor,
                **repo.now_column_values(context.actor, context.clock.now()),
                **identity,
            },
        )
    else:
        _check_version(existing, context)
        _check_return(existing, command)
        foreigner_id = existing.id
        if renewed:  # the passport's country and expiry are among the identity columns already
            columns = await _replace_passport(session, context, existing, command.passport, command.arrived_on)
            optional["passport_number"] = columns["passport_number"]
        optional |= await _settle_permit_on_return(session, existing, command.arrived_on)
        version = await _bump(session, existing, context, **identity, **optional)
    arrival = Movement(port=command.port, on=command.arrived_on)
    await repo.insert_row(
        session,
        movements,
        {
            "id": uuid4(),
            "foreigner_id": foreigner_id,
            "kind": "arrival",
            "port": command.port,
            "on": command.arrived_on,
            "recorded_by": context.actor,
        },
    )
    snapshot = await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: ForeignerArrived(foreigner=s, jurisdiction=j, arrival=arrival),
        written=written,
    )
    return snapshot, existing is None


def new_person(
    foreigner_id: UUID,
    command: ArrivalIn,
    sponsor: Sponsor | None,
    *,
    residence: Residence | None = None,
    permit: Permit | None = None,
) -> ForeignerSnapshot:
    """A person an arrival creates (or an imported record, with its residence and permit), as the registry holds
    them once written: repo.load_snapshot would read back exactly this (tests/registry/test_api_changes.py compares
    the two for arrivals of every kind, tests/registry/test_bulk_import.py for imported records).

    Built with model_construct: every value comes from a validated command or the database's own row (the sponsor
    as recorded), and validating them again would cost as much as the rest of an import together. Every field is
    given, those a new person has none of too: left out, model_construct would call a default_factory, and pydantic
    works out its signature first (half the import's Python time when measured); and a field added to the snapshot
    is refused by a test until it is given here."""
    return ForeignerSnapshot.model_construct(
        foreigner_id=foreigner_id,
        version=1,
        full_name=command.full_name,
        sex=command.sex,
        date_of_birth=command.date_of_birth,
        nationality=command.nationality,
        passport=Passport.model_construct(
            number=command.passport.number,
            issuing_country=command.passport.issuing_country,
            expires_on=command.passport.expires_on,
        ),
        previous_passports=[],
        occupation=command.occupation,
        sponsor=sponsor,
        residence=residence,
        stay=None,
        permit=permit,
        presence=PresenceStatus.PRESENT,
        arrival=Movement.model_construct(port=command.port, on=command.arrived_on),
        visa=Visa.model_construct(index=command.visa.index, number=command.visa.number) if command.visa else None,
        departure=None,
        reentry_ban=None,
    )


async def _returning(session: AsyncSession, context: ChangeContext, command: ArrivalIn) -> tuple[Row[Any] | None, bool]:
    """The person this arrival is (locked), matched by any of their passports, and whether it renews one. A
    person of another office's area is refused as soon as found, before anything about them is compared or said
    (that office records their return; saying so keeps a second record of the same person from being made)."""

    async def ours(row: Row[Any], field: tuple[str, ...]) -> None:
        if not await in_area(session, context, row):
            raise ConflictError(ANOTHER_AREA, field=field)

    existing = await repo.find_by_passport(session, command.nationality, command.passport.number)
    if existing is not None:
        await ours(existing, ("body", "passport", "number"))
        if command.previous_passport_number is not None:
            # Both passports must be this one person's: never attach an arrival to whoever holds the new number.
            earlier = await repo.find_previous_passport(session, command.nationality, command.previous_passport_number)
            if earlier is None or earlier.foreigner_id != existing.id:
                raise ConflictError(
                    "the passport and previous_passport_number are recorded for different people",
                    field=("body", "previous_passport_number"),
                )
        return existing, False
    replaced = await repo.find_previous_passport(session, command.nationality, command.passport.number)
    if replaced is not None:
        await ours(await repo.lock_foreigner(session, replaced.foreigner_id), ("body", "passport", "number"))
        # A second person for a passport the registry knows was renewed would split one life in two.
        raise ConflictError(
            f"this passport was replaced by a newer one on {replaced.replaced_on}; "
            "record the arrival on the current passport",
            field=("body", "passport", "number"),
        )
    if command.previous_passport_number is None:
        return None, False
    existing = await repo.find_by_passport(session, command.nationality, command.previous_passport_number)
    if existing is None:
        raise InvalidChangeError(
            "nobody of this nationality holds this passport", field=("body", "previous_passport_number")
        )
    await ours(existing, ("body", "previous_passport_number"))
    if existing.date_of_birth != command.date_of_birth:
        raise InvalidChangeError(
            "date_of_birth differs from that of the previous passport's holder", field=("body", "date_of_birth")
        )
    return existing, True


def _check_return(existing: Row[Any], command: ArrivalIn) -> None:
    if existing.presence == PresenceStatus.PRESENT.value:
        raise ConflictError(
            f"this passport holder is already recorded as present since {existing.arrival_on}; "
            "record their departure first",
            field=("body", "passport", "number"),
        )
    if existing.ban_until is not None and existing.ban_since <= command.arrived_on <= existing.ban_until:
        raise ConflictError(
            f"a re-entry ban ({existing.ban_reference}) is in force until {existing.ban_until}",
            field=("body", "arrived_on"),
        )
    if existing.departure_on is not None and command.arrived_on < existing.departure_on:
        raise InvalidChangeError(
            f"arrived_on is before the last departure on {existing.departure_on}", field=("body", "arrived_on")
        )


async def _replace_passport(
    session: AsyncSession, context: ChangeContext, row: Row[Any], passport: PassportIn, replaced_on: date
) -> dict[str, object]:
    """Keep the current passport as a previous one; the columns that make ``passport`` the current one."""
    if passport.number == row.passport_number:
        raise InvalidChangeError("this is the current passport already", field=("body", "passport", "number"))
    if await repo.passport_held(session, row.nationality, passport.number):
        raise ConflictError(
            "this passport number is already recorded for a person of this nationality",
            field=("body", "passport", "number"),
        )
    await repo.insert_row(
        session,
        previous_passports,
        {
            "id": uuid4(),
            "foreigner_id": row.id,
            "nationality": row.nationality,
            "number": row.passport_number,
            "issuing_country": row.passport_country,
            "expires_on": row.passport_expires_on,
            "replaced_on": replaced_on,
            "recorded_by": context.actor,
        },
    )
    return {
        "passport_number": passport.number,
        "passport_country": passport.issuing_country,
        "passport_expires_on": passport.expires_on,
    }


async def renew_passport(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, command: PassportRenewalIn
) -> ForeignerSnapshot:
    """A new passport for the same person (renewed here or abroad); the old number stays findable."""
    row = await _locked(session, context, foreigner_id)
    columns = await _replace_passport(session, context, row, command.passport, command.renewed_on)
    version = await _bump(session, row, context, **columns)
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: ForeignerUpdated(foreigner=s, jurisdiction=j, changed_fields=["passport"]),
    )


async def _settle_permit_on_return(session: AsyncSession, row: Row[Any], arrived_on: date) -> dict[str, object]:
    """A returning person does not come back on a permit that is over: it stops being their current one.

    A visit permit ended when they left (UU 6/2011: it ends on exit); one recorded before the registry
    knew that is ended now, as of the departure. Any other permit that expired while they were abroad
    lapsed there: not one day of it was overstayed. One they overstayed before leaving stays expired.
    A permit still valid on the day of return, whose re-entry permit is too, stays theirs; one whose re-entry
    permit ran out abroad lapsed there.
    """
    if row.current_permit_id is None:
        return {}
    permit = await repo.lock_permit(session, row.id, row.current_permit_id)
    if permit.status in OPEN:
        if permit.type in ENDS_ON_EXIT:
            await _end_permit(session, permit.id, PermitEndReason.EXIT, row.departure_on)
        elif permit.erp_expires_on is not None and permit.erp_expires_on < arrived_on <= permit.expires_on:
            await _end_permit(session, permit.id, PermitEndReason.LAPSED_ABROAD, permit.erp_expires_on)
        elif permit.expires_on >= arrived_on:
            return {}
        elif row.departure_on is None or permit.expires_on >= row.departure_on:
            await _end_permit(session, permit.id, PermitEndReason.LAPSED_ABROAD, permit.expires_on)
        else:  # recorded before departures settled their permits: it was overstayed before they left
            await repo.update_permit(session, permit.id, {"status": PermitStatus.EXPIRED.value})
    return {"current_permit_id": None}


async def _settle_permit_on_departure(
    session: AsyncSession, foreigner_id: UUID, permit_id: UUID, departed_on: date
) -> None:
    """What a departure does to the permit, by its date against the permit's last valid day.

    Left after it: the overstay happened and stays on record (the scheduler may not have marked it yet),
    whatever the permit. Left by then: the permit ends with the exit (UU 6/2011: a visit permit always, an
    ITAS or ITAP unless a re-entry permit valid that day lets its holder come back on it, and always after an
    exit permit only); a permit the scheduler marked expired before this departure was entered was not
    overstayed after all.
    """
    permit = await repo.lock_permit(session, foreigner_id, permit_id)
    if permit.status not in LIVE:
        return
    if permit.expires_on < departed_on:
        if permit.status != PermitStatus.EXPIRED.value:
            await repo.update_permit(session, permit.id, {"status": PermitStatus.EXPIRED.value})
    elif not _may_come_back_on(permit, departed_on):
        await _end_permit(session, permit.id, PermitEndReason.EXIT, departed_on)
    elif permit.status == PermitStatus.EXPIRED.value:
        await repo.update_permit(session, permit.id, {"status": PermitStatus.ACTIVE.value})


def _may_come_back_on(permit: Row[Any], departed_on: date) -> bool:
    """An ITAS or ITAP with a re-entry permit valid on the day of departure, and no exit permit only."""
    return (
        permit.type not in ENDS_ON_EXIT
        and permit.epo_number is None
        and permit.erp_expires_on is not None
        and permit.erp_expires_on >= departed_on
    )


async def _end_permit(session: AsyncSession, permit_id: UUID, reason: PermitEndReason, on: date | None) -> None:
    await repo.update_permit(
        session, permit_id, {"status": PermitStatus.ENDED.value, "end_reason": reason.value, "ended_on": on}
    )


async def issue_permit(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, command: PermitIn
) -> ForeignerSnapshot:
    row = await _locked(session, context, foreigner_id, unless_gone="no permit for a person who has left")
    if row.current_permit_id is not None:
        # A new permit does not wipe out an overstay on the current one: it is settled (fee paid) first, and
        # past the days a fee can settle, no permit is given (UU 6/2011 art. 78).
        current = await repo.lock_permit(session, foreigner_id, row.current_permit_id)
        # Revoking an overstayed permit first changes nothing: the days overstayed are still to settle.
        if current.status in LIVE or current.status == PermitStatus.REVOKED.value:
            _check_overstay_settled(
                row, current, context, new_expiry=command.expires_on, field=("path", "foreigner_id"), doing="replaced"
            )
    if await repo.permit_number_taken(session, command.number):
        raise ConflictError("this permit number is already registered", field=("body", "number"))
    sponsor_id = (await repo.upsert_sponsor(session, command.sponsor)).sponsor_id if command.sponsor else row.sponsor_id
    permit_id = uuid4()
    await repo.insert_row(
        session,
        permits,
        {
            "id": permit_id,
            "foreigner_id": foreigner_id,
            "number": command.number,
            "type": command.type.value,
            "purpose": command.purpose.value if command.purpose else None,
            "issued_on": command.issued_on,
            "expires_on": command.expires_on,
            "status": PermitStatus.ACTIVE.value,
            "sponsor_id": sponsor_id,
            "version": 1,
        },
    )
    version = await _bump(session, row, context, current_permit_id=permit_id)
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: PermitIssued(foreigner=s, jurisdiction=j, permit=_required(s.permit)),
    )


def _required(permit: Permit | None) -> Permit:
    if permit is None:
        raise AssertionError("the snapshot lost the permit the change just wrote")
    return permit


async def extend_permit(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, permit_id: UUID, command: ExtensionIn
) -> ForeignerSnapshot:
    row = await _locked(session, context, foreigner_id, unless_gone="no extension for a person who has left")
    permit = await repo.lock_permit(session, foreigner_id, permit_id)
    if permit.status not in LIVE:
        raise ConflictError(
            f"a {permit.status} permit cannot be extended; issue a new one", field=("path", "permit_id")
        )
    if command.expires_on <= permit.expires_on:
        raise InvalidChangeError(
            f"expires_on must be after the current expiry {permit.expires_on}", field=("body", "expires_on")
        )
    if permit.epo_number is not None:
        raise ConflictError(
            f"the holder has an exit permit only and must leave by {permit.epo_leave_by}", field=("path", "permit_id")
        )
    await _check_visit_extensible(session, row, permit)
    _check_overstay_settled(row, permit, context, new_expiry=command.expires_on)
    await repo.update_permit(
        session,
        permit_id,
        {
            "expires_on": command.expires_on,
            "status": PermitStatus.EXTENDED.value,
            # A new permit version re-arms the expiry reminders for the new date.
            "version": int(permit.version) + 1,
            # What was paid settled the overstay before this date; a later one is counted from the new date.
            "fee_paid_idr": None,
            "fee_receipt_number": None,
            "fee_paid_on": None,
            "fee_days_covered": None,
            "updated_at": context.clock.now(),
        },
    )
    version = await _bump(session, row, context, current_permit_id=permit_id)
    previous = permit.expires_on
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: PermitExtended(
            foreigner=s, jurisdiction=j, permit=_required(s.permit), previous_expires_on=previous
        ),
    )


#: Visas whose visit permit cannot be extended at all, and those extended once only.
NOT_EXTENSIBLE_VISAS = frozenset({"A1"})
EXTENDED_ONCE_VISAS = frozenset({"B1"})


async def _check_visit_extensible(session: AsyncSession, row: Row[Any], permit: Row[Any]) -> None:
    """A visa-exempt visit (A1) is not extended; one on a visa on arrival (B1) once (Kepmen Imipas 2025)."""
    if permit.type not in ENDS_ON_EXIT:
        return
    if row.visa_index in NOT_EXTENSIBLE_VISAS:
        raise ConflictError("a visa-exempt visit (A1) cannot be extended", field=("path", "permit_id"))
    # Counted from the record of extensions, not the status: the scheduler marks an extended permit expired.
    if row.visa_index in EXTENDED_ONCE_VISAS and await repo.extensions_of(session, row.id, permit.id):
        raise ConflictError(
            "a visit on a visa on arrival (B1) is extended once only; it was extended already",
            field=("path", "permit_id"),
        )


def _check_overstay_settled(
    row: Row[Any],
    permit: Row[Any],
    context: ChangeContext,
    *,
    new_expiry: date,
    field: tuple[str, ...] = ("path", "permit_id"),
    doing: str = "extended",
) -> None:
    """An overstayed permit is extended only once the fee for every day overstayed is paid, and never
    after the days a fee can settle (UU 6/2011 art. 78): then deportation and a re-entry ban are due."""
    today = local_today(context.clock, row.jurisdiction)
    days = (today - permit.expires_on).days
    if days <= 0:
        return
    owed = overstay(days, context.overstay, days_paid=permit.fee_days_covered or 0)
    if owed.deportation_due:
        raise ConflictError(
            f"overstayed {days} days, more than {owed.fee_limit_days}: the fee no longer settles it and the "
            f"permit cannot be {doing}; deportation and a re-entry ban are due",
            field=field,
        )
    if owed.fee_due_idr:
        raise ConflictError(
            f"overstayed {days} days: the permit cannot be {doing} until the overstay fee of "
            f"Rp{owed.fee_due_idr:,} is recorded as paid ({owed.legal_basis})".replace(",", "."),
            field=field,
        )
    if new_expiry < today:
        raise InvalidChangeError(
            f"expires_on must not be before today ({today}) for an overstayed permit", field=("body", "expires_on")
        )


async def pay_overstay_fee(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, permit_id: UUID, command: OverstayFeeIn
) -> ForeignerSnapshot:
    """The fee for the days overstayed until ``paid_on``; a later payment covers the days since the last."""
    row = await _locked(session, context, foreigner_id, unless_gone="no overstay fee for a person who has left")
    permit = await repo.lock_permit(session, foreigner_id, permit_id)
    if permit.status not in LIVE or permit.id != row.current_permit_id:
        raise ConflictError(
            f"a {permit.status} permit that is not the person's current one has no fee to pay",
            field=("path", "permit_id"),
        )
    today = local_today(context.clock, row.jurisdiction)
    if command.paid_on > today:
        raise InvalidChangeError(f"paid_on is after today ({today})", field=("body", "paid_on"))
    days = (command.paid_on - permit.expires_on).days
    if days <= 0:
        raise InvalidChangeError(
            f"the permit was valid until {permit.expires_on}: nothing was overstayed on paid_on",
            field=("body", "paid_on"),
        )
    covered = permit.fee_days_covered or 0
    if days <= covered:
        raise ConflictError(f"the fee for {covered} days is paid already", field=("body", "paid_on"))
    owed = overstay(days, context.overstay, days_paid=covered)
    if owed.fee_due_idr is None:
        raise ConflictError(
            f"overstayed {days} days, more than {owed.fee_limit_days}: the fee no longer settles it; "
            "deportation and a re-entry ban are due",
            field=("body", "paid_on"),
        )
    if command.amount_idr < owed.fee_due_idr:
        raise InvalidChangeError(
            f"Rp{owed.fee_due_idr:,} is due for {days - covered} days at Rp{owed.fee_per_day_idr:,} a day".replace(
                ",", "."
            ),
            field=("body", "amount_idr"),
        )
    await repo.update_permit(
        session,
        permit_id,
        {
            "fee_paid_idr": (permit.fee_paid_idr or 0) + command.amount_idr,
            "fee_receipt_number": command.receipt_number,
            "fee_paid_on": command.paid_on,
            "fee_days_covered": days,
            "updated_at": context.clock.now(),
        },
    )
    version = await _bump(session, row, context)
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: PermitOverstayFeePaid(
            foreigner=s, jurisdiction=j, permit=_required(s.permit), payment=_paid(s.permit)
        ),
    )


def _paid(permit: Permit | None) -> OverstayFeePayment:
    if permit is None or permit.overstay_fee is None:
        raise AssertionError("the snapshot lost the payment the change just wrote")
    return permit.overstay_fee


async def record_enforcement(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, command: EnforcementIn
) -> ForeignerSnapshot:
    row = await _locked(session, context, foreigner_id, unless_gone="no enforcement action for a person who has left")
    _not_before_arrival(row, command.on, ("body", "on"))
    await repo.insert_row(
        session,
        enforcement_actions,
        {"id": uuid4(), "foreigner_id": foreigner_id, "recorded_by": context.actor, **command.model_dump()},
    )
    version = await _bump(session, row, context)
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: EnforcementRecorded(
            foreigner=s, jurisdiction=j, action=command.action, on=command.on, reference=command.reference
        ),
    )


async def impose_ban(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, command: BanIn
) -> ForeignerSnapshot:
    """A re-entry ban, whether the person is still here (it applies once they leave) or gone."""
    row = await _locked(session, context, foreigner_id)
    version = await _bump(
        session, row, context, ban_since=command.since, ban_until=command.until, ban_reference=command.reference
    )
    ban = ReEntryBan(since=command.since, until=command.until, reference=command.reference)
    return await _record(
        session, context, foreigner_id, version, lambda s, j: ReEntryBanImposed(foreigner=s, jurisdiction=j, ban=ban)
    )


#: What a permit may become (UU 6/2011 art. 52-54): a visit permit an ITAS, an ITAS an ITAP.
CONVERSIONS = {
    PermitType.VISIT: frozenset({PermitType.ITAS}),
    PermitType.VISA_ON_ARRIVAL: frozenset({PermitType.ITAS}),
    PermitType.ITAS: frozenset({PermitType.ITAP}),
}


async def convert_permit(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, permit_id: UUID, command: ConversionIn
) -> ForeignerSnapshot:
    """One change, one event: the old permit ends (converted) and the new one begins; reminders follow the new
    one only (the old is out of every scan once ended)."""
    row = await _locked(session, context, foreigner_id, unless_gone="no conversion for a person who has left")
    old = await repo.lock_permit(session, foreigner_id, permit_id)
    if old.status not in OPEN or old.id != row.current_permit_id:
        raise ConflictError(f"a {old.status} permit cannot be converted", field=("path", "permit_id"))
    if old.expires_on < local_today(context.clock, row.jurisdiction):
        raise ConflictError("the permit is overstayed: settle the overstay first", field=("path", "permit_id"))
    if command.type not in CONVERSIONS.get(PermitType(old.type), frozenset()):
        raise ConflictError(f"a {old.type} permit cannot become a {command.type} permit", field=("body", "type"))
    today = local_today(context.clock, row.jurisdiction)
    if old.epo_number is not None:
        raise ConflictError(
            "the holder has an exit permit only: the permit is not converted", field=("path", "permit_id")
        )
    # The new permit carries on from the old without a gap or an overlap that could hide or invent an overstay.
    if not old.issued_on <= command.issued_on <= min(today, old.expires_on + timedelta(days=1)):
        raise InvalidChangeError(
            f"issued_on must be between the old permit's issue on {old.issued_on} and today, and no later than the "
            f"day after its expiry {old.expires_on}",
            field=("body", "issued_on"),
        )
    if command.expires_on < today:
        raise InvalidChangeError(f"expires_on is before today ({today})", field=("body", "expires_on"))
    if await repo.permit_number_taken(session, command.number):
        raise ConflictError("this permit number is already registered", field=("body", "number"))
    sponsor_id = (await repo.upsert_sponsor(session, command.sponsor)).sponsor_id if command.sponsor else old.sponsor_id
    await _end_permit(session, old.id, PermitEndReason.CONVERTED, command.issued_on)
    previous = permit_from_row(old).model_copy(
        update={"status": PermitStatus.ENDED, "end_reason": PermitEndReason.CONVERTED, "ended_on": command.issued_on}
    )
    new_id = uuid4()
    await repo.insert_row(
        session,
        permits,
        {
            "id": new_id,
            "foreigner_id": foreigner_id,
            "number": command.number,
            "type": command.type.value,
            "purpose": command.purpose.value if command.purpose else None,
            "issued_on": command.issued_on,
            "expires_on": command.expires_on,
            "status": PermitStatus.ACTIVE.value,
            "sponsor_id": sponsor_id,
            "version": 1,
            "converted_from": old.id,
        },
    )
    version = await _bump(session, row, context, current_permit_id=new_id)
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: PermitConverted(foreigner=s, jurisdiction=j, permit=_required(s.permit), previous_permit=previous),
    )


async def grant_reentry_permit(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, permit_id: UUID, command: ReEntryPermitIn
) -> ForeignerSnapshot:
    """A re-entry permit on the current ITAS or ITAP. One granted before a departure but entered after it
    (records kept elsewhere first) takes effect as of that departure: the permit its holder left on is theirs
    again, to come back on."""
    row = await _locked(session, context, foreigner_id)
    permit = await repo.lock_permit(session, foreigner_id, permit_id)
    if permit.id != row.current_permit_id:
        raise ConflictError("only the person's current permit takes a re-entry permit", field=("path", "permit_id"))
    if permit.type in ENDS_ON_EXIT:
        raise ConflictError(
            "a visit permit ends on exit: only an ITAS or ITAP takes a re-entry permit", field=("path", "permit_id")
        )
    if permit.epo_number is not None:
        raise ConflictError("the holder has an exit permit only", field=("path", "permit_id"))
    left_on_it = (
        row.presence != PresenceStatus.PRESENT.value
        and permit.status == PermitStatus.ENDED.value
        and permit.end_reason == PermitEndReason.EXIT.value
        and permit.ended_on == row.departure_on
    )
    if permit.status not in OPEN and not left_on_it:
        raise ConflictError(f"a {permit.status} permit takes no re-entry permit", field=("path", "permit_id"))
    today = local_today(context.clock, row.jurisdiction)
    if not permit.issued_on <= command.issued_on <= today:
        raise InvalidChangeError(
            f"issued_on must be between the permit's issue on {permit.issued_on} and today", field=("body", "issued_on")
        )
    if left_on_it and not command.issued_on <= row.departure_on <= command.expires_on:
        raise InvalidChangeError(
            f"the person left on {row.departure_on}: a re-entry permit entered since must have been valid that day",
            field=("body", "issued_on"),
        )
    if command.expires_on > permit.expires_on:
        raise InvalidChangeError(
            f"expires_on is after the stay permit's own expiry {permit.expires_on}", field=("body", "expires_on")
        )
    values: dict[str, object] = {
        "erp_number": command.number,
        "erp_issued_on": command.issued_on,
        "erp_expires_on": command.expires_on,
        "updated_at": context.clock.now(),
    }
    if left_on_it:  # it did not end on that exit after all
        values |= {"status": PermitStatus.ACTIVE.value, "end_reason": None, "ended_on": None}
    await repo.update_permit(session, permit_id, values)
    version = await _bump(session, row, context)
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: ReEntryPermitGranted(foreigner=s, jurisdiction=j, permit=_required(s.permit)),
    )


async def issue_exit_permit(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, permit_id: UUID, command: ExitPermitIn
) -> ForeignerSnapshot:
    """The holder must leave by ``leave_by``: the stay ends then at the latest (reminders re-armed for that day),
    and the permit ends on their exit whatever re-entry permit they held."""
    row = await _locked(session, context, foreigner_id, unless_gone="no exit permit for a person who has left")
    permit = await repo.lock_permit(session, foreigner_id, permit_id)
    if permit.status not in LIVE or permit.id != row.current_permit_id:
        raise ConflictError(f"a {permit.status} permit takes no exit permit", field=("path", "permit_id"))
    today = local_today(context.clock, row.jurisdiction)
    if command.leave_by <= permit.issued_on or command.leave_by < today:
        raise InvalidChangeError(
            f"leave_by must be after the permit's issue on {permit.issued_on} and not before today ({today})",
            field=("body", "leave_by"),
        )
    values: dict[str, object] = {
        "epo_number": command.number,
        "epo_issued_on": command.issued_on,
        "epo_leave_by": command.leave_by,
        "updated_at": context.clock.now(),
    }
    # A permit still running ends at the latest on the day to leave by (its reminders re-armed for it); an
    # overstayed one keeps its date, and its overstay counted from it, whatever the deadline to leave.
    if permit.status in OPEN and command.leave_by < permit.expires_on:
        values |= {"expires_on": command.leave_by, "version": int(permit.version) + 1}
    await repo.update_permit(session, permit_id, values)
    version = await _bump(session, row, context)
    previous = permit.expires_on
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: ExitPermitIssued(
            foreigner=s, jurisdiction=j, permit=_required(s.permit), previous_expires_on=previous
        ),
    )


async def revoke_permit(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, permit_id: UUID, command: RevocationIn
) -> ForeignerSnapshot:
    row = await _locked(session, context, foreigner_id)
    permit = await repo.lock_permit(session, foreigner_id, permit_id)
    if permit.status not in LIVE:
        raise ConflictError(f"the permit is {permit.status} already", field=("path", "permit_id"))
    changes = {
        "status": PermitStatus.REVOKED.value,
        "revoked_reason": command.reason,
        "updated_at": context.clock.now(),
    }
    await repo.update_permit(session, permit_id, changes)
    revoked = permit_from_row(permit).model_copy(update={"status": PermitStatus.REVOKED})
    version = await _bump(session, row, context)
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: PermitRevoked(foreigner=s, jurisdiction=j, permit=revoked, reason=command.reason),
    )


async def report_residence(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, command: ResidenceIn
) -> ForeignerSnapshot:
    row, ours = await _locked_moving(
        session,
        context,
        foreigner_id,
        unless_gone="no residence report for a person who has left",
        moving_to=command.village_code,
    )
    _not_before_arrival_quietly(row, command.since, ("body", "since"), ours=ours)
    await repo.insert_row(
        session,
        residences,
        {"id": uuid4(), "foreigner_id": foreigner_id, "reported_by": context.actor, **command.model_dump()},
    )
    previous = row.residence_village_code
    version = await _bump(
        session,
        row,
        context,
        residence_address=command.address,
        residence_village_code=command.village_code,
        residence_since=command.since,
        jurisdiction=command.village_code,
    )
    residence = Residence(address=command.address, village_code=command.village_code, since=command.since)
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: ResidenceReported(
            foreigner=s, jurisdiction=j, residence=residence, previous_village_code=previous
        ),
    )


async def report_stay(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, command: StayIn, *, guest: bool = False
) -> tuple[ForeignerSnapshot, UUID]:
    """The stay; with ``guest`` (a hotel's report, answered with ids only), one in the operator's area is theirs
    to record whoever the guest is (see :mod:`.areas`). A guest of another office's area has the stay recorded as
    reported — not checked against their record, which would answer questions about it — and never made their
    current stay: where they belong stays their office's to change."""
    stay = await _stay_of(session, command)
    here = stay.village_code if guest else None
    row, ours = await _locked_moving(
        session, context, foreigner_id, unless_gone="no stay report for a person who has left", moving_to=here
    )
    if ours:
        _not_before_arrival(row, command.check_in, ("body", "check_in"))
    stay_id = uuid4()
    await repo.insert_row(
        session,
        stays,
        {"id": stay_id, "foreigner_id": foreigner_id, "reported_by": context.actor, **stay.model_dump()},
    )
    if ours and (command.check_out is None or row.stay_id is None):
        # An open stay is where the person is now; a report of a past stay only becomes the current
        # stay when there is no other, so it cannot move someone out of the hotel they are in.
        jurisdiction = jurisdiction_of(row.residence_village_code, stay.village_code, stay_open=stay.open)
        version = await _bump(session, row, context, here, stay_id=stay_id, jurisdiction=jurisdiction)
    else:
        version = await _bump(session, row, context, here)
    snapshot = await _record(
        session, context, foreigner_id, version, lambda s, j: StayReported(foreigner=s, jurisdiction=j, stay=stay)
    )
    return snapshot, stay_id


async def _stay_of(session: AsyncSession, command: StayIn) -> AccommodationStay:
    """The stay as reported, at a registered accommodation (its name and village from the register) or not."""
    dates = {
        "check_in": command.check_in,
        "check_out": command.check_out,
        "planned_check_out": command.planned_check_out,
    }
    if command.accommodation_id is None:
        if command.provider is None or command.village_code is None:
            raise AssertionError("StayIn validated that a provider and its village are given")
        return AccommodationStay(provider=command.provider, village_code=command.village_code, **dates)
    place = await repo.get_accommodation(session, command.accommodation_id)
    if place is None:
        raise InvalidChangeError("no accommodation with this id is registered", field=("body", "accommodation_id"))
    return AccommodationStay(provider=place.name, village_code=place.village_code, accommodation_id=place.id, **dates)


async def check_out(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, stay_id: UUID, command: CheckOutIn
) -> ForeignerSnapshot:
    row = await _locked(session, context, foreigner_id)
    stay = await repo.lock_stay(session, foreigner_id, stay_id)
    if stay.check_out is not None:
        raise ConflictError(f"the stay was already checked out on {stay.check_out}", field=("path", "stay_id"))
    if command.check_out < stay.check_in:
        raise InvalidChangeError(f"check_out is before the check-in on {stay.check_in}", field=("body", "check_out"))
    await repo.update_stay(session, stay_id, {"check_out": command.check_out})
    current = row.stay_id == stay_id
    jurisdiction = jurisdiction_of(row.residence_village_code, stay.village_code, stay_open=not current)
    version = await _bump(session, row, context, jurisdiction=jurisdiction if current else row.jurisdiction)
    closed = AccommodationStay(
        provider=stay.provider,
        village_code=stay.village_code,
        check_in=stay.check_in,
        check_out=command.check_out,
        accommodation_id=stay.accommodation_id,
        planned_check_out=stay.planned_check_out,
    )
    return await _record(
        session, context, foreigner_id, version, lambda s, j: StayReported(foreigner=s, jurisdiction=j, stay=closed)
    )


async def record_departure(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, command: DepartureIn
) -> ForeignerSnapshot:
    departure = Movement(port=command.port, on=command.departed_on)
    return await _leave(
        session,
        context,
        foreigner_id,
        departure,
        presence=PresenceStatus.DEPARTED,
        build=lambda s, j: ForeignerDeparted(foreigner=s, jurisdiction=j, departure=departure),
    )


async def record_deportation(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, command: DeportationIn
) -> ForeignerSnapshot:
    """A deportation carried out (UU 6/2011 art. 75): the person is no longer here, as after a departure."""
    departure = Movement(port=command.port, on=command.deported_on)
    return await _leave(
        session,
        context,
        foreigner_id,
        departure,
        presence=PresenceStatus.DEPORTED,
        build=lambda s, j: ForeignerDeported(
            foreigner=s, jurisdiction=j, departure=departure, reference=command.reference
        ),
    )


async def _leave(
    session: AsyncSession,
    context: ChangeContext,
    foreigner_id: UUID,
    departure: Movement,
    *,
    presence: PresenceStatus,
    build: Callable[[ForeignerSnapshot, str | None], Contract],
) -> ForeignerSnapshot:
    row = await _locked(session, context, foreigner_id)
    field = "departed_on" if presence is PresenceStatus.DEPARTED else "deported_on"
    if row.presence != PresenceStatus.PRESENT.value:
        raise ConflictError(f"the person already left on {row.departure_on}", field=("path", "foreigner_id"))
    if row.arrival_on is not None and departure.on < row.arrival_on:
        raise InvalidChangeError(f"{field} is before the arrival on {row.arrival_on}", field=("body", field))
    await repo.insert_row(
        session,
        movements,
        {
            "id": uuid4(),
            "foreigner_id": foreigner_id,
            "kind": "departure" if presence is PresenceStatus.DEPARTED else "deported",
            "port": departure.port,
            "on": departure.on,
            "recorded_by": context.actor,
        },
    )
    if row.current_permit_id is not None:
        await _settle_permit_on_departure(session, foreigner_id, row.current_permit_id, departure.on)
    stay_closed: dict[str, object] = {}
    if row.stay_id is not None:
        # Whoever leaves Indonesia has left their hotel too: the stay ends, and with it their place there.
        stay = await repo.lock_stay(session, foreigner_id, row.stay_id)
        if stay.check_out is None:
            await repo.update_stay(session, stay.id, {"check_out": max(stay.check_in, departure.on)})
            stay_closed = {"jurisdiction": jurisdiction_of(row.residence_village_code, None, stay_open=False)}
    version = await _bump(
        session,
        row,
        context,
        presence=presence.value,
        departure_port=departure.port,
        departure_on=departure.on,
        **stay_closed,
    )
    return await _record(session, context, foreigner_id, version, build, where=row.jurisdiction)


async def update_details(
    session: AsyncSession, context: ChangeContext, foreigner_id: UUID, command: ForeignerPatch
) -> ForeignerSnapshot:
    """Occupation and sponsor. A patch that changes nothing writes nothing and publishes nothing."""
    row = await _locked(session, context, foreigner_id)
    changes: dict[str, Any] = {}
    changed_fields: list[str] = []
    if "occupation" in command.model_fields_set and command.occupation != row.occupation:
        changes["occupation"] = command.occupation
        changed_fields.append("occupation")
    if "sponsor" in command.model_fields_set:
        sponsor_id = (await repo.upsert_sponsor(session, command.sponsor)).sponsor_id if command.sponsor else None
        if sponsor_id != row.sponsor_id:
            changes["sponsor_id"] = sponsor_id
            changed_fields.append("sponsor")
    if not changes:
        return await repo.load_snapshot(session, foreigner_id)
    version = await _bump(session, row, context, **changes)
    return await _record(
        session,
        context,
        foreigner_id,
        version,
        lambda s, j: ForeignerUpdated(foreigner=s, jurisdiction=j, changed_fields=changed_fields),
    )
