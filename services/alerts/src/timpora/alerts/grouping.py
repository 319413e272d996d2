"""Grouping: a burst of notices becomes a few messages per agency and channel, as Alertmanager groups alerts.

A notice about an alert (new, resolved, escalated) is queued ``gathering``. For each agency and channel (and, for
escalation e-mails, each set of recipients) the first notice of a quiet spell waits the agency's ``wait_s``; then
every notice gathered meanwhile goes out in one message (a delivery of kind ``group``, retried, leased, held and
recorded like any other) — or, for a backlog larger than a message holds, in as many messages as it needs, all at
once. While the burst lasts the next messages follow no sooner than ``interval_s`` after the previous ones —
except the first word on something critical (a new or escalated critical alert): it never waits longer than
``wait_s``, unless messages carrying something critical already went within the interval. So a channel's messages
form at most twice an interval. The agency register sets both times, per agency, and may let a channel take one
message per notice. Of a backlog, the first message takes the critical notices, then the oldest.

Which notices a message shows in full, and how many, is decided when it is sent (``notices.as_sent``), under the
agreement in force then; every notice keeps its own id inside it, and its alert is acknowledged on its own.
Several workers may gather at once: a channel's row in ``gatherings`` is locked while its message forms.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.alerts import queue
from timpora.alerts.agencies import DirectoryCache
from timpora.alerts.domain import notices
from timpora.alerts.models import deliveries, gatherings
from timpora.common.clock import Clock
from timpora.common.register.members import Agency, Channel

#: Notices one message holds at most (each is stored in it in full until it is sent): a webhook body or Kafka record
#: stays well under Kafka's 1 MB, an e-mail (20 shown, the rest listed in its attachment) holds a whole burst. A
#: larger backlog goes out as several messages at once.
MAX_NOTICES = {Channel.EMAIL: 10_000, Channel.WEBHOOK: 1000, Channel.KAFKA: 1000}


#: A notice that is the first word on something critical: a new or escalated critical alert (not its resolution).
_CRITICAL = and_(
    deliveries.c.payload["severity"].astext == "critical", deliveries.c.message.in_(("alert", "escalation"))
)


@dataclass(frozen=True, slots=True)
class Gathering:
    """The notices waiting for one agency's channel (and recipients)."""

    agency_id: str
    channel: str
    recipients: tuple[str, ...] | None
    first_at: datetime
    #: The first critical one waiting, if any.
    first_critical_at: datetime | None = None

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


@dataclass(frozen=True, slots=True)
class Formed:
    """When a channel's last message formed, and its last carrying something critical."""

    last: datetime | None = None
    last_critical: datetime | None = None

    def until(self, now: datetime) -> Formed:
        """As of ``now``: a time recorded later than now (a clock set back, a database restored) counts as now."""
        return Formed(
            None if self.last is None else min(self.last, now),
            None if self.last_critical is None else min(self.last_critical, now),
        )


def due_at(gathering: Gathering, formed: Formed, wait: timedelta, interval: timedelta) -> datetime:
    """When a channel's next message goes: its first waiting notice's wait over and an interval since its last
    message — or, sooner, a critical notice's wait over and an interval since its last message that carried
    something critical (critical news keeps a pace of its own: at most two messages an interval in all)."""
    due = gathering.first_at + wait
    if formed.last is not None:
        due = max(due, formed.last + interval)
    critical = gathering.first_critical_at
    if critical is not None:
        critical_due = critical + wait
        if formed.last_critical is not None:
            critical_due = max(critical_due, formed.last_critical + interval)
        due = min(due, critical_due)
    return due


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
                    tuple(found.recipients) if found.recipients is not None else None,
                    found.first_at,
                    found.first_critical_at,
                )
                for found in await session.execute(
                    select(
                        row.agency_id,
                        row.channel,
                        row.recipients,
                        func.min(row.created_at).label("first_at"),
                        func.min(row.created_at).filter(_CRITICAL).label("first_critical_at"),
                    )
                    .where(row.status == "gathering")
                    .group_by(row.agency_id, row.channel, row.recipients)
                )
            ]
            if not waiting:
                return 0
            directory = await self._directory.get(session)
            formed = {
                (found.agency_id, found.channel, found.recipients): Formed(found.last_formed_at, found.last_critical_at)
                for found in await session.execute(select(gatherings))
            }
        moved = 0
        for gathering in waiting:
            agency = directory.agencies.get(gathering.agency_id)
            if agency is None or not agency.grouping.on(Channel(gathering.channel)).grouped:
                moved += await self._let_go(gathering, now)
                continue
            grouping = agency.grouping
            wait, interval = timedelta(seconds=grouping.wait_s), timedelta(seconds=grouping.interval_s)
            before = formed.get((gathering.agency_id, gathering.channel, gathering.key), Formed()).until(now)
            if due_at(gathering, before, wait, interval) <= now:
                moved += await self._form(gathering, agency, wait, interval, now)
        return moved

    async def _let_go(self, gathering: Gathering, now: datetime) -> int:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(deliveries).where(gathering.waiting()).values(status="pending", next_attempt_at=now)
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _form(
        self, gathering: Gathering, agency: Agency, wait: timedelta, interval: timedelta, now: datetime
    ) -> int:
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
                    select(gatherings.c.last_formed_at, gatherings.c.last_critical_at)
                    .where(channel_of)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            # Still due now that the channel is locked (another worker may have formed its message meanwhile).
            if locked is None or due_at(gathering, Formed(*locked).until(now), wait, interval) > now:
                return 0
            moved, critical = 0, False
            # The whole backlog goes now, in as many messages as it needs: holding part of it back an interval
            # per message would make the last of a large burst late by many intervals.
            while members := (
                await session.execute(
                    select(deliveries.c.id, deliveries.c.payload, _CRITICAL.label("critical"))
                    .where(gathering.waiting())
                    .order_by(_CRITICAL.desc(), deliveries.c.id)
                    .limit(MAX_NOTICES[Channel(gathering.channel)])
                    .with_for_update(skip_locked=True)
                )
            ).all():
                await self._message(session, gathering, agency, members, now)
                moved += len(members)
                critical = critical or any(member.critical for member in members)
            if moved:
                await session.execute(
                    update(gatherings)
                    .where(channel_of)
                    .values(last_formed_at=now, **({"last_critical_at": now} if critical else {}))
                )
        return moved

    async def _message(
        self, session: AsyncSession, gathering: Gathering, agency: Agency, members: Sequence[Row[Any]], now: datetime
    ) -> None:
        group_id = uuid.uuid4()
        await queue.enqueue(
            session,
            queue.Message(
                message_id=group_id,
                kind=queue.GROUP,
                agency_id=agency.id,
                channels=[gathering.channel],
                payload=notices.group_message(
                    message_id=group_id, agency_id=agency.id, notices=[member.payload for member in members]
                ),
                now=now,
                recipients=gathering.recipients,
            ),
        )
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id.in_([member.id for member in members]))
            .values(status="grouped", group_id=group_id, last_detail=f"in message {group_id}")
        )
