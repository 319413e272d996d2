"""Where a person stands with their permit: one rule for every service (timpora.common.standing)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.support.clock import ManualClock
from timpora.common.events.payloads import PermitStatus, PresenceStatus
from timpora.common.standing import OVERSTAYABLE, local_today, standing

days = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


@given(
    presence=st.sampled_from(PresenceStatus),
    status=st.sampled_from(PermitStatus),
    expires_on=days,
    today=days,
)
def test_only_someone_present_on_a_permit_still_theirs_can_overstay(
    presence: PresenceStatus, status: PermitStatus, expires_on: date, today: date
) -> None:
    found = standing(presence.value, status.value, expires_on, today)

    counts = presence is PresenceStatus.PRESENT and status in OVERSTAYABLE
    assert found.overstaying == (counts and today > expires_on)
    assert found.days_overstayed == ((today - expires_on).days if found.overstaying else None)
    assert found.days_to_expiry == ((expires_on - today).days if counts else None)


def test_a_visitor_who_left_on_time_is_not_overstaying_months_later() -> None:
    # The example: left on 20 Feb with a visit permit valid to 1 Mar, looked at on 1 Jun.
    found = standing(PresenceStatus.DEPARTED.value, PermitStatus.ENDED.value, date(2026, 3, 1), date(2026, 6, 1))

    assert (found.overstaying, found.days_to_expiry, found.days_overstayed) == (False, None, None)


def test_the_last_valid_day_is_not_an_overstay_and_the_day_after_is_the_first() -> None:
    expires = date(2026, 12, 1)
    on_the_day = standing("present", "active", expires, expires)
    after = standing("present", "active", expires, expires + timedelta(days=1))

    assert (on_the_day.overstaying, on_the_day.days_to_expiry) == (False, 0)
    assert (after.overstaying, after.days_overstayed) == (True, 1)


def test_days_are_counted_on_the_persons_local_date() -> None:
    # 16:30 UTC: 23:30 in Bangkalan (WIB), 00:30 the next day in Makassar (WITA) and 01:30 in Jayapura (WIT).
    clock = ManualClock(datetime(2026, 12, 1, 16, 30, tzinfo=UTC))

    assert local_today(clock, "35.26.05.2003") == date(2026, 12, 1)
    assert local_today(clock, "73.71.01.1001") == date(2026, 12, 2)
    assert local_today(clock, "91.71.01.1001") == date(2026, 12, 2)
    assert local_today(clock, None) == date(2026, 12, 1)
