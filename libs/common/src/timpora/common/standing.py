"""Where a person stands with their stay permit today: days left, or days overstayed.

One rule for every service (registry, sharing, alerts), so that no two of them can disagree about
whether someone is overstaying (UU 6/2011 art. 78):

- days are counted on the person's local date: where they live (or stay), in its province's zone
  (WIB, WITA or WIT); someone with no place yet counts in WIB;
- ``expires_on`` is the permit's last valid day, so the first overstayed day is the day after it;
- only someone present in Indonesia can overstay, and only on a permit that is still theirs
  (active, extended, or marked expired by the scheduler). A visitor who left on time is not
  overstaying on any later date, and a permit that ended (its holder left) or was revoked counts no day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Date, String, case, cast, func, literal

from timpora.common import regions
from timpora.common.clock import Clock, local_date
from timpora.common.events.payloads import Overstay, PermitStatus, PermitType, PresenceStatus
from timpora.common.settings import OverstaySettings

#: Permits that end when their holder leaves Indonesia (a visit stay permit, UU 6/2011 art. 48 and 52).
ENDS_ON_EXIT = frozenset({PermitType.VISIT, PermitType.VISA_ON_ARRIVAL})
#: A permit its holder may still stay on.
OPEN = frozenset({PermitStatus.ACTIVE, PermitStatus.EXTENDED})
#: A permit a present holder can overstay: open, or marked expired by the scheduler.
OVERSTAYABLE = OPEN | {PermitStatus.EXPIRED}


def zone_of(village_code: str | None) -> ZoneInfo:
    """The zone a person's days are counted in: their village's province's, else WIB."""
    return regions.time_zone(village_code) if village_code else regions.JAKARTA


def local_today(clock: Clock, village_code: str | None) -> date:
    """Today, where the person is."""
    return local_date(clock, zone_of(village_code))


def zone_name_sql(village_code: ColumnElement[str]) -> ColumnElement[str]:
    """:func:`zone_of` in SQL: the IANA zone of a village code column's province (WIB when null)."""
    province = func.left(village_code, 2)
    return case(
        (province.in_(sorted(regions.WITA_PROVINCES)), literal(regions.MAKASSAR.key, String)),
        (province.in_(sorted(regions.WIT_PROVINCES)), literal(regions.JAYAPURA.key, String)),
        else_=literal(regions.JAKARTA.key, String),
    )


def local_today_sql(now: datetime | ColumnElement[datetime], zone_name: ColumnElement[str]) -> ColumnElement[date]:
    """:func:`local_today` in SQL, per row: the date at ``now`` (a moment, or a bound parameter) in the row's zone."""
    return cast(func.timezone(zone_name, literal(now) if isinstance(now, datetime) else now), Date)


@dataclass(frozen=True, slots=True)
class Standing:
    #: Days until the permit's last valid day (negative once past it); None unless present on a permit that is
    #: still theirs.
    days_to_expiry: int | None
    overstaying: bool
    #: Days past the last valid day; None unless overstaying.
    days_overstayed: int | None


def standing(presence: str | None, status: str | None, expires_on: date | None, today: date) -> Standing:
    """The standing of a person with ``presence`` holding a permit of ``status`` that expires on ``expires_on``."""
    if presence != PresenceStatus.PRESENT.value or expires_on is None:
        return Standing(days_to_expiry=None, overstaying=False, days_overstayed=None)
    if status not in OVERSTAYABLE:  # a StrEnum set: its members equal their values
        return Standing(days_to_expiry=None, overstaying=False, days_overstayed=None)
    days = (expires_on - today).days
    return Standing(days_to_expiry=days, overstaying=days < 0, days_overstayed=-days if days < 0 else None)


def overstay(days_overstayed: int, rule: OverstaySettings, *, days_paid: int = 0) -> Overstay:
    """What ``days_overstayed`` (at least one) mean under the law: the fee still due for the days no payment
    settled, or, past the limit, no fee that settles it but deportation and a re-entry ban."""
    beyond = days_overstayed > rule.fee_limit_days
    return Overstay(
        days_overstayed=days_overstayed,
        fee_per_day_idr=rule.fee_per_day_idr,
        fee_due_idr=None if beyond else max(0, days_overstayed - days_paid) * rule.fee_per_day_idr,
        fee_limit_days=rule.fee_limit_days,
        deportation_due=beyond,
        legal_basis=rule.legal_basis,
    )
