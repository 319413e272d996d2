"""Lifecycle stories for the demo: what happens to a handful of the demo's people after the import, played
through the registry's own changes (the API's rules, history and outbox events), so that the demo shows
departures, a departure and a return on a new visa on arrival, a passport renewed here and one renewed
abroad, a visa on arrival extended once, an overstay settled by its fee and then extended, and an overstay
past 60 days ending in a deportation order, the deportation and a re-entry ban, a tourist staying at a hotel
in Bangkalan past the planned end of the stay (and a guest the registry does not know, kept unmatched), and a
visit permit converted into an ITAS.

The people are the generator's :data:`~timpora.registry.bulk.generator.CAST` rows of the demo file's seed,
found by nationality and passport (or by the passport they renewed); dates are relative to today. Each
story is one transaction, and is not played again once its first step's effect is there: playing the
stories twice changes nothing the second time. A story whose person is missing, or whose person's record no
longer allows it (the registry refuses the change), is skipped and says why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.common.events.payloads import (
    EnforcementAction,
    PermitStatus,
    PermitType,
    PresenceStatus,
    Sex,
    StayPurpose,
)
from timpora.common.standing import local_today
from timpora.registry import repository as repo
from timpora.registry.bulk.generator import cast
from timpora.registry.domain import changes
from timpora.registry.domain.accommodations import register as hotel_register
from timpora.registry.domain.accommodations import report_guest
from timpora.registry.domain.changes import ChangeContext
from timpora.registry.domain.commands import (
    AccommodationIn,
    ArrivalIn,
    BanIn,
    ConversionIn,
    DepartureIn,
    DeportationIn,
    EnforcementIn,
    ExtensionIn,
    GuestIn,
    OverstayFeeIn,
    PassportIn,
    PassportRenewalIn,
    PermitIn,
    ReEntryPermitIn,
    StayReportIn,
    VisaIn,
)
from timpora.registry.domain.errors import RegistryError
from timpora.registry.models import accommodations, enforcement_actions, permits

#: The seed of deploy/local/demo's file.
DEMO_SEED = 2024
PLAYED, ALREADY, SKIPPED = "played", "already played", "skipped"
AIRPORT = "Juanda International Airport"
SEAPORT = "Tanjung Perak Seaport"
#: A visa on arrival (B1) gives 30 days and is extendable once, by 30 days.
VOA_DAYS = 30
#: A passport's validity (ten years).
PASSPORT_DAYS = 3652
#: A re-entry ban (penangkalan, UU 6/2011 art. 102) of six months.
BAN_DAYS = 183


@dataclass(frozen=True, slots=True)
class Outcome:
    story: str
    result: str
    detail: str


@dataclass(frozen=True, slots=True)
class Subject:
    """A story's person as the registry has them now."""

    row: Row[Any]
    #: Their current permit.
    permit: Row[Any] | None
    #: Found through the passport the generator gave them: they have renewed it since.
    renewed: bool
    today: date


Story = Callable[[AsyncSession, ChangeContext, Subject], Awaitable[tuple[str, str]]]


async def play(
    sessions: async_sessionmaker[AsyncSession], context: ChangeContext, *, seed: int = DEMO_SEED
) -> list[Outcome]:
    """Play every story on the people of the demo file of ``seed``, each in a transaction of its own."""
    people = cast(seed)
    outcomes = []
    for name, story in STORIES:
        nationality, passport = people[name]
        async with sessions() as session:
            try:
                async with session.begin():
                    subject = await _subject(session, context, nationality, passport)
                    if subject is None:
                        result, detail = SKIPPED, f"not in the registry: import the demo file of seed {seed} first"
                    else:
                        result, detail = await story(session, context, subject)
            except RegistryError as error:  # rolled back: the record no longer allows the story
                result, detail = SKIPPED, error.message
        outcomes.append(Outcome(name, result, detail))
    return outcomes


async def _subject(session: AsyncSession, context: ChangeContext, nationality: str, passport: str) -> Subject | None:
    row = await repo.find_by_passport(session, nationality, passport)
    renewed = False
    if row is None:
        previous = await repo.find_previous_passport(session, nationality, passport)
        if previous is None:
            return None
        row, renewed = await repo.lock_foreigner(session, previous.foreigner_id), True
    permit = None
    if row.current_permit_id is not None:
        permit = (await session.execute(select(permits).where(permits.c.id == row.current_permit_id))).first()
    return Subject(row=row, permit=permit, renewed=renewed, today=local_today(context.clock, row.jurisdiction))


def _day(subject: Subject, days_ago: int, *, not_before: date | None = None) -> date:
    """``days_ago`` days before today, but not before the person's arrival (or ``not_before``) nor after today."""
    earliest = max(day for day in (subject.row.arrival_on, not_before, date.min) if day is not None)
    return min(max(subject.today - timedelta(days=days_ago), earliest), subject.today)


def _present(subject: Subject) -> bool:
    return bool(subject.row.presence == PresenceStatus.PRESENT.value)


def _reference(kind: str, subject: Subject) -> str:
    return f"KANIM-PMK/{kind}/{subject.today.year}/{subject.row.id.hex[:6].upper()}"


def _renewed_number(number: str) -> str:
    """The new passport's number: the generator's numbers are a letter and digits, so this one is free."""
    return f"{number[0]}R{number[1:]}"


def _arrival(
    subject: Subject, passport: PassportIn, arrived_on: date, *, visa: VisaIn | None = None, previous: str | None = None
) -> ArrivalIn:
    row = subject.row
    return ArrivalIn(
        full_name=row.full_name,
        sex=Sex(row.sex),
        date_of_birth=row.date_of_birth,
        nationality=row.nationality,
        passport=passport,
        port=AIRPORT,
        arrived_on=arrived_on,
        visa=visa,
        previous_passport_number=previous,
    )


def _passport(subject: Subject, number: str, issued_on: date) -> PassportIn:
    return PassportIn(
        number=number,
        issuing_country=subject.row.passport_country,
        expires_on=issued_on + timedelta(days=PASSPORT_DAYS),
    )


def departure(days_ago: int, port: str) -> Story:
    """A visitor goes home."""

    async def story(session: AsyncSession, context: ChangeContext, subject: Subject) -> tuple[str, str]:
        if not _present(subject) or subject.row.departure_on is not None:
            return ALREADY, "departed already"
        on = _day(subject, days_ago)
        await changes.record_departure(session, context, subject.row.id, DepartureIn(port=port, departed_on=on))
        return PLAYED, f"foreigner {subject.row.id} departed through {port} on {on}"

    return story


async def departure_and_return(session: AsyncSession, context: ChangeContext, subject: Subject) -> tuple[str, str]:
    """A tourist leaves for a trip abroad and comes back on a new visa on arrival and visit permit."""
    row = subject.row
    if row.departure_on is not None or not _present(subject):
        return ALREADY, "departed already"
    left = _day(subject, 16)
    back = _day(subject, 3, not_before=left)
    await changes.record_departure(session, context, row.id, DepartureIn(port=AIRPORT, departed_on=left))
    visa = VisaIn(index="B1", number=f"VOA{row.id.hex[:10].upper()}")
    passport = PassportIn(
        number=row.passport_number, issuing_country=row.passport_country, expires_on=row.passport_expires_on
    )
    await changes.record_arrival(session, context, _arrival(subject, passport, back, visa=visa))
    permit = PermitIn(
        number=f"ITK{row.id.hex[:12].upper()}",
        type=PermitType.VISIT,
        issued_on=back,
        expires_on=back + timedelta(days=VOA_DAYS),
    )
    await changes.issue_permit(session, context, row.id, permit)
    return PLAYED, f"foreigner {row.id} left on {left} and came back on {back} on a B1 visa with a new visit permit"


async def passport_renewal(session: AsyncSession, context: ChangeContext, subject: Subject) -> tuple[str, str]:
    """A worker whose passport is about to expire renews it at their consulate; the old number stays findable."""
    if subject.renewed:
        return ALREADY, "the passport is renewed already"
    renewed_on = _day(subject, 5)
    command = PassportRenewalIn(
        passport=_passport(subject, _renewed_number(subject.row.passport_number), renewed_on), renewed_on=renewed_on
    )
    await changes.renew_passport(session, context, subject.row.id, command)
    return PLAYED, f"foreigner {subject.row.id} renewed their passport on {renewed_on}"


async def renewed_abroad(session: AsyncSession, context: ChangeContext, subject: Subject) -> tuple[str, str]:
    """A permanent resident goes home on a re-entry permit, renews their passport there and comes back on the new
    one: the arrival names the old passport, so the registry keeps one person (and their ITAP) instead of
    creating a second."""
    row = subject.row
    if subject.renewed or row.departure_on is not None or not _present(subject):
        return ALREADY, "departed or renewed already"
    left = _day(subject, 40)
    back = _day(subject, 8, not_before=left)
    if subject.permit is not None:  # without a re-entry permit, an ITAP ends on exit (UU 6/2011)
        erp = ReEntryPermitIn(
            number=f"ERP{row.passport_number}",
            issued_on=left - timedelta(days=7),
            expires_on=min(subject.permit.expires_on, left + timedelta(days=365)),
        )
        await changes.grant_reentry_permit(session, context, row.id, subject.permit.id, erp)
    await changes.record_departure(session, context, row.id, DepartureIn(port=AIRPORT, departed_on=left))
    passport = _passport(subject, _renewed_number(row.passport_number), _day(subject, 20, not_before=left))
    await changes.record_arrival(session, context, _arrival(subject, passport, back, previous=row.passport_number))
    return PLAYED, f"foreigner {row.id} left on {left} and came back on {back} on a passport renewed abroad"


async def voa_extension(session: AsyncSession, context: ChangeContext, subject: Subject) -> tuple[str, str]:
    """A tourist on a visa on arrival extends their stay once, by 30 days."""
    permit = subject.permit
    if permit is None or permit.status == PermitStatus.EXTENDED.value:
        return ALREADY, "extended already"
    if subject.row.visa_index != "B1" or permit.type != PermitType.VISIT.value:
        return SKIPPED, "not a visit permit on a visa on arrival"
    new_expiry = permit.expires_on + timedelta(days=VOA_DAYS)
    await changes.extend_permit(session, context, subject.row.id, permit.id, ExtensionIn(expires_on=new_expiry))
    return PLAYED, f"foreigner {subject.row.id}'s visit permit extended once, to {new_expiry}"


async def overstay_fee_paid(session: AsyncSession, context: ChangeContext, subject: Subject) -> tuple[str, str]:
    """A worker whose ITAS ran out pays the overstay fee for the days overstayed, and the ITAS is then extended."""
    permit = subject.permit
    # Paid and extended: the extension starts a new count (the fee's columns are cleared), so the extension is
    # what says the story was played.
    if permit is None or permit.fee_days_covered is not None or permit.status == PermitStatus.EXTENDED.value:
        return ALREADY, "the overstay fee is paid already"
    days = (subject.today - permit.expires_on).days
    if not 0 < days <= context.overstay.fee_limit_days:
        return SKIPPED, f"not overstaying within the fee's {context.overstay.fee_limit_days} days ({days} days)"
    fee = OverstayFeeIn(
        amount_idr=days * context.overstay.fee_per_day_idr,
        receipt_number=f"SIMPONI-{subject.row.id.hex[:12].upper()}",
        paid_on=subject.today,
    )
    await changes.pay_overstay_fee(session, context, subject.row.id, permit.id, fee)
    new_expiry = permit.expires_on + timedelta(days=365)
    await changes.extend_permit(session, context, subject.row.id, permit.id, ExtensionIn(expires_on=new_expiry))
    return (
        PLAYED,
        f"foreigner {subject.row.id} paid the fee for {days} days overstayed; permit extended to {new_expiry}",
    )


async def overstay_deported(session: AsyncSession, context: ChangeContext, subject: Subject) -> tuple[str, str]:
    """A tourist found more than 60 days past their permit: detained, ordered deported, deported, and banned."""
    row, permit = subject.row, subject.permit
    actions = await session.scalar(
        select(func.count()).select_from(enforcement_actions).where(enforcement_actions.c.foreigner_id == row.id)
    )
    if actions or not _present(subject):
        return ALREADY, "enforcement recorded already"
    days = (subject.today - permit.expires_on).days if permit is not None else 0
    if days <= context.overstay.fee_limit_days:
        return SKIPPED, f"not overstaying beyond {context.overstay.fee_limit_days} days ({days} days)"
    order = _reference("DEPORTASI", subject)
    detained_on = _day(subject, 4)
    for action, reference in (
        (EnforcementAction.DETENTION, _reference("DETENSI", subject)),
        (EnforcementAction.DEPORTATION_ORDER, order),
    ):
        await changes.record_enforcement(
            session, context, row.id, EnforcementIn(action=action, on=detained_on, reference=reference)
        )
    deported_on = _day(subject, 1, not_before=detained_on)
    await changes.record_deportation(
        session, context, row.id, DeportationIn(port=AIRPORT, deported_on=deported_on, reference=order)
    )
    ban = BanIn(
        since=deported_on, until=deported_on + timedelta(days=BAN_DAYS), reference=_reference("PENANGKALAN", subject)
    )
    await changes.impose_ban(session, context, row.id, ban)
    return PLAYED, f"foreigner {row.id}, {days} days overstayed, deported on {deported_on} and banned until {ban.until}"


#: The demo's hotel: in Kamal, where the Suramadu bridge lands in Bangkalan.
HOTEL = AccommodationIn(name="Hotel Suramadu Kamal", address="Jl. Raya Kamal No. 1", village_code="35.26.01.1001")


async def hotel_guest(session: AsyncSession, context: ChangeContext, subject: Subject) -> tuple[str, str]:
    """A tourist reported by a hotel in Bangkalan, still checked in past the planned end (the expiry pass then
    reports the stay overdue to immigration and the regency); the same hotel reports a guest the registry does
    not know, kept until immigration links them."""
    row = subject.row
    if row.stay_id is not None:
        return ALREADY, "the stay is reported already"
    if not _present(subject):
        return SKIPPED, "not here"
    place = (
        await session.execute(
            select(accommodations).where(
                accommodations.c.village_code == HOTEL.village_code, accommodations.c.name_key == HOTEL.name.casefold()
            )
        )
    ).first() or await hotel_register(session, context, HOTEL)
    check_in = _day(subject, 12)
    planned = max(check_in, _day(subject, 4))
    report = StayReportIn(
        accommodation_id=place.id,
        guest=GuestIn(full_name=row.full_name, nationality=row.nationality, passport_number=row.passport_number),
        check_in=check_in,
        planned_check_out=planned,
    )
    await report_guest(session, context, report)
    stranger = GuestIn(
        full_name="Unknown Guest", nationality=row.nationality, passport_number=f"U{row.passport_number}"
    )
    await report_guest(session, context, report.model_copy(update={"guest": stranger}))
    return PLAYED, f"foreigner {row.id} checked in at {HOTEL.name} on {check_in}, planned to leave on {planned}"


async def conversion(session: AsyncSession, context: ChangeContext, subject: Subject) -> tuple[str, str]:
    """A tourist who married in Madura: the visit permit becomes an ITAS for family, in one change."""
    permit = subject.permit
    if permit is not None and permit.converted_from is not None:
        return ALREADY, "converted already"
    if permit is None or permit.type != PermitType.VISIT.value:
        return SKIPPED, "no visit permit to convert"
    today = subject.today
    new = ConversionIn(
        number=f"ITAS{subject.row.passport_number}",
        type=PermitType.ITAS,
        purpose=StayPurpose.FAMILY,
        issued_on=today,
        expires_on=today + timedelta(days=365),
    )
    await changes.convert_permit(session, context, subject.row.id, permit.id, new)
    return PLAYED, f"foreigner {subject.row.id}'s visit permit converted into an ITAS for family on {today}"


#: Each story, by the name of its person in the generator's CAST.
STORIES: tuple[tuple[str, Story], ...] = (
    ("departure-1", departure(2, AIRPORT)),
    ("departure-2", departure(4, AIRPORT)),
    ("departure-3", departure(6, SEAPORT)),
    ("departure-and-return", departure_and_return),
    ("passport-renewal", passport_renewal),
    ("renewed-abroad", renewed_abroad),
    ("voa-extension", voa_extension),
    ("overstay-fee-paid", overstay_fee_paid),
    ("overstay-deported", overstay_deported),
    ("hotel-guest", hotel_guest),
    ("conversion", conversion),
)
