"""SQL for the registry's tables, kept in one place. Functions take the caller's session: the caller
owns the transaction, so a change, its history row and its outbox row always commit together."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    ColumnElement,
    Insert,
    Row,
    RowMapping,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.events import CloudEvent
from timpora.common.events.envelope import attribute_headers
from timpora.common.events.payloads import (
    AccommodationStay,
    Contract,
    ExitPermit,
    ForeignerSnapshot,
    Movement,
    OverstayFeePayment,
    Passport,
    Permit,
    PresenceStatus,
    ReEntryBan,
    ReEntryPermit,
    Residence,
    Sex,
    Sponsor,
    Visa,
)
from timpora.common.standing import OPEN, OVERSTAYABLE, local_today_sql, zone_name_sql
from timpora.registry.domain.areas import Area
from timpora.registry.domain.commands import SponsorIn
from timpora.registry.domain.errors import NotFoundError
from timpora.registry.models import (
    accommodations,
    foreigners,
    history,
    outbox,
    permits,
    previous_passports,
    sponsors,
    stays,
)

# The statements every write runs are built once, with bound parameters: SQLAlchemy then finds each compiled in its
# cache from a key it worked out once (a statement built anew per call is coerced and keyed anew, a fifth of a
# write's CPU time when measured).
_LOCK_FOREIGNER = select(foreigners).where(foreigners.c.id == bindparam("foreigner_id")).with_for_update()
_BY_PASSPORT = (
    select(foreigners)
    .where(foreigners.c.nationality == bindparam("nationality"), foreigners.c.passport_number == bindparam("number"))
    .with_for_update()
)
_PREVIOUS_PASSPORT = select(previous_passports).where(
    previous_passports.c.nationality == bindparam("nationality"), previous_passports.c.number == bindparam("number")
)
_INSERTS: dict[Table, Insert] = {}


async def lock_foreigner(session: AsyncSession, foreigner_id: UUID) -> Row[Any]:
    """The foreigner's row, locked until the transaction ends: changes to one person are serialised,
    which also makes their outbox ids follow their commit order."""
    row = (await session.execute(_LOCK_FOREIGNER, {"foreigner_id": foreigner_id})).first()
    if row is None:
        raise NotFoundError("no such foreigner", field=("path", "foreigner_id"))
    return row


async def find_by_passport(session: AsyncSession, nationality: str, passport_number: str) -> Row[Any] | None:
    """The holder of this passport now, locked."""
    return (await session.execute(_BY_PASSPORT, {"nationality": nationality, "number": passport_number})).first()


async def passport_held(session: AsyncSession, nationality: str, passport_number: str) -> bool:
    """Whether anyone holds, or held before renewing, this passport."""
    current = select(foreigners.c.id).where(
        foreigners.c.nationality == nationality, foreigners.c.passport_number == passport_number
    )
    return (await session.execute(select(current.exists()))).scalar_one() or (
        await find_previous_passport(session, nationality, passport_number)
    ) is not None


async def find_previous_passport(session: AsyncSession, nationality: str, passport_number: str) -> Row[Any] | None:
    """The replaced passport with this number, if someone held it before their current one."""
    parameters = {"nationality": nationality, "number": passport_number}
    return (await session.execute(_PREVIOUS_PASSPORT, parameters)).first()


async def upsert_sponsor(session: AsyncSession, sponsor: SponsorIn) -> Sponsor:
    """The sponsor as recorded (the name as first typed); the same employer typed twice (case aside) is one sponsor.

    DO NOTHING rather than DO UPDATE: an update would lock the sponsor's row and queue every
    concurrent arrival sponsored by the same employer behind each other.
    """
    kind, name_key = sponsor.kind.lower(), sponsor.name.casefold()
    recorded = (sponsors.c.id, sponsors.c.name, sponsors.c.kind)
    statement = (
        pg_insert(sponsors)
        .values(id=uuid4(), name=sponsor.name, kind=kind, name_key=name_key)
        .on_conflict_do_nothing(constraint="sponsors_kind_name_key")
        .returning(*recorded)
    )
    row = (await session.execute(statement)).first()
    if row is None:
        existing = select(*recorded).where(sponsors.c.kind == kind, sponsors.c.name_key == name_key)
        row = (await session.execute(existing)).one()
    return Sponsor(sponsor_id=row.id, name=row.name, kind=row.kind)


async def insert_foreigner(session: AsyncSession, values: dict[str, Any]) -> None:
    await insert_row(session, foreigners, values)


async def update_foreigner(session: AsyncSession, foreigner_id: UUID, values: dict[str, Any]) -> None:
    await session.execute(update(foreigners).where(foreigners.c.id == foreigner_id).values(**values))


async def insert_row(session: AsyncSession, table: Table, values: dict[str, Any]) -> None:
    # The values as parameters of the table's plain INSERT, not baked into the statement (``.values()``): the
    # statement is then the same each time, compiled once and cached, instead of coerced and keyed anew per row.
    # ``.values()`` refused a name that is no column; parameters of a plain INSERT would be dropped without a word
    # (a field added to a command, accepted by the API and never stored).
    if unknown := values.keys() - table.c.keys():
        raise ValueError(f"not columns of {table.name}: {sorted(unknown)}")
    statement = _INSERTS.get(table)
    if statement is None:
        statement = _INSERTS[table] = insert(table)
    await session.execute(statement, values)


async def lock_permit(session: AsyncSession, foreigner_id: UUID, permit_id: UUID) -> Row[Any]:
    statement = (
        select(permits).where(permits.c.id == permit_id, permits.c.foreigner_id == foreigner_id).with_for_update()
    )
    row = (await session.execute(statement)).first()
    if row is None:
        raise NotFoundError("the foreigner has no such permit", field=("path", "permit_id"))
    return row


async def extensions_of(session: AsyncSession, foreigner_id: UUID, permit_id: UUID) -> int:
    """How many times the permit was extended (from the history of the person's events)."""
    statement = select(func.count()).where(
        history.c.foreigner_id == foreigner_id,
        history.c.event_type == "permit.extended",
        history.c.data["permit"]["permit_id"].astext == str(permit_id),
    )
    return int((await session.execute(statement)).scalar_one())


async def permit_number_taken(session: AsyncSession, number: str) -> bool:
    return (await session.execute(select(permits.c.id).where(permits.c.number == number))).first() is not None


async def update_permit(session: AsyncSession, permit_id: UUID, values: dict[str, Any]) -> None:
    await session.execute(update(permits).where(permits.c.id == permit_id).values(**values))


async def lock_stay(session: AsyncSession, foreigner_id: UUID, stay_id: UUID) -> Row[Any]:
    statement = select(stays).where(stays.c.id == stay_id, stays.c.foreigner_id == foreigner_id).with_for_update()
    row = (await session.execute(statement)).first()
    if row is None:
        raise NotFoundError("the foreigner has no such stay", field=("path", "stay_id"))
    return row


async def stay_village(session: AsyncSession, stay_id: UUID) -> str | None:
    village: str | None = await session.scalar(select(stays.c.village_code).where(stays.c.id == stay_id))
    return village


def known_place_sql() -> ColumnElement[str]:
    """The person's place for an office's area, in the snapshot query (see ``areas``): where they belong, else
    where they lived, else the village of their last stay."""
    return func.coalesce(foreigners.c.jurisdiction, foreigners.c.residence_village_code, stays.c.village_code)


async def get_accommodation(session: AsyncSession, accommodation_id: UUID) -> Row[Any] | None:
    return (await session.execute(select(accommodations).where(accommodations.c.id == accommodation_id))).first()


async def update_stay(session: AsyncSession, stay_id: UUID, values: dict[str, Any]) -> None:
    await session.execute(update(stays).where(stays.c.id == stay_id).values(**values))


_snapshot_query = select(
    foreigners,
    sponsors.c.name.label("sponsor_name"),
    sponsors.c.kind.label("sponsor_kind"),
    # Every permit column under one prefix (what permit_from_mapping reads), so a new column cannot be missed.
    *(column.label(f"permit_{column.name}") for column in permits.c),
    stays.c.provider.label("stay_provider"),
    stays.c.village_code.label("stay_village_code"),
    stays.c.check_in.label("stay_check_in"),
    stays.c.check_out.label("stay_check_out"),
    stays.c.accommodation_id.label("stay_accommodation_id"),
    stays.c.planned_check_out.label("stay_planned_check_out"),
    # Oldest first; one query still loads a whole snapshot (and a whole search page).
    select(
        func.coalesce(
            func.jsonb_agg(
                aggregate_order_by(
                    func.jsonb_build_object(
                        "number",
                        previous_passports.c.number,
                        "issuing_country",
                        previous_passports.c.issuing_country,
                        "expires_on",
                        previous_passports.c.expires_on,
                    ),
                    previous_passports.c.replaced_on,
                    previous_passports.c.recorded_at,
                )
            ),
            text("'[]'::jsonb"),
        )
    )
    .where(previous_passports.c.foreigner_id == foreigners.c.id)
    .scalar_subquery()
    .label("previous_passports"),
).select_from(
    foreigners.outerjoin(sponsors, sponsors.c.id == foreigners.c.sponsor_id)
    .outerjoin(permits, permits.c.id == foreigners.c.current_permit_id)
    .outerjoin(stays, stays.c.id == foreigners.c.stay_id)
)


_ONE_SNAPSHOT = _snapshot_query.where(foreigners.c.id == bindparam("foreigner_id"))


def permit_from_mapping(m: RowMapping, *, prefix: str = "") -> Permit:
    """A permit from a ``permits`` row, or from a row whose permit columns carry ``prefix``."""
    return Permit(
        permit_id=m[f"{prefix}id"],
        number=m[f"{prefix}number"],
        type=m[f"{prefix}type"],
        purpose=m[f"{prefix}purpose"],
        issued_on=m[f"{prefix}issued_on"],
        expires_on=m[f"{prefix}expires_on"],
        status=m[f"{prefix}status"],
        sponsor_id=m[f"{prefix}sponsor_id"],
        ended_on=m[f"{prefix}ended_on"],
        end_reason=m[f"{prefix}end_reason"],
        overstay_fee=None
        if m[f"{prefix}fee_paid_idr"] is None
        else OverstayFeePayment(
            amount_idr=m[f"{prefix}fee_paid_idr"],
            receipt_number=m[f"{prefix}fee_receipt_number"],
            paid_on=m[f"{prefix}fee_paid_on"],
            days_covered=m[f"{prefix}fee_days_covered"],
        ),
        reentry_permit=None
        if m[f"{prefix}erp_number"] is None
        else ReEntryPermit(
            number=m[f"{prefix}erp_number"],
            issued_on=m[f"{prefix}erp_issued_on"],
            expires_on=m[f"{prefix}erp_expires_on"],
        ),
        exit_permit=None
        if m[f"{prefix}epo_number"] is None
        else ExitPermit(
            number=m[f"{prefix}epo_number"], issued_on=m[f"{prefix}epo_issued_on"], leave_by=m[f"{prefix}epo_leave_by"]
        ),
    )


def snapshot_from_row(row: Row[Any]) -> ForeignerSnapshot:
    m = row._mapping
    return ForeignerSnapshot(
        foreigner_id=m["id"],
        version=m["version"],
        full_name=m["full_name"],
        sex=Sex(m["sex"]),
        date_of_birth=m["date_of_birth"],
        nationality=m["nationality"],
        passport=Passport(
            number=m["passport_number"], issuing_country=m["passport_country"], expires_on=m["passport_expires_on"]
        ),
        previous_passports=[Passport.model_validate(passport) for passport in m["previous_passports"]],
        occupation=m["occupation"],
        sponsor=None
        if m["sponsor_id"] is None
        else Sponsor(sponsor_id=m["sponsor_id"], name=m["sponsor_name"], kind=m["sponsor_kind"]),
        residence=None
        if m["residence_village_code"] is None
        else Residence(
            address=m["residence_address"], village_code=m["residence_village_code"], since=m["residence_since"]
        ),
        stay=None
        if m["stay_provider"] is None
        else AccommodationStay(
            provider=m["stay_provider"],
            village_code=m["stay_village_code"],
            check_in=m["stay_check_in"],
            check_out=m["stay_check_out"],
            accommodation_id=m["stay_accommodation_id"],
            planned_check_out=m["stay_planned_check_out"],
        ),
        permit=None if m["permit_id"] is None else permit_from_mapping(m, prefix="permit_"),
        presence=PresenceStatus(m["presence"]),
        arrival=None if m["arrival_on"] is None else Movement(port=m["arrival_port"], on=m["arrival_on"]),
        visa=None if m["visa_index"] is None else Visa(index=m["visa_index"], number=m["visa_number"]),
        departure=None if m["departure_on"] is None else Movement(port=m["departure_port"], on=m["departure_on"]),
        reentry_ban=None
        if m["ban_since"] is None
        else ReEntryBan(since=m["ban_since"], until=m["ban_until"], reference=m["ban_reference"]),
    )


async def load_snapshot(session: AsyncSession, foreigner_id: UUID) -> ForeignerSnapshot:
    row = (await session.execute(_ONE_SNAPSHOT, {"foreigner_id": foreigner_id})).first()
    if row is None:
        raise NotFoundError("no such foreigner", field=("path", "foreigner_id"))
    return snapshot_from_row(row)


#: An event's outbox row and history row in one statement, one round trip: the outbox's in a data-modifying WITH,
#: which PostgreSQL runs once and to completion whatever the statement around it reads. The history keeps the
#: payload the outbox publishes, as JSON: the data serialised once, not once for each.
_APPEND = (
    insert(history)
    .values(
        {name: bindparam(name) for name in ("foreigner_id", "version", "event_id", "actor", "occurred_at")}
        | {"event_type": bindparam("history_event_type"), "data": cast(bindparam("payload", type_=Text), JSONB)}
    )
    .add_cte(
        insert(outbox)
        .values(
            {name: bindparam(name) for name in ("event_id", "event_type", "topic", "partition_key", "headers")}
            | {"payload": bindparam("payload", type_=Text)}
        )
        .cte("published")
    )
)


async def append_event(
    session: AsyncSession, event: CloudEvent[Contract], *, topic: str, actor: str, version: int
) -> None:
    """The event's history row and outbox row (to be published on ``topic``), in the caller's transaction."""
    await session.execute(
        _APPEND,
        {
            "event_id": UUID(event.id),
            "event_type": event.type,
            "topic": topic,
            "partition_key": event.subject or "",
            "headers": attribute_headers(event),
            "payload": event.data.model_dump_json(),
            "foreigner_id": UUID(event.subject) if event.subject else None,
            "version": version,
            "history_event_type": event.spec.name,
            "actor": actor,
            "occurred_at": event.time,
        },
    )


async def load_history(session: AsyncSession, foreigner_id: UUID) -> Sequence[Row[*tuple[Any, ...]]]:
    statement = (
        select(history.c.version, history.c.event_type, history.c.event_id, history.c.actor, history.c.occurred_at)
        .where(history.c.foreigner_id == foreigner_id)
        .order_by(history.c.id)
    )
    return (await session.execute(statement)).all()


async def search(
    session: AsyncSession,
    *,
    name: str | None,
    nationality: str | None,
    passport_number: str | None,
    region: str | None,
    permit_status: str | None,
    presence: str | None,
    expiring_within_days: int | None,
    now: datetime,
    after: UUID | None,
    limit: int,
    area: Area | None = None,
    overstaying: bool = False,
    by_expiry: bool = False,
) -> list[ForeignerSnapshot]:
    """Foreigners matching every filter given, ordered by name then id, ``limit`` after the person ``after``.

    The page's cursor is that person's id alone (no name in a URL); the name it continues after is read here, as
    the person is named now. Someone renamed between two pages (a returning arrival under a corrected name) moves
    in the order, and a page may then repeat or skip a name near theirs: the price of keeping names out of URLs."""
    conditions = []
    if name:
        conditions.append(func.lower(foreigners.c.full_name).contains(name.casefold(), autoescape=True))
    if nationality:
        conditions.append(foreigners.c.nationality == nationality)
    if passport_number:  # the current passport or one it replaced
        replaced = select(previous_passports.c.id).where(
            previous_passports.c.foreigner_id == foreigners.c.id, previous_passports.c.number == passport_number
        )
        conditions.append(or_(foreigners.c.passport_number == passport_number, replaced.exists()))
    if region:
        conditions.append(within(foreigners.c.jurisdiction, (region,)))
    if area is not None:  # the operator's office's people, and those who never had a place (every office's)
        place = known_place_sql()
        # Where they belong first: the jurisdiction's index serves it, and it decides for nearly everyone.
        conditions.append(
            or_(within(foreigners.c.jurisdiction, area.codes), place.is_(None), within(place, area.codes))
        )
    if permit_status:
        conditions.append(permits.c.status == permit_status)
    if presence:
        conditions.append(foreigners.c.presence == presence)
    conditions += _standing_conditions(now, expiring_within_days=expiring_within_days, overstaying=overstaying)
    sort_key = func.lower(foreigners.c.full_name)
    if after is not None:
        previous = foreigners.alias("previous")
        name_after = select(func.lower(previous.c.full_name)).where(previous.c.id == after).scalar_subquery()
        conditions.append(or_(sort_key > name_after, and_(sort_key == name_after, foreigners.c.id > after)))
    # By the permit's last day (a worklist: the longest overstay, the soonest expiry first), so that a list cut at
    # ``limit`` keeps the most urgent; by name otherwise (the pages of a search).
    order = (permits.c.expires_on, foreigners.c.id) if by_expiry else (sort_key, foreigners.c.id)
    statement = _snapshot_query.where(*conditions).order_by(*order).limit(limit)
    return [snapshot_from_row(row) for row in (await session.execute(statement)).all()]


def _standing_conditions(
    now: datetime, *, expiring_within_days: int | None, overstaying: bool
) -> list[ColumnElement[bool]]:
    """Present people whose open permit ends within the days given, or who are past its last day: each counted on
    the person's local date, as the expiry scheduler counts it."""
    today = local_today_sql(now, zone_name_sql(foreigners.c.jurisdiction))
    present = foreigners.c.presence == PresenceStatus.PRESENT.value
    conditions: list[ColumnElement[bool]] = []
    if expiring_within_days is not None:
        conditions.append(
            and_(
                present,
                permits.c.status.in_(sorted(OPEN)),
                permits.c.expires_on >= today,  # past it, the permit is overstayed, not expiring
                permits.c.expires_on <= today + expiring_within_days,
            )
        )
    if overstaying:
        # Past the permit's last day on their local date, whether the scheduler has marked it expired yet or not: the
        # same rule as timpora.common.standing.standing, which the worklist shows beside each (the status alone is
        # not the rule: a permit marked expired is no overstay on a day before its last).
        conditions.append(and_(present, permits.c.status.in_(sorted(OVERSTAYABLE)), permits.c.expires_on < today))
    return conditions


def within(column: ColumnElement[str], codes: Iterable[str]) -> ColumnElement[bool]:
    """``column``'s region code is one of ``codes`` or within one of them (an index on it serves each)."""
    return or_(*(or_(column == code, column.startswith(code + ".", autoescape=True)) for code in sorted(codes)))


def now_column_values(actor: str, moment: datetime) -> dict[str, Any]:
    return {"updated_at": moment, "updated_by": actor}
