"""The expiry scheduler: ``permit.expiring`` at each threshold before a permit's expiry date,
``permit.expired`` once it has passed with the holder still here, and ``permit.overstay-exceeded``
once the overstay passes the days a fee can settle (60, UU 6/2011 art. 78), each exactly once per
permit version and threshold.

Exactly once, even with several schedulers running at any hour and restarting at will, comes from
three things done in one transaction: the foreigner's row is locked (``SKIP LOCKED``, so schedulers
share the work instead of waiting), the notice is recorded under a unique key (permit, permit
version, kind, threshold), and the event goes to the outbox. An extension raises the permit's
version, which re-arms every threshold for the new date; a revocation, a departure or a newer permit
takes the permit out of the scan, which cancels what was pending.

Dates are counted in the time zone of the person's province (WIB, WITA or WIT): a permit expiring
"today" in Jayapura expired two hours earlier than one in Bangkalan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from prometheus_client import Counter
from sqlalchemy import Row, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.common.clock import Clock
from timpora.common.events import CloudEvent, new_event
from timpora.common.events.payloads import (
    AccommodationStay,
    Contract,
    PermitExpired,
    PermitExpiring,
    PermitOverstayExceeded,
    PermitStatus,
    PresenceStatus,
    StayOverdue,
)
from timpora.common.settings import OverstaySettings
from timpora.common.standing import OPEN, local_today, overstay
from timpora.registry import repository as repo
from timpora.registry.domain.changes import jurisdiction_of_snapshot, permit_from_row
from timpora.registry.models import expiry_notices, foreigners, permits, stays
from timpora.registry.settings import ExpirySettings

log = logging.getLogger(__name__)

EXPIRY_EVENTS = Counter("timpora_expiry_events_total", "Expiry events the scheduler emitted.", ["kind"])
SCHEDULER_ACTOR = "expiry-scheduler"
EXPIRING, EXPIRED, EXCEEDED = "expiring", "expired", "exceeded"


@dataclass(frozen=True, slots=True)
class Due:
    """What one permit is owed today: nothing, a reminder (possibly collapsing several), or the overstay."""

    kind: str
    threshold_days: int
    days: int
    collapsed: tuple[int, ...] = ()

    @property
    def covers(self) -> list[tuple[str, int]]:
        """The (kind, threshold) notices this one event stands for."""
        return [(self.kind, t) for t in (self.threshold_days, *self.collapsed)]


def due_notice(
    expires_on: date, today: date, thresholds: list[int], already: set[tuple[str, int]], *, limit_days: int
) -> Due | None:
    """The notice a permit is owed, given the notices already sent for its current version."""
    days_left = (expires_on - today).days
    if days_left < 0 and (EXPIRED, 0) not in already:
        return Due(EXPIRED, 0, days=-days_left)
    if days_left < -limit_days:
        # Past the limit: a second event, after the overstay's own (first seen this late, both go out now).
        return None if (EXCEEDED, limit_days) in already else Due(EXCEEDED, limit_days, days=-days_left)
    if days_left < 0:
        return None
    crossed = [threshold for threshold in thresholds if days_left <= threshold]
    pending = sorted((t for t in crossed if (EXPIRING, t) not in already), reverse=True)
    if not pending:
        return None
    # Thresholds crossed while no scheduler ran become one event, for the most urgent of them.
    return Due(EXPIRING, pending[-1], days=days_left, collapsed=tuple(pending[:-1]))


class ExpiryScheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: ExpirySettings,
        clock: Clock,
        source: str,
        *,
        topic: str,
        overstay: OverstaySettings,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._overstay = overstay
        self._clock = clock
        self._source = source
        self._topic = topic

    async def run(self) -> None:
        while True:
            emitted = await self.run_once()
            if emitted:
                log.info("expiry events emitted", extra={"count": emitted})
            await asyncio.sleep(self._settings.interval_s)

    async def run_once(self) -> int:
        """One pass over every open permit that may be owed a notice, then over the stays that may be overdue
        (``foreigner.stay-overdue`` once per stay still open past its planned end, or past the days allowed
        without one, of someone present); returns how many events it emitted."""
        permits_owed = await self._in_batches(self._candidates, self._notify, lambda row: row.foreigner_id)
        return permits_owed + await self._in_batches(self._open_stays, self._notify_overdue, lambda row: row.id)

    async def _in_batches(
        self,
        fetch: Callable[[AsyncSession, UUID | None], Awaitable[list[Row[Any]]]],
        notify: Callable[[AsyncSession, Row[Any]], Awaitable[int]],
        key: Callable[[Row[Any]], UUID],
    ) -> int:
        """``notify`` for every row ``fetch`` returns, a batch per transaction, ordered by ``key``."""
        emitted, after = 0, None
        while True:
            async with self._sessions() as session, session.begin():
                rows = await fetch(session, after)
                for row in rows:
                    emitted += await notify(session, row)
            if len(rows) < self._settings.batch_size:
                return emitted
            # Onwards, not again: a row not due yet in its own zone stays a candidate, and must not be re-read.
            after = key(rows[-1])

    async def _open_stays(self, session: AsyncSession, after: UUID | None) -> list[Row[Any]]:
        # The widest "today" any zone can have, plus a day: the exact check is per row, in the stay's zone.
        latest_today = self._clock.now().date() + timedelta(days=1)
        allowed = timedelta(days=self._settings.stay_overdue_after_days)
        statement = (
            select(stays, foreigners.c.version.label("foreigner_version"))
            .select_from(stays.join(foreigners, foreigners.c.stay_id == stays.c.id))
            .where(
                stays.c.check_out.is_(None),
                stays.c.overdue_event_id.is_(None),
                foreigners.c.presence == PresenceStatus.PRESENT.value,
                or_(
                    stays.c.planned_check_out < latest_today,
                    and_(stays.c.planned_check_out.is_(None), stays.c.check_in < latest_today - allowed),
                ),
                *([stays.c.id > after] if after is not None else []),
            )
            .order_by(stays.c.id)
            .limit(self._settings.batch_size)
            .with_for_update(of=(foreigners, stays), skip_locked=True)
        )
        return list((await session.execute(statement)).all())

    async def _notify_overdue(self, session: AsyncSession, row: Row[Any]) -> int:
        today = local_today(self._clock, row.village_code)
        if row.planned_check_out is not None:
            since = row.planned_check_out + timedelta(days=1)
        else:
            since = row.check_in + timedelta(days=self._settings.stay_overdue_after_days + 1)
        if today < since:
            return 0  # a day early in this zone; the next pass takes it
        snapshot = await repo.load_snapshot(session, row.foreigner_id)
        stay = AccommodationStay(
            provider=row.provider,
            village_code=row.village_code,
            check_in=row.check_in,
            accommodation_id=row.accommodation_id,
            planned_check_out=row.planned_check_out,
        )
        data = StayOverdue(
            foreigner=snapshot, jurisdiction=jurisdiction_of_snapshot(snapshot), stay=stay, overdue_since=since
        )
        event: CloudEvent[Contract] = new_event(
            data, source=self._source, subject=str(row.foreigner_id), time=self._clock.now()
        )
        await repo.update_stay(session, row.id, {"overdue_event_id": UUID(event.id)})
        await repo.append_event(
            session, event, topic=self._topic, actor=SCHEDULER_ACTOR, version=int(row.foreigner_version)
        )
        EXPIRY_EVENTS.labels("stay-overdue").inc()
        return 1

    async def _candidates(self, session: AsyncSession, after: UUID | None) -> list[Row[Any]]:
        # The widest horizon any time zone can have today, plus a day: finer checks happen per row.
        horizon = self._clock.now().date() + timedelta(days=max(self._settings.thresholds_days) + 1)
        # Overstays that may have passed the fee's limit today (a day early for the zones ahead of UTC)
        # and were not announced as such yet.
        exceeded_by = self._clock.now().date() - timedelta(days=self._overstay.fee_limit_days)
        announced = select(expiry_notices.c.permit_id).where(
            expiry_notices.c.permit_id == permits.c.id,
            expiry_notices.c.permit_version == permits.c.version,
            expiry_notices.c.kind == EXCEEDED,
        )
        statement = (
            select(
                foreigners.c.id.label("foreigner_id"),
                foreigners.c.version.label("foreigner_version"),
                foreigners.c.residence_village_code,
                foreigners.c.jurisdiction,
                permits,
            )
            .select_from(foreigners.join(permits, permits.c.id == foreigners.c.current_permit_id))
            .where(
                foreigners.c.presence == PresenceStatus.PRESENT.value,
                or_(
                    and_(permits.c.status.in_(sorted(OPEN)), permits.c.expires_on <= horizon),
                    and_(
                        permits.c.status == PermitStatus.EXPIRED.value,
                        permits.c.expires_on <= exceeded_by,
                        ~announced.exists(),
                    ),
                ),
                *([foreigners.c.id > after] if after is not None else []),
            )
            .order_by(foreigners.c.id)
            .limit(self._settings.batch_size)
            # Both rows are locked, so a change committed while this query ran is seen (the rows are
            # re-read when locked) instead of a stale permit being marked expired. SKIP LOCKED means
            # the scheduler never waits on a lock, so it cannot deadlock with a change.
            .with_for_update(of=(foreigners, permits), skip_locked=True)
        )
        return list((await session.execute(statement)).all())

    async def _notify(self, session: AsyncSession, row: Row[Any]) -> int:
        today = local_today(self._clock, row.jurisdiction)
        sent = await session.execute(
            select(expiry_notices.c.kind, expiry_notices.c.threshold_days).where(
                and_(expiry_notices.c.permit_id == row.id, expiry_notices.c.permit_version == row.version)
            )
        )
        already = {(k, t) for k, t in sent.all()}
        version, marked, emitted = int(row.foreigner_version), row.status == PermitStatus.EXPIRED.value, 0
        # An overstay first seen past the fee's limit owes two events, the overstay's and then the limit's.
        while (
            due := due_notice(
                row.expires_on, today, self._settings.thresholds_days, already, limit_days=self._overstay.fee_limit_days
            )
        ) is not None:
            version = await self._emit(session, row, due, version, marked=marked)
            marked = marked or due.kind != EXPIRING
            already |= set(due.covers)
            emitted += 1
        return emitted

    async def _emit(self, session: AsyncSession, row: Row[Any], due: Due, version: int, *, marked: bool) -> int:
        """One event for ``due``, marking the permit expired first if it is an overstay; the person's version."""
        if due.kind != EXPIRING and not marked:
            await repo.update_permit(
                session, row.id, {"status": PermitStatus.EXPIRED.value, "updated_at": self._clock.now()}
            )
            version += 1
            await repo.update_foreigner(
                session,
                row.foreigner_id,
                {"version": version, **repo.now_column_values(SCHEDULER_ACTOR, self._clock.now())},
            )
        snapshot = await repo.load_snapshot(session, row.foreigner_id)
        jurisdiction = jurisdiction_of_snapshot(snapshot)
        permit = permit_from_row(row)
        data: Contract
        if due.kind != EXPIRING:
            expired = permit.model_copy(update={"status": PermitStatus.EXPIRED})
            owed = overstay(due.days, self._overstay, days_paid=row.fee_days_covered or 0)
            data = (
                PermitExpired(
                    foreigner=snapshot,
                    jurisdiction=jurisdiction,
                    permit=expired,
                    days_overstayed=due.days,
                    overstay=owed,
                )
                if due.kind == EXPIRED
                else PermitOverstayExceeded(
                    foreigner=snapshot, jurisdiction=jurisdiction, permit=expired, overstay=owed
                )
            )
        else:
            data = PermitExpiring(
                foreigner=snapshot,
                jurisdiction=jurisdiction,
                permit=permit,
                threshold_days=due.threshold_days,
                days_left=due.days,
                collapsed_thresholds=list(due.collapsed),
            )
        event: CloudEvent[Contract] = new_event(
            data, source=self._source, subject=str(row.foreigner_id), time=self._clock.now()
        )
        await session.execute(
            insert(expiry_notices),
            [
                {
                    "permit_id": row.id,
                    "permit_version": row.version,
                    "kind": kind,
                    "threshold_days": threshold,
                    "event_id": UUID(event.id),
                }
                for kind, threshold in due.covers
            ],
        )
        await repo.append_event(session, event, topic=self._topic, actor=SCHEDULER_ACTOR, version=version)
        EXPIRY_EVENTS.labels(due.kind).inc()
        return version
