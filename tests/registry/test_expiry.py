"""Expiry reminders and overstays: each exactly once per permit version and threshold, whatever the
hour, the gaps between runs, the number of schedulers, and the changes in between."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tests.registry.conftest import START, Registry, permit
from timpora.registry.expiry import EXCEEDED, EXPIRED, EXPIRING, ExpiryScheduler, due_notice
from timpora.registry.models import outbox
from timpora.registry.settings import ExpirySettings

THRESHOLDS = [30, 14, 7, 1]
LIMIT = 60


def _scheduler(registry: Registry) -> ExpiryScheduler:
    return ExpiryScheduler(
        registry.sessions,
        ExpirySettings(batch_size=50),
        registry.clock,
        "/timpora/registry",
        topic=registry.runtime.settings.kafka.catalog.registry_events.name,
        overstay=registry.runtime.settings.overstay,
    )


async def _expiry_events(registry: Registry, fid: str) -> list[dict[str, Any]]:
    async with registry.sessions() as session:
        rows = await session.execute(
            select(outbox.c.event_type, outbox.c.payload)
            .where(outbox.c.partition_key == fid, outbox.c.event_type.like("id.timpora.permit.expir%"))
            .order_by(outbox.c.id)
        )
    found = []
    for event_type, payload in rows:
        data = json.loads(payload)
        found.append(
            {
                "type": event_type.split(".")[3],
                "threshold": data.get("threshold_days"),
                "days": data.get("days_left", data.get("days_overstayed")),
                "collapsed": data.get("collapsed_thresholds"),
                "status": data["permit"]["status"],
            }
        )
    return found


async def _person_with_permit(registry: Registry, expires_on: date, village: str = "35.26.05.2003") -> tuple[str, str]:
    fid = (await registry.new_foreigner())["foreigner_id"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/residence",
        json={"address": "Jl. Contoh 1", "village_code": village, "since": "2026-11-01"},
    )
    issued = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(issued_on="2026-10-01", expires_on=expires_on.isoformat())
    )
    assert issued.status_code == 201, issued.text
    return fid, issued.json()["permit"]["permit_id"]


def _at_noon_jakarta(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 5, 0, tzinfo=UTC)


async def test_each_threshold_then_the_overstay_is_announced_once(registry: Registry) -> None:
    expires = START.date() + timedelta(days=40)
    fid, _ = await _person_with_permit(registry, expires)
    scheduler = _scheduler(registry)

    for days_left in [40, 31, 30, 30, 20, 14, 13, 7, 2, 1, 0, -1, -2]:
        registry.clock.current = _at_noon_jakarta(expires - timedelta(days=days_left))
        await scheduler.run_once()
        await scheduler.run_once()  # a second pass the same day finds nothing new

    assert await _expiry_events(registry, fid) == [
        {"type": "expiring", "threshold": 30, "days": 30, "collapsed": [], "status": "active"},
        {"type": "expiring", "threshold": 14, "days": 14, "collapsed": [], "status": "active"},
        {"type": "expiring", "threshold": 7, "days": 7, "collapsed": [], "status": "active"},
        {"type": "expiring", "threshold": 1, "days": 1, "collapsed": [], "status": "active"},
        {"type": "expired", "threshold": None, "days": 1, "collapsed": None, "status": "expired"},
    ]
    record = (await registry.client.get(f"/v1/foreigners/{fid}")).json()
    assert record["foreigner"]["permit"]["status"] == "expired"
    assert record["history"][-1]["event_type"] == "permit.expired"
    assert record["history"][-1]["actor"] == "expiry-scheduler"


async def test_thresholds_crossed_while_no_scheduler_ran_are_collapsed_into_one_event(registry: Registry) -> None:
    expires = START.date() + timedelta(days=40)
    fid, _ = await _person_with_permit(registry, expires)

    registry.clock.current = _at_noon_jakarta(expires - timedelta(days=5))
    await _scheduler(registry).run_once()

    assert await _expiry_events(registry, fid) == [
        {"type": "expiring", "threshold": 7, "days": 5, "collapsed": [30, 14], "status": "active"}
    ]


async def test_two_schedulers_at_once_announce_each_permit_exactly_once(registry: Registry) -> None:
    expires = START.date() + timedelta(days=45)
    people = [await _person_with_permit(registry, expires) for _ in range(12)]
    registry.clock.current = _at_noon_jakarta(expires - timedelta(days=3))

    await asyncio.gather(*(_scheduler(registry).run_once() for _ in range(3)))
    await asyncio.gather(*(_scheduler(registry).run_once() for _ in range(3)))

    for fid, _ in people:
        assert await _expiry_events(registry, fid) == [
            {"type": "expiring", "threshold": 7, "days": 3, "collapsed": [30, 14], "status": "active"}
        ]


async def test_an_extension_cancels_what_was_pending_and_rearms_for_the_new_date(registry: Registry) -> None:
    expires = START.date() + timedelta(days=50)
    fid, permit_id = await _person_with_permit(registry, expires)
    scheduler = _scheduler(registry)
    registry.clock.current = _at_noon_jakarta(expires - timedelta(days=6))
    await scheduler.run_once()

    extended = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{permit_id}/extension",
        json={"expires_on": (expires + timedelta(days=20)).isoformat()},
    )
    assert extended.status_code == 200, extended.text
    await scheduler.run_once()
    registry.clock.advance(days=14)
    await scheduler.run_once()

    assert await _expiry_events(registry, fid) == [
        {"type": "expiring", "threshold": 7, "days": 6, "collapsed": [30, 14], "status": "active"},
        {"type": "expiring", "threshold": 30, "days": 26, "collapsed": [], "status": "extended"},
        {"type": "expiring", "threshold": 14, "days": 12, "collapsed": [], "status": "extended"},
    ]


async def test_a_revocation_or_a_departure_cancels_pending_reminders(registry: Registry) -> None:
    expires = START.date() + timedelta(days=55)
    revoked_fid, permit_id = await _person_with_permit(registry, expires)
    departed_fid, _ = await _person_with_permit(registry, expires)
    await registry.client.post(f"/v1/foreigners/{revoked_fid}/permits/{permit_id}/revocation", json={"reason": "fraud"})
    await registry.client.post(
        f"/v1/foreigners/{departed_fid}/departure", json={"port": "Juanda", "departed_on": "2026-11-03"}
    )

    for days_left in [30, 7, 1, -3]:
        registry.clock.current = _at_noon_jakarta(expires - timedelta(days=days_left))
        await _scheduler(registry).run_once()

    assert await _expiry_events(registry, revoked_fid) == []
    assert await _expiry_events(registry, departed_fid) == []


async def test_days_are_counted_in_the_persons_own_time_zone(registry: Registry) -> None:
    expires = START.date() + timedelta(days=60)
    in_bangkalan, _ = await _person_with_permit(registry, expires, village="35.26.05.2003")
    in_jayapura, _ = await _person_with_permit(registry, expires, village="91.71.01.1001")
    # 16:30 UTC: 23:30 on the expiry day in Bangkalan (WIB), already 01:30 the next day in Jayapura (WIT).
    registry.clock.current = datetime(expires.year, expires.month, expires.day, 16, 30, tzinfo=UTC)

    await _scheduler(registry).run_once()

    assert (await _expiry_events(registry, in_bangkalan))[-1]["type"] == EXPIRING
    assert (await _expiry_events(registry, in_jayapura))[-1] == {
        "type": EXPIRED,
        "threshold": None,
        "days": 1,
        "collapsed": None,
        "status": "expired",
    }


@given(
    expires=st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 1, 1)),
    gaps=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=30),
    start_offset=st.integers(min_value=-5, max_value=60),
)
def test_a_walk_through_time_owes_each_threshold_at_most_once_and_misses_none_it_passed(
    expires: date, gaps: list[int], start_offset: int
) -> None:
    # Gaps up to 20 days over up to 30 runs walk well past the overstay limit: the walk covers it too.
    sent: set[tuple[str, int]] = set()
    announced: list[int] = []
    today = expires - timedelta(days=start_offset)
    observed_days_left = []
    for gap in gaps:
        today += timedelta(days=gap)
        observed_days_left.append((expires - today).days)
        # As the scheduler does: everything owed today, one event after another.
        while (due := due_notice(expires, today, THRESHOLDS, sent, limit_days=LIMIT)) is not None:
            covered = due.covers
            assert not any(notice in sent for notice in covered), "a threshold announced twice"
            if due.kind == EXCEEDED:
                assert due.days > LIMIT
                assert (EXPIRED, 0) in sent, "the limit's event before the overstay's own"
            sent |= set(covered)
            announced.extend(t for kind, t in covered if kind == EXPIRING)
            if due.kind != EXPIRING:
                assert today > expires
                assert due.days == (today - expires).days

    assert len(announced) == len(set(announced))
    reached = {t for t in THRESHOLDS for left in observed_days_left if 0 <= left <= t}
    assert set(announced) == reached
    assert ((EXPIRED, 0) in sent) is any(left < 0 for left in observed_days_left)
    assert ((EXCEEDED, LIMIT) in sent) is any(left < -LIMIT for left in observed_days_left)


async def test_a_returning_visitor_is_not_overstaying_on_the_old_permit(registry: Registry) -> None:
    # The case: a visitor left before their visit permit expired and came back half a year later;
    # before the new permit was entered, the scheduler announced 185 days of overstay on the old one.
    expires = START.date() + timedelta(days=20)
    fid = (await registry.new_foreigner(arrived_on=START.date().isoformat()))["foreigner_id"]
    passport = (await registry.client.get(f"/v1/foreigners/{fid}")).json()["foreigner"]["passport"]
    issued = await registry.client.post(
        f"/v1/foreigners/{fid}/permits",
        json=permit(type="visit", issued_on=START.date().isoformat(), expires_on=expires.isoformat()),
    )
    assert issued.status_code == 201, issued.text
    await registry.client.post(
        f"/v1/foreigners/{fid}/departure",
        json={"port": "Juanda International Airport", "departed_on": (START.date() + timedelta(days=10)).isoformat()},
    )
    back_on = expires + timedelta(days=185)
    back = await registry.arrive(passport=passport, arrived_on=back_on.isoformat())
    assert back.status_code == 200, back.text

    registry.clock.current = _at_noon_jakarta(back_on)
    await _scheduler(registry).run_once()
    registry.clock.advance(days=3)
    await _scheduler(registry).run_once()

    assert await _expiry_events(registry, fid) == []


async def test_a_departure_entered_late_undoes_an_overstay_the_scheduler_saw_before_it(registry: Registry) -> None:
    # The scheduler ran after the expiry while the registry still thought the visitor here; the departure,
    # entered afterwards, says they left before the expiry: there was no overstay.
    expires = START.date() + timedelta(days=10)
    fid, _ = await _person_with_permit(registry, expires)
    registry.clock.current = _at_noon_jakarta(expires + timedelta(days=2))
    await _scheduler(registry).run_once()
    assert (await registry.client.get(f"/v1/foreigners/{fid}")).json()["foreigner"]["permit"]["status"] == "expired"

    departed = await registry.client.post(
        f"/v1/foreigners/{fid}/departure",
        json={"port": "Juanda International Airport", "departed_on": (expires - timedelta(days=1)).isoformat()},
    )

    assert departed.status_code == 200, departed.text
    # Not overstayed after all: the ITAS ended with the exit (no re-entry permit), on the day they left.
    assert (departed.json()["permit"]["status"], departed.json()["permit"]["end_reason"]) == ("ended", "exit")


async def test_the_search_for_expiring_permits_leaves_out_those_already_overstayed(registry: Registry) -> None:
    overstayed, _ = await _person_with_permit(registry, START.date() + timedelta(days=10))
    expiring, _ = await _person_with_permit(registry, START.date() + timedelta(days=40))
    registry.clock.current = _at_noon_jakarta(START.date() + timedelta(days=30))

    found = await registry.client.get("/v1/foreigners", params={"expiring_within_days": 14, "limit": 500})

    ids = {item["foreigner_id"] for item in found.json()["items"]}
    assert expiring in ids
    assert overstayed not in ids
