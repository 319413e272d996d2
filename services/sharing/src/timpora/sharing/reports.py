"""The reports a regency's TIMPORA meeting uses: the monthly recap and the list of the foreigners in an area.

Both are read from the agency's projection history (``models.projection_history``) as of one moment: the
last instant of a past month by the agency's own calendar, or now for the month under way (a month that has
not begun is refused). Each person counts as their latest row at that moment says, so a past month's report
answers the same whatever happened since; only rows of the agreement in force are read (during a rebuild
after an agreement changed, the people not rebuilt yet are left out rather than shown under the old terms).

Only the agency's own rows are read (its jurisdiction), and only fields its agreement includes are shown or
counted on: a section or a dimension whose field the agreement lacks is left out and named in ``omitted``
with the field it needs. Counts are of the people with the presence asked (present by default) at the
moment; arrivals and departures are movements dated in the month, whatever the person's presence since.
Days to expiry and overstays follow the one rule (``timpora.common.standing``) on each person's local date
at that moment.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import regions
from timpora.common.register.agreements import Agreement
from timpora.common.register.fields import FIELD_NAMES
from timpora.common.settings import OverstaySettings
from timpora.common.spreadsheets import DictWriter
from timpora.sharing.domain.derived import ANY_PRESENCE, status_columns, with_status
from timpora.sharing.models import projection_history

#: A month as the reports take it: ``2026-11``.
MONTH_PATTERN = r"^[12]\d{3}-(0[1-9]|1[0-2])$"
#: Who is counted, as the list's presence filter takes it: present people by default.
Presence = Literal["present", "departed", "deported", "deceased", "any"]
#: "Permits expiring in the next 30 days", counted from the report's moment.
EXPIRING_WITHIN_DAYS = 30
#: Overstays up to this many days can be settled by the fee; beyond them deportation is due (UU 6/2011 art. 78).
#: Added to every area record whose agreement includes the residence: the names of its village and district.
REGION_NAMES = ("residence_village_name", "residence_district_name")
#: Added by the one standing rule to every record whose agreement includes the permit's expiry.


class FutureMonthError(ValueError):
    """A month that has not begun yet by the agency's calendar: there is nothing to report on."""


def parse_month(text: str) -> date:
    """The first day of ``YYYY-MM``; raises ValueError for anything else."""
    if re.fullmatch(MONTH_PATTERN, text) is None:
        raise ValueError("a month is YYYY-MM, e.g. 2026-11")
    return date(int(text[:4]), int(text[5:]), 1)


@dataclass(frozen=True, slots=True)
class Period:
    """The month a report is about and the moment it describes."""

    month: date
    #: The month's last instant by the agency's calendar, or now for the month under way.
    as_of: datetime
    #: False for the month under way: its report changes until the month ends.
    complete: bool

    @property
    def last_day(self) -> date:
        return _next_month(self.month) - timedelta(days=1)

    @property
    def label(self) -> str:
        return self.month.strftime("%Y-%m")


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def period(agreement: Agreement, month: date | None, now: datetime) -> Period:
    """The period of ``month`` (the month under way if None) for ``agreement``'s agency, seen at ``now``."""
    current = agreement.local_date(now).replace(day=1)
    month = current if month is None else month
    if month > current:
        raise FutureMonthError("that month has not begun yet in your time zone: there is nothing to report")
    if month == current:
        return Period(month=month, as_of=now, complete=False)
    zone = regions.time_zone(agreement.jurisdiction[0])  # the zone Agreement.local_date counts in
    end = datetime.combine(_next_month(month), time(), tzinfo=zone) - timedelta(microseconds=1)
    return Period(month=month, as_of=end, complete=True)


def region_refused(agreement: Agreement, region: str) -> str | None:
    """Why ``region`` cannot narrow the agency's area list, or None: it must be an official code (the reason does
    not repeat it), the agreement must include the residence, and the region must overlap the jurisdiction."""
    if regions.lookup(region) is None:
        return "not a region in the official Kemendagri list"
    if "residence_village_code" not in agreement.allowed:
        return "your agreement does not include residence_village_code"
    if not any(
        regions.is_within(region, prefix) or regions.is_within(prefix, region) for prefix in agreement.jurisdiction
    ):
        return "outside your jurisdiction"
    return None


@dataclass(frozen=True, slots=True)
class Seen:
    """One person as the agency's history holds them at a moment."""

    foreigner_id: UUID
    record: dict[str, Any]
    time_zone: str


async def in_view(session: AsyncSession, agreement: Agreement, as_of: datetime) -> list[Seen]:
    """Everyone in the agency's view at ``as_of``: each person's latest history row by then, if visible."""
    history = projection_history.c
    latest = (
        select(history.foreigner_id, history.visible, history.record, history.time_zone)
        .where(
            history.agency_id == agreement.agency_id,
            history.agreement_version == agreement.version,
            history.occurred_at <= as_of,
        )
        .ext(distinct_on(history.foreigner_id))
        .order_by(history.foreigner_id, history.version.desc())
        .subquery()
    )
    rows = await session.execute(
        select(latest.c.foreigner_id, latest.c.record, latest.c.time_zone).where(latest.c.visible.is_(True))
    )
    return [Seen(row.foreigner_id, _allowed(agreement, row.record), row.time_zone) for row in rows]


async def movements(session: AsyncSession, agreement: Agreement, period: Period, field: str) -> list[Seen]:
    """Each arrival or departure (``field``: ``arrived_on`` or ``departed_on``) dated in the month, of someone in
    the agency's view, as first recorded there by the report's moment."""
    history = projection_history.c
    day = history.record[field].astext  # ISO dates: text order is date order
    rows = await session.execute(
        select(history.foreigner_id, history.record, history.time_zone)
        .where(
            history.agency_id == agreement.agency_id,
            history.agreement_version == agreement.version,
            history.visible.is_(True),
            history.occurred_at <= period.as_of,
            day >= period.month.isoformat(),
            day <= period.last_day.isoformat(),
        )
        .order_by(history.foreigner_id, history.version)
    )
    first: dict[tuple[UUID, str], Seen] = {}
    for row in rows:
        first.setdefault((row.foreigner_id, row.record[field]), Seen(row.foreigner_id, row.record, row.time_zone))
    return [Seen(seen.foreigner_id, _allowed(agreement, seen.record), seen.time_zone) for seen in first.values()]


def _allowed(agreement: Agreement, record: dict[str, Any]) -> dict[str, Any]:
    """Only what the agreement in force includes, whatever the row was written under."""
    return {name: value for name, value in record.items() if name in agreement.allowed or name in _IDENTITY}


_IDENTITY = frozenset({"foreigner_id", "version"})


def _matches(record: dict[str, Any], presence: Presence) -> bool:
    return presence == ANY_PRESENCE or record.get("presence") == presence


def _district(record: dict[str, Any]) -> str | None:
    village = record.get("residence_village_code")
    return ".".join(village.split(".")[:3]) if village else None


def _name(code: str | None) -> str | None:
    region = regions.lookup(code) if code else None
    return region.name if region else None


class DistrictCount(BaseModel):
    code: str | None = Field(description="Kemendagri district (kecamatan) code; null: no residence reported")
    name: str | None = Field(description="The district's name")
    total: int
    by_nationality: dict[str, int] | None = None


class Tally(BaseModel):
    total: int
    by_nationality: dict[str, int] | None = Field(default=None, description="If your agreement includes nationality")
    by_district: list[DistrictCount] | None = Field(
        default=None, description="Per kecamatan, with its name, if your agreement includes residence_village_code"
    )


class Overstays(BaseModel):
    up_to_60_days: Tally = Field(description="1 to 60 days: the fee can still settle it")
    over_60_days: Tally = Field(description="More than 60 days: deportation and a re-entry ban are due")


class SponsorCount(BaseModel):
    sponsor_name: str | None = Field(description="null: no sponsor (someone married to an Indonesian needs none)")
    people: int
    expiring_within_30_days: int | None = None
    overstaying: int | None = None


class MonthlyRecap(BaseModel):
    agency_id: str
    agreement_version: int
    month: str = Field(description="YYYY-MM, by your time zone")
    time_zone: str
    as_of: datetime = Field(description="The moment counted: the month's last instant, or now for the month under way")
    complete: bool = Field(description="False for the month under way, whose figures still change")
    presence: str = Field(description="Whom the counts at the moment are of: present people unless asked otherwise")
    people: Tally = Field(description="The people in your view at the moment, by nationality and kecamatan")
    arrivals: Tally | None = Field(default=None, description="Arrivals dated in the month")
    departures: Tally | None = Field(default=None, description="Departures dated in the month")
    expiring_within_30_days: Tally | None = Field(
        default=None, description="Permits whose last day is within 30 days of the moment"
    )
    overstaying: Overstays | None = None
    sponsors: list[SponsorCount] | None = Field(default=None, description="Per sponsor (penjamin)")
    omitted: dict[str, str] = Field(description="What your agreement does not allow, and the field it would need")


class MonthFlow(BaseModel):
    month: str = Field(description="YYYY-MM, by your time zone")
    complete: bool = Field(description="False for the month under way")
    arrivals: int | None = Field(default=None, description="Arrivals dated in the month; null: not in your agreement")
    departures: int | None = Field(default=None, description="Departures dated in the month; null: as arrivals")


class MonthlyFlows(BaseModel):
    """Arrivals and departures per month, oldest first: the chart of the months before a regent's meeting."""

    agency_id: str
    agreement_version: int
    time_zone: str
    months: list[MonthFlow]
    omitted: dict[str, str] = Field(description="What your agreement does not allow, and the field it would need")


def _previous_month(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


async def monthly_flows(
    session: AsyncSession, agreement: Agreement, until: Period, months: int, now: datetime
) -> tuple[MonthlyFlows, list[UUID]]:
    """Arrivals and departures of the ``months`` months ending with ``until``'s, each counted as its own recap
    counts it; and the ids of everyone counted (for the disclosure log)."""
    sections = _Sections(agreement)
    wanted = [
        field
        for section, field in (("arrivals", "arrived_on"), ("departures", "departed_on"))
        if sections.allows(section, field)
    ]
    first = until.month
    for _ in range(months - 1):
        first = _previous_month(first)
    counted: set[UUID] = set()
    flows: list[MonthFlow] = []
    month = first
    while month <= until.month:
        each = period(agreement, month, now)
        counts: dict[str, int] = {}
        for field in wanted:
            moved = await movements(session, agreement, each, field)
            counted.update(seen.foreigner_id for seen in moved)
            counts["arrivals" if field == "arrived_on" else "departures"] = len(moved)
        flows.append(MonthFlow(month=each.label, complete=each.complete, **counts))
        month = _next_month(month)
    return (
        MonthlyFlows(
            agency_id=agreement.agency_id,
            agreement_version=agreement.version,
            time_zone=regions.time_zone(agreement.jurisdiction[0]).key,
            months=flows,
            omitted=sections.omitted,
        ),
        sorted(counted),
    )


class AreaList(BaseModel):
    agency_id: str
    agreement_version: int
    month: str | None = Field(description="The month whose end is listed; null: now")
    as_of: datetime
    region: str | None
    region_name: str | None
    presence: str
    total: int
    items: list[dict[str, Any]]


class _Sections:
    """Which sections and dimensions the agreement allows; what it does not is noted in ``omitted``."""

    def __init__(self, agreement: Agreement) -> None:
        self.allowed = agreement.allowed
        self.omitted: dict[str, str] = {}

    def allows(self, section: str, field: str) -> bool:
        if field in self.allowed:
            return True
        self.omitted[section] = f"your agreement does not include {field}"
        return False


def _tally(records: Iterable[dict[str, Any]], *, nationality: bool, district: bool) -> Tally:
    records = list(records)
    if not district:
        by_nationality = Counter(str(record.get("nationality")) for record in records) if nationality else None
        return Tally(total=len(records), by_nationality=_sorted(by_nationality))
    per_district: dict[str | None, list[dict[str, Any]]] = {}
    for record in records:
        per_district.setdefault(_district(record), []).append(record)
    return Tally(
        total=len(records),
        by_nationality=_sorted(Counter(str(record.get("nationality")) for record in records)) if nationality else None,
        by_district=[
            DistrictCount(
                code=code,
                name=_name(code),
                total=len(members),
                by_nationality=_sorted(Counter(str(member.get("nationality")) for member in members))
                if nationality
                else None,
            )
            for code, members in sorted(per_district.items(), key=lambda item: (item[0] is None, item[0] or ""))
        ],
    )


def _sorted(counts: Counter[str] | None) -> dict[str, int] | None:
    return None if counts is None else dict(sorted(counts.items()))


async def monthly_recap(
    session: AsyncSession, agreement: Agreement, period: Period, presence: Presence, *, rule: OverstaySettings
) -> tuple[MonthlyRecap, list[UUID]]:
    """The recap, and the ids of everyone it counts (for the disclosure log)."""
    sections = _Sections(agreement)
    nationality = sections.allows("by_nationality", "nationality")
    district = sections.allows("by_district", "residence_village_code")
    people = [seen for seen in await in_view(session, agreement, period.as_of) if _matches(seen.record, presence)]
    standing = [with_status(seen.record, seen.time_zone, period.as_of, rule) for seen in people]
    counted = {seen.foreigner_id for seen in people}

    def tally(records: Iterable[dict[str, Any]]) -> Tally:
        return _tally(records, nationality=nationality, district=district)

    flows: dict[str, Tally | None] = {}
    for section, field in (("arrivals", "arrived_on"), ("departures", "departed_on")):
        flows[section] = None
        if sections.allows(section, field):
            moved = await movements(session, agreement, period, field)
            counted.update(seen.foreigner_id for seen in moved)
            flows[section] = tally(seen.record for seen in moved)
    dated = sections.allows("expiring_within_30_days", "permit_expires_on")
    if not dated:
        sections.allows("overstaying", "permit_expires_on")
    overstaying = [record for record in standing if record.get("overstaying")]
    sponsors = _per_sponsor(standing, dated=dated) if sections.allows("sponsors", "sponsor_name") else None
    recap = MonthlyRecap(
        agency_id=agreement.agency_id,
        agreement_version=agreement.version,
        month=period.label,
        time_zone=regions.time_zone(agreement.jurisdiction[0]).key,
        as_of=period.as_of,
        complete=period.complete,
        presence=presence,
        people=tally(seen.record for seen in people),
        arrivals=flows["arrivals"],
        departures=flows["departures"],
        expiring_within_30_days=tally(record for record in standing if _expiring(record)) if dated else None,
        overstaying=Overstays(
            # The bands of UU 6/2011 art. 78: the fee settles an overstay up to the limit; past it, deportation.
            up_to_60_days=tally(record for record in overstaying if not record["deportation_due"]),
            over_60_days=tally(record for record in overstaying if record["deportation_due"]),
        )
        if dated
        else None,
        sponsors=sponsors,
        omitted=sections.omitted,
    )
    return recap, sorted(counted)


def _expiring(record: dict[str, Any]) -> bool:
    days = record.get("days_to_expiry")
    return days is not None and 0 <= days <= EXPIRING_WITHIN_DAYS


def _per_sponsor(standing: Sequence[dict[str, Any]], *, dated: bool) -> list[SponsorCount]:
    per: dict[str | None, list[dict[str, Any]]] = {}
    for record in standing:
        per.setdefault(record.get("sponsor_name"), []).append(record)
    return [
        SponsorCount(
            sponsor_name=name,
            people=len(members),
            expiring_within_30_days=sum(_expiring(member) for member in members) if dated else None,
            overstaying=sum(bool(member.get("overstaying")) for member in members) if dated else None,
        )
        for name, members in sorted(per.items(), key=lambda item: (item[0] is None, item[0] or ""))
    ]


#: The recap as a table: one row per count, the dimensions it is counted on filled in.
RECAP_COLUMNS = ("section", "district_code", "district_name", "nationality", "sponsor_name", "count")


def recap_rows(recap: MonthlyRecap) -> Iterator[dict[str, Any]]:
    """Each section's total, then its finest cells (kecamatan x nationality where both are allowed)."""
    tallies: list[tuple[str, Tally | None]] = [
        ("people", recap.people),
        ("arrivals", recap.arrivals),
        ("departures", recap.departures),
        ("expiring_within_30_days", recap.expiring_within_30_days),
    ]
    if recap.overstaying is not None:
        tallies += [
            ("overstaying_up_to_60_days", recap.overstaying.up_to_60_days),
            ("overstaying_over_60_days", recap.overstaying.over_60_days),
        ]
    for section, tally in tallies:
        if tally is not None:
            yield from _tally_rows(section, tally)
    for sponsor in recap.sponsors or []:
        counts = {
            "sponsor_people": sponsor.people,
            "sponsor_expiring_within_30_days": sponsor.expiring_within_30_days,
            "sponsor_overstaying": sponsor.overstaying,
        }
        for section, count in counts.items():
            if count is not None:
                yield {"section": section, "sponsor_name": sponsor.sponsor_name, "count": count}


def _tally_rows(section: str, tally: Tally) -> Iterator[dict[str, Any]]:
    yield {"section": section, "count": tally.total}
    if tally.by_district is None:
        for nationality, count in (tally.by_nationality or {}).items():
            yield {"section": section, "nationality": nationality, "count": count}
        return
    for district in tally.by_district:
        cell = {"section": section, "district_code": district.code, "district_name": district.name}
        if district.by_nationality is None:
            yield cell | {"count": district.total}
        for nationality, count in (district.by_nationality or {}).items():
            yield cell | {"nationality": nationality, "count": count}


async def area_list(
    session: AsyncSession,
    agreement: Agreement,
    *,
    as_of: datetime,
    month: str | None,
    region: str | None,
    presence: Presence,
    rule: OverstaySettings,
) -> AreaList:
    """The people in the agency's view (in ``region`` if given) at ``as_of`` (the end of ``month``, or now),
    by village and name where the agreement includes them. ``region`` must have passed :func:`region_refused`."""
    items = []
    for seen in await in_view(session, agreement, as_of):
        village = seen.record.get("residence_village_code")
        if not _matches(seen.record, presence):
            continue
        if region is not None and not (village and regions.is_within(village, region)):
            continue
        record = with_status(seen.record, seen.time_zone, as_of, rule)
        if "residence_village_code" in agreement.allowed:
            record |= dict(zip(REGION_NAMES, (_name(village), _name(_district(record))), strict=True))
        items.append(record)
    items.sort(
        key=lambda item: (item.get("residence_village_code") or "~", item.get("full_name") or "", item["foreigner_id"])
    )
    return AreaList(
        agency_id=agreement.agency_id,
        agreement_version=agreement.version,
        month=month,
        as_of=as_of,
        region=region,
        region_name=_name(region),
        presence=presence,
        total=len(items),
        items=items,
    )


def area_columns(agreement: Agreement) -> list[str]:
    """The area list's CSV columns: the agreement's fields, the region names, the permit's standing."""
    columns = ["foreigner_id", "version", *(name for name in FIELD_NAMES if name in agreement.allowed)]
    if "residence_village_code" in agreement.allowed:
        columns += REGION_NAMES
    return columns + status_columns(agreement)


def as_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
