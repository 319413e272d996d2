"""The delivery queue in PostgreSQL: what must reach which agency on which channel, and every attempt.

Handlers only insert rows here, inside the transaction that creates the alert, so an alert and its
deliveries commit together and a restart at any instant loses neither. A notice about an alert starts
``gathering``: :mod:`timpora.alerts.grouping` puts it, with the others of its agency's channel, into one
message (or, where the agency wants one message per notice, lets it go alone). Workers claim due rows with
``FOR UPDATE SKIP LOCKED`` and a lease: a row claimed by a worker that then dies becomes due again
when the lease runs out, so a notice is delivered at least once and, thanks to its stable message
id, recognisably the same notice every time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.alerts.models import deliveries, delivery_attempts
from timpora.common.register.members import Channel

NOTIFY_CHANNEL = "timpora_alerts_deliveries"
#: The kind of a message that carries a group of notices.
GROUP = "group"
_ENQUEUE = insert(deliveries).on_conflict_do_nothing()
_RECORD_ATTEMPT = insert(delivery_attempts)
#: Notices that wait to be grouped; the others (a digest, a group itself, an endpoint notice) go as they are.
GATHERED = ("alert", "resolved", "escalation")
#: What a notice waits in before it is sent: gathering if it is one that is grouped, else due at once.
_WAITING = case((deliveries.c.message.in_(GATHERED), "gathering"), else_="pending")


@dataclass(frozen=True, slots=True)
class Message:
    """One notice to queue, on each of its channels. Channels in ``held`` (a disabled webhook) wait,
    held, until an operator enables them again; in ``gathered`` (the agency's grouped channels), a notice about
    an alert waits to be gathered into a message with others; on any other channel it is due at once."""

    message_id: UUID
    kind: str
    agency_id: str
    channels: Iterable[Channel | str]
    payload: dict[str, Any]
    now: datetime
    alert_id: UUID | None = None
    recipients: Sequence[str] | None = None
    held: Collection[Channel] = ()
    gathered: Collection[Channel] = ()

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "message_id": self.message_id,
                "message": self.kind,
                "alert_id": self.alert_id,
                "agency_id": self.agency_id,
                "channel": str(channel),
                "recipients": list(self.recipients) if self.recipients is not None else None,
                "payload": self.payload,
                "created_at": self.now,
                "next_attempt_at": self.now,
                "status": self._status(channel),
            }
            for channel in sorted(str(channel) for channel in self.channels)
        ]

    def _status(self, channel: str) -> str:
        if channel in self.held:
            return "held"
        return "gathering" if self.kind in GATHERED and channel in self.gathered else "pending"


async def enqueue(session: AsyncSession, message: Message) -> None:
    """Queues the message on each channel; a message already queued on a channel is left alone."""
    await insert_deliveries(session, message.rows())


async def insert_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_ENQUEUE, rows)


async def cancel_pending(
    session: AsyncSession, alert_ids: Sequence[UUID], *, message: str = "alert"
) -> set[tuple[UUID, str]]:
    """Drops notices not yet delivered about alerts that no longer need them (superseded, resolved); one in a
    message not yet delivered is taken out of it when the message is next tried (:func:`without_cancelled`).
    Returns the (alert, channel) pairs whose notice had not left at all (still gathering, or never tried): their
    agency never heard of the alert, and is not to be told it closed either."""
    if not alert_ids:
        return set()
    row = deliveries.c
    cancelled = await session.execute(
        update(deliveries)
        .where(row.alert_id.in_(alert_ids), row.message == message)
        .where(row.status.in_(("gathering", "grouped", "pending", "held")))
        .values(status="cancelled", last_detail="no longer needed: the alert was superseded or resolved")
        # Never claimed (no attempt) and in no message: it had not left.
        .returning(row.alert_id, row.channel, row.attempts, row.group_id)
    )
    return {(found.alert_id, found.channel) for found in cancelled if found.attempts == 0 and found.group_id is None}


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    message_id: UUID
    message: str
    alert_id: UUID | None
    agency_id: str
    channel: Channel
    recipients: list[str] | None
    payload: dict[str, Any]
    attempts: int
    first_attempt_at: datetime


async def claim(session: AsyncSession, *, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Takes up to ``limit`` due deliveries for this worker, oldest due first, for ``lease``."""
    due = (
        select(deliveries.c.id)
        .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(deliveries)
        .where(deliveries.c.id.in_(due))
        .values(
            attempts=deliveries.c.attempts + 1,
            first_attempt_at=func.coalesce(deliveries.c.first_attempt_at, now),
            next_attempt_at=now + lease,
        )
        .returning(
            deliveries.c.id,
            deliveries.c.message_id,
            deliveries.c.message,
            deliveries.c.alert_id,
            deliveries.c.agency_id,
            deliveries.c.channel,
            deliveries.c.recipients,
            deliveries.c.payload,
            deliveries.c.attempts,
            deliveries.c.first_attempt_at,
        )
    )
    rows = (await session.execute(statement)).all()
    return [
        Claimed(
            id=row.id,
            message_id=row.message_id,
            message=row.message,
            alert_id=row.alert_id,
            agency_id=row.agency_id,
            channel=Channel(row.channel),
            recipients=row.recipients,
            payload=row.payload,
            attempts=row.attempts,
            first_attempt_at=row.first_attempt_at,
        )
        for row in sorted(rows, key=lambda found: found.id)
    ]


async def without_cancelled(session: AsyncSession, claimed: list[Claimed]) -> list[Claimed]:
    """The claimed messages without the notices cancelled since they were gathered (a reminder superseded by the
    overstay, an alert resolved while its message waited for a retry); a message left with none is cancelled."""
    groups = {delivery.message_id: delivery for delivery in claimed if delivery.message == GROUP}
    if not groups:
        return claimed
    cancelled: dict[UUID, set[str]] = {}
    for group_id, message_id in await session.execute(
        select(deliveries.c.group_id, deliveries.c.message_id).where(
            deliveries.c.group_id.in_(list(groups)), deliveries.c.status == "cancelled"
        )
    ):
        cancelled.setdefault(group_id, set()).add(str(message_id))
    kept: list[Claimed] = []
    emptied: list[int] = []
    for delivery in claimed:
        gone = cancelled.get(delivery.message_id)
        if not gone:
            kept.append(delivery)
            continue
        left = [notice for notice in delivery.payload["alerts"] if notice["message_id"] not in gone]
        if left:
            kept.append(replace(delivery, payload={**delivery.payload, "alerts": left}))
        else:
            emptied.append(delivery.id)
    if emptied:
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(emptied))
            .values(status="cancelled", last_detail="no longer needed: every notice in it was superseded or resolved")
        )
    return kept


@dataclass(frozen=True, slots=True)
class Settled:
    """One attempt's outcome, as it is recorded."""

    delivery: Claimed
    result: AttemptResult
    attempted_at: datetime
    duration_ms: int
    #: When to try again (a retry), or None.
    next_attempt_at: datetime | None

    @property
    def status(self) -> str:
        outcome = self.result.outcome
        if outcome is AttemptOutcome.DELIVERED:
            return "delivered"
        if outcome is AttemptOutcome.RETRY and self.next_attempt_at is not None:
            return "pending"
        if outcome is AttemptOutcome.GONE:
            return "held"
        return "dead"


# Only a row still as this claim left it is settled: meanwhile it may have been cancelled (superseded,
# resolved), held (endpoint disabled), replayed, or claimed again after the lease ran out.
_SETTLE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("delivery_id"))
    .where(deliveries.c.status == "pending", deliveries.c.attempts == bindparam("claimed_attempts"))
    .values(
        status=bindparam("new_status"),
        last_status_code=bindparam("status_code"),
        last_detail=bindparam("detail"),
        delivered_at=bindparam("delivered_at"),
        next_attempt_at=func.coalesce(
            bindparam("retry_at", type_=deliveries.c.next_attempt_at.type), deliveries.c.next_attempt_at
        ),
        # SQL NULL for "unchanged", not JSON null.
        payload=func.coalesce(bindparam("kept", type_=JSONB(none_as_null=True)), deliveries.c.payload),
    )
)


def kept_of(delivery: Claimed, status: str) -> dict[str, Any] | None:
    """What a message of several keeps once it is settled for good: which notices it held. Each notice is kept
    in its own row; a second copy of every person in it would only be more to protect and to erase."""
    if delivery.message != GROUP or status not in {"delivered", "dead"}:
        return None
    payload = delivery.payload
    return {
        "message_id": payload["message_id"],
        "message": GROUP,
        "agency_id": payload["agency_id"],
        # As sent (see notices.as_sent), or, if it never was, as it was formed.
        "notice_ids": payload.get("notice_ids") or [notice["message_id"] for notice in payload["alerts"]],
    }


async def record_attempts(session: AsyncSession, settled: Sequence[Settled]) -> None:
    """Writes a round's attempts and the deliveries' new states: two statements, however many rows."""
    if not settled:
        return
    await session.execute(
        _RECORD_ATTEMPT,
        [
            {
                "delivery_id": item.delivery.id,
                "attempted_at": item.attempted_at,
                "outcome": item.result.outcome.value,
                "status_code": item.result.status_code,
                "detail": item.result.detail,
                "duration_ms": item.duration_ms,
            }
            for item in settled
        ],
    )
    await session.execute(
        _SETTLE,
        [
            {
                "delivery_id": item.delivery.id,
                "claimed_attempts": item.delivery.attempts,
                "new_status": item.status,
                "status_code": item.result.status_code,
                "detail": item.result.detail,
                "delivered_at": item.attempted_at if item.status == "delivered" else None,
                "retry_at": item.next_attempt_at,
                "kept": kept_of(item.delivery, item.status),
            }
            for item in settled
        ],
    )
    await _settle_members(session, settled)


# A message's notices share its fate once it is settled for good: delivered (when), or given up — if the settling
# took (the message may have been held or replayed meanwhile).
_MESSAGE = deliveries.alias("message")
_SETTLE_MEMBERS = (
    update(deliveries)
    .where(deliveries.c.group_id == bindparam("in_message"), deliveries.c.status == "grouped")
    .where(
        select(_MESSAGE.c.id)
        .where(_MESSAGE.c.message_id == bindparam("in_message"), _MESSAGE.c.status == bindparam("settled_as"))
        .exists()
    )
    .values(
        status=bindparam("settled_as"),
        delivered_at=bindparam("settled_at"),
        last_detail=bindparam("outcome"),
    )
)


async def _settle_members(session: AsyncSession, settled: Sequence[Settled]) -> None:
    finished = [item for item in settled if item.delivery.message == GROUP and item.status in {"delivered", "dead"}]
    if finished:
        await session.execute(
            _SETTLE_MEMBERS,
            [
                {
                    "in_message": item.delivery.message_id,
                    "settled_as": item.status,
                    "settled_at": item.attempted_at if item.status == "delivered" else None,
                    "outcome": f"{item.status} in message {item.delivery.message_id}: {item.result.detail}",
                }
                for item in finished
            ],
        )


async def hold_webhooks(session: AsyncSession, agency_id: str) -> None:
    """Parks an agency's pending webhook deliveries while its endpoint is disabled; replay sends them."""
    await session.execute(
        update(deliveries)
        .where(deliveries.c.agency_id == agency_id, deliveries.c.channel == Channel.WEBHOOK.value)
        .where(deliveries.c.status.in_(("gathering", "pending")))
        .values(status="held", last_detail="webhook endpoint disabled")
    )


async def release_held(session: AsyncSession, agency_id: str, *, now: datetime) -> None:
    """Lets an agency's held notices go again (its endpoint is enabled): gathered into messages like new ones,
    so a receiver that was down is not flooded with one call per notice when it comes back."""
    await session.execute(
        update(deliveries)
        .where(deliveries.c.agency_id == agency_id, deliveries.c.status == "held")
        .values(status=_WAITING, next_attempt_at=now, first_attempt_at=None, attempts=0, group_id=None)
    )


async def replay(
    session: AsyncSession, *, agency_id: str, since: datetime, until: datetime, now: datetime, channel: str | None
) -> int:
    """Sends an agency's notices created in [since, until) again, whatever became of them; same message ids.
    Notices that were sent in a group are gathered again into new messages (the old message is not resent); those
    not yet sent are left to go as they are."""
    statement = (
        update(deliveries)
        .where(deliveries.c.agency_id == agency_id, deliveries.c.created_at >= since, deliveries.c.created_at < until)
        # Not a message of several (its notices are gathered again), nor a notice still on its way (cancelled,
        # gathering, or in a message not yet settled): that one goes anyway, and twice would be a duplicate the
        # agency could not recognise under the new message's id.
        .where(deliveries.c.status.not_in(("cancelled", "gathering", "grouped")), deliveries.c.message != GROUP)
        .values(
            status=_WAITING, next_attempt_at=now, first_attempt_at=None, delivered_at=None, attempts=0, group_id=None
        )
    )
    if channel is not None:
        statement = statement.where(deliveries.c.channel == channel)
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
