"""Grouping: a burst of notices becomes a few messages per agency and channel, as Alertmanager groups alerts.

A notice about an alert (new, resolved, escalated) is queued ``gathering``. For each agency and channel (and, for
escalation e-mails, each set of recipients) the first notice of a quiet spell waits the agency's ``wait_s``; then
every notice gathered meanwhile goes out in one message (a delivery of kind ``group``, retried, leased, held and
recorded like any other). While the burst lasts the next message follows no sooner than ``interval_s`` after the
previous one. The agency register sets both, per agency, and may let a channel take one message per notice.

Which notices a message shows in full, and how many, is decided when it is sent (``notices.as_sent``), under the
agreement in force then; every notice keeps its own id inside it, and its alert is acknowledged on its own.
Several workers may gather at once: a channel's row in ``gatherings`` is locked while its message forms.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.alerts.agencies import DirectoryCache
from timpora.alerts.domain import notices
from timpora.alerts.models import deliveries, gatherings
from timpora.alerts.queue import GROUP
from timpora.common.clock import Clock
from timpora.common.register.members import Agency, Channel

#: Notices one message holds at most (each is stored in it in full until it is sent); the rest of a larger burst
#: follow in the next message, an interval later.
MAX_NOTICES = 1000


@dataclass(frozen=True, slots=True)
class Gathering:
    """The notices waiting for one agency's channel (and recipients)."""

    agency_id: str
    channel: str
    recipients: tuple[str, ...] | None
    first_at: datetime

    @property
    def key(self) -> str:
        """The recipients as ``gatherings`` keys them: "" for the agency's own."""
        return ",".join(self.recipients) if self.recipients is not None else ""

    def waiting(self) -> ColumnElement[bool]:
        row = deliveries.c
        recipients = row.recipients.is_(None) if self.recipients is None else row.recipients == list(self.recipients)
        return (
            (row.status == "gathering") & (row.agency_id == self.agency_id) & (row.channel == self.channel) & recipients
        )


def due_at(grouping_wait: timedelta, interval: timedelta, first_at: datetime, last_formed: datetime | None) -> datetime:
    """When a channel's next message goes: its first waiting notice's wait over, and an interval since the last."""
    waited = first_at + grouping_wait
    return waited if last_formed is None else max(waited, last_formed + interval)


class Grouper:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], directory: DirectoryCache, clock: Clock) -> None:
        self._sessions = sessions
        self._directory = directory
        self._clock = clock

    async def run_once(self) -> int:
        """Forms every message that is due now and lets go, one by one, the notices of channels an agency takes
        ungrouped (or of an agency gone from the register, for delivery to refuse and record). Returns how many
        notices it moved on."""
        now = self._clock.now()
        async with self._sessions() as session:
            row = deliveries.c
            waiting = [
                Gathering(
                    found.agency_id,
                    found.channel,
                    tuple(found.recipients) if found.recipients else None,
                    found.first_at,
                )
                for found in await session.execute(
                    select(row.agency_id, row.channel, row.recipients, func.min(row.created_at).label("first_at"))
                    .where(row.status == "gathering")
                    .group_by(row.agency_id, row.channel, row.recipients)
                )
            ]
            if not waiting:
                return 0
            directory = await self._directory.get(session)
            formed = {
                (found.agency_id, found.channel, found.recipients): found.last_formed_at
                for found in await session.execute(select(gatherings))
            }
        moved = 0
        for gathering in waiting:
            agency = directory.agencies.get(gathering.agency_id)
            if agency is None or not agency.grouping.on(Channel(gathering.channel)).grouped:
                moved += await self._let_go(gathering, now)
                continue
            grouping = agency.grouping
            last = formed.get((gathering.agency_id, gathering.channel, gathering.key))
            wait, interval = timedelta(seconds=grouping.wait_s), timedelta(seconds=grouping.interval_s)
            if due_at(wait, interval, gathering.first_at, last) <= now:
                moved += await self._form(gathering, agency, interval, now)
        return moved

    async def _let_go(self, gathering: Gathering, now: datetime) -> int:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(deliveries).where(gathering.waiting()).values(status="pending", next_attempt_at=now)
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _form(self, gathering: Gathering, agency: Agency, interval: timedelta, now: datetime) -> int:
        async with self._sessions() as session, session.begin():
            channel_of = (
                (gatherings.c.agency_id == gathering.agency_id)
                & (gatherings.c.channel == gathering.channel)
                & (gatherings.c.recipients == gathering.key)
            )
            await session.execute(
                insert(gatherings)
                .values(agency_id=gathering.agency_id, channel=gathering.channel, recipients=gathering.key)
                .on_conflict_do_nothing()
            )
            # The channel's lock: another worker forming its message now, this one leaves it.
            locked = (
                await session.execute(
                    select(gatherings.c.last_formed_at).where(channel_of).with_for_update(skip_locked=True)
                )
            ).first()
            if locked is None or (locked.last_formed_at is not None and locked.last_formed_at + interval > now):
                return 0
            members = (
                await session.execute(
                    select(deliveries.c.id, deliveries.c.payload)
                    .where(gathering.waiting())
                    .order_by(deliveries.c.id)
                    .limit(MAX_NOTICES)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not members:
                return 0
            group_id = uuid.uuid4()
            payload: dict[str, Any] = notices.group_message(
                message_id=group_id, agency_id=agency.id, notices=[member.payload for member in members]
            )
            await session.execute(
                insert(deliveries).values(
                    message_id=group_id,
                    message=GROUP,
                    alert_id=None,
                    agency_id=agency.id,
                    channel=gathering.channel,
                    recipients=list(gathering.recipients) if gathering.recipients is not None else None,
                    payload=payload,
                    created_at=now,
                    next_attempt_at=now,
                    status="pending",
                )
            )
            await session.execute(
                update(deliveries)
                .where(deliveries.c.id.in_([member.id for member in members]))
                .values(status="grouped", group_id=group_id, last_detail=f"in message {group_id}")
            )
            await session.execute(update(gatherings).where(channel_of).values(last_formed_at=now))
        return len(members)
