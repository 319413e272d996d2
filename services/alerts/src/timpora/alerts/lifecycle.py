"""An alert after it is opened: acknowledged and resolved by its agency, escalated when nobody acts,
and gathered into a daily digest when its rule asks for one.

Escalation and digests run on the service's clock (injectable), in small transactions that lock the
rows they change (``SKIP LOCKED``), so several instances may run them at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Row, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.alerts import queue
from timpora.alerts.alerting import Alerting, alert_id_for, later_notice, original_event
from timpora.alerts.domain import notices
from timpora.alerts.domain.routing import Decision, Directory, Subject, agency_for_level_above
from timpora.alerts.domain.rules import Severity
from timpora.alerts.models import (
    OPEN,
    alerts,
    deliveries,
    delivery_attempts,
    digests,
    gatherings,
    routed_events,
    village_reports,
)
from timpora.alerts.settings import LifecycleSettings
from timpora.common.register.members import Agency, Channel

_DIGESTS = uuid.UUID("8f3a6c1e-94b2-4d0a-b7e5-2c9d41f06a33")
#: Escalated to the agency's escalation contacts; then to the next level of jurisdiction.
TO_CONTACTS, TO_NEXT_LEVEL = 1, 2


#: A change made to one alert in a transaction; False when the agency has no such alert.
Action = Callable[[AsyncSession], Awaitable[bool]]


class AlertStateError(Exception):
    """The alert is not in a state that allows the change (e.g. acknowledging a resolved alert)."""


@dataclass(frozen=True, slots=True)
class Change:
    alert_id: UUID
    agency_id: str
    by: str
    at: datetime


async def acknowledge(session: AsyncSession, change: Change) -> bool:
    """Marks an open alert acknowledged; True also when it already was. False: no such alert for the agency."""
    status = await _status_for_update(session, change)
    if status is None:
        return False
    if status == "open":
        await session.execute(
            update(alerts)
            .where(alerts.c.id == change.alert_id)
            .values(status="acknowledged", acknowledged_at=change.at, acknowledged_by=change.by)
        )
    elif status != "acknowledged":
        raise AlertStateError(f"the alert is {status}; only an open alert can be acknowledged")
    return True


async def resolve(session: AsyncSession, change: Change, resolution: str) -> bool:
    status = await _status_for_update(session, change)
    if status is None:
        return False
    if status not in {"open", "acknowledged"}:
        raise AlertStateError(f"the alert is already {status}")
    values: dict[str, Any] = {"status": "resolved", "resolved_at": change.at, "resolved_by": change.by}
    if status == "open":
        values |= {"acknowledged_at": change.at, "acknowledged_by": change.by}
    await session.execute(update(alerts).where(alerts.c.id == change.alert_id).values(resolution=resolution, **values))
    return True


async def _status_for_update(session: AsyncSession, change: Change) -> str | None:
    # Another agency's alert and no alert at all look the same to the caller.
    return await session.scalar(
        select(alerts.c.status)
        .where(alerts.c.id == change.alert_id, alerts.c.agency_id == change.agency_id)
        .with_for_update()
    )


#: Alerts that go up when nobody acknowledges them: overstays, and overstays past the fee's limit.
ESCALATED = ("permit.expired", "permit.overstay-exceeded")


async def escalate_due(session: AsyncSession, alerting: Alerting, *, now: datetime, after: timedelta) -> int:
    """Escalates overstay alerts nobody acknowledged within ``after``: to the agency's escalation contacts,
    then (``after`` later still) to the nearest agency of a wider jurisdiction. Returns how many moved up."""
    directory = await alerting.directory(session)
    due = (
        await session.execute(
            select(alerts)
            .where(alerts.c.status == "open", alerts.c.event_type.in_(ESCALATED))
            .where(alerts.c.agency_id.in_(list(directory.agencies)))
            .where(alerts.c.escalation_level < TO_NEXT_LEVEL)
            .where(
                or_(
                    and_(alerts.c.escalation_level == 0, alerts.c.created_at <= now - after),
                    and_(alerts.c.escalation_level == TO_CONTACTS, alerts.c.escalated_at <= now - after),
                )
            )
            .order_by(alerts.c.created_at)
            .limit(500)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in due:
        agency = directory.agencies.get(row.agency_id)
        if agency is None:
            continue
        level = row.escalation_level + 1
        if level == TO_CONTACTS:
            await _to_contacts(session, row, agency, now=now, after=after)
        else:
            await _to_next_level(session, alerting, directory, row, agency, now=now, after=after)
        await session.execute(
            update(alerts).where(alerts.c.id == row.id).values(escalation_level=level, escalated_at=now)
        )
    await alerting.flush(session)  # the alerts opened for wider jurisdictions
    return len(due)


async def _to_contacts(
    session: AsyncSession, row: Row[Any], agency: Agency, *, now: datetime, after: timedelta
) -> None:
    if not agency.escalation_contacts:
        return
    await queue.enqueue(
        session,
        later_notice(
            row.id,
            key="escalation",
            kind="escalation",
            agency_id=agency.id,
            notice=row.notice,
            channels=[Channel.EMAIL],
            now=now,
            gathered=agency.grouped_channels(),
            recipients=agency.escalation_contacts,
            extra={"escalation": {"level": TO_CONTACTS, "unacknowledged_for_hours": after.total_seconds() / 3600}},
        ),
    )


async def _to_next_level(
    session: AsyncSession,
    alerting: Alerting,
    directory: Directory,
    row: Row[Any],
    agency: Agency,
    *,
    now: datetime,
    after: timedelta,
) -> None:
    original = await original_event(session, row.event_id)
    if original is None or not row.place:
        return
    subject = Subject.of(row.event_type, original.data)
    wider = agency_for_level_above(agency, row.place, directory, subject, now)
    if wider is None:
        return
    hours = round(2 * after.total_seconds() / 3600, 1)
    escalation = {"level": TO_NEXT_LEVEL, "from_agency": agency.id, "from_alert": str(row.id)}
    await alerting.flush(session)  # an alert opened for the wider agency earlier in this round is read below
    held = (
        await session.execute(
            select(alerts.c.id, alerts.c.status, alerts.c.notice, alerts.c.channels).where(
                alerts.c.id == alert_id_for(row.event_id, wider.id)
            )
        )
    ).first()
    if held is not None:
        # The wider agency has this alert already (its own rules chose it): it is told that the nearer one
        # did not act, on the alert it has, unless it closed it itself.
        if held.status in OPEN:
            await queue.enqueue(
                session,
                later_notice(
                    held.id,
                    key=f"escalated-from:{row.id}",
                    kind="escalation",
                    agency_id=wider.id,
                    notice=held.notice,
                    channels=held.channels,
                    now=now,
                    held=directory.held(wider),
                    gathered=wider.grouped_channels(),
                    extra={"escalation": escalation},
                ),
            )
        return
    await alerting.open_alert(
        session,
        directory,
        event_id=str(row.event_id),
        event_type=row.event_type,
        occurred_at=original.occurred_at,
        data=original.data,
        decision=Decision(
            agency_id=wider.id,
            severity=Severity.CRITICAL,
            channels=directory.configured(wider, Channel),
            digest=False,
            reasons=(f"escalated: {agency.id} did not acknowledge alert {row.id} within {hours} h",),
            rule_ids=tuple(row.rule_ids),
        ),
        now=now,
        place=row.place,
        extra={"escalation": escalation},
    )


async def send_digests(session: AsyncSession, alerting: Alerting, *, now: datetime) -> int:
    """Sends each agency whose digest time has come today its waiting alerts in one message."""
    waiting = (
        await session.execute(
            select(alerts.c.agency_id)
            .where(alerts.c.digest, alerts.c.digested_at.is_(None), alerts.c.status.in_(("open", "acknowledged")))
            .distinct()
        )
    ).scalars()
    directory = await alerting.directory(session)
    sent = 0
    for agency_id in list(waiting):
        agency = directory.agencies.get(agency_id)
        local = now.astimezone(agency.zone) if agency else None
        if agency is None or local is None or local.time() < agency.digest_time:
            continue
        sent += await _digest(session, directory, agency, day=local.date(), now=now)
    return sent


async def _digest(session: AsyncSession, directory: Directory, agency: Agency, *, day: date, now: datetime) -> int:
    rows = (
        await session.execute(
            select(alerts.c.id, alerts.c.notice, alerts.c.channels)
            .where(alerts.c.agency_id == agency.id, alerts.c.digest, alerts.c.digested_at.is_(None))
            .where(alerts.c.status.in_(("open", "acknowledged")), alerts.c.created_at <= now)
            .order_by(alerts.c.created_at, alerts.c.id)
            # Waits for an alert being acknowledged or moved rather than leaving it out of today's digest.
            .with_for_update()
        )
    ).all()
    if not rows:
        return 0
    message_id = uuid.uuid5(_DIGESTS, f"{agency.id}:{day.isoformat()}")
    created = await session.execute(
        insert(digests)
        .values(id=message_id, agency_id=agency.id, local_date=day, alert_ids=[row.id for row in rows], created_at=now)
        .on_conflict_do_nothing()
        .returning(digests.c.id)
    )
    if created.first() is None:
        return 0  # today's digest already went: the rest waits for tomorrow's
    channels = {Channel(channel) for row in rows for channel in row.channels}
    await queue.enqueue(
        session,
        queue.Message(
            message_id=message_id,
            kind="digest",
            agency_id=agency.id,
            channels=directory.configured(agency, channels),
            held=directory.held(agency),
            payload=notices.digest_message(
                message_id=message_id, agency_id=agency.id, day=day, notices=[row.notice for row in rows]
            ),
            now=now,
        ),
    )
    await session.execute(update(alerts).where(alerts.c.id.in_([row.id for row in rows])).values(digested_at=now))
    return 1


async def purge(session: AsyncSession, *, now: datetime, retention: timedelta) -> int:
    """Deletes what is past ``retention``: alerts closed that long ago (and open ones that are not critical)
    with their notices and attempts, and events no alert refers to any more. Returns how many alerts went."""
    before = now - retention
    closed = (
        select(alerts.c.id)
        .where(
            or_(
                and_(alerts.c.status.in_(("resolved", "superseded")), alerts.c.resolved_at < before),
                # Notices nobody closes (an arrival, an issued permit) age out too; an open overstay does not.
                and_(alerts.c.severity != "critical", alerts.c.created_at < before),
            )
        )
        .scalar_subquery()
    )
    # Notices of closed alerts, and messages of no one alert (digests, groups, endpoint notices) long settled — or
    # held that long by a webhook nobody enabled again: what they carry is past its time too.
    notices_gone = or_(
        deliveries.c.alert_id.in_(closed),
        and_(
            deliveries.c.alert_id.is_(None),
            deliveries.c.created_at < before,
            deliveries.c.status.in_(("delivered", "dead", "cancelled", "held")),
        ),
    )
    gone = select(deliveries.c.id).where(notices_gone).scalar_subquery()
    await session.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(gone)))
    await session.execute(delete(deliveries).where(notices_gone))
    await session.execute(delete(digests).where(digests.c.created_at < before))
    # A channel quiet for that long keeps no record of it (for escalations it names the contacts' addresses).
    await session.execute(delete(gatherings).where(gatherings.c.last_formed_at < before))
    removed = await session.execute(delete(alerts).where(alerts.c.id.in_(closed)))
    still_needed = select(alerts.c.event_id).where(alerts.c.event_id == routed_events.c.event_id).exists()
    await session.execute(delete(routed_events).where(routed_events.c.routed_at < before, ~still_needed))
    # A village's report (its words, its photo) goes with the last of its alerts.
    report_needed = select(alerts.c.id).where(alerts.c.report_id == village_reports.c.id).exists()
    await session.execute(delete(village_reports).where(village_reports.c.created_at < before, ~report_needed))
    return int(removed.rowcount)  # type: ignore[attr-defined]


async def run(sessions: async_sessionmaker[AsyncSession], alerting: Alerting, settings: LifecycleSettings) -> None:
    """Escalations and digests every ``tick_s``, and the retention purge, until cancelled."""
    while True:
        now = alerting.clock.now()
        async with sessions() as session, session.begin():
            await escalate_due(session, alerting, now=now, after=settings.escalate_after)
        async with sessions() as session, session.begin():
            await send_digests(session, alerting, now=now)
        async with sessions() as session, session.begin():
            await purge(session, now=now, retention=settings.retention)
        await asyncio.sleep(settings.tick_s)
