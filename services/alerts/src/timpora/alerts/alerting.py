"""From a registry event to alerts: route it, record why, open one alert per agency, queue its notices,
and close the alerts the event makes moot (superseded, resolved, moved away).

Everything here runs inside the inbox consumer's transaction, so an event's alerts, their queued
deliveries and the inbox row commit together or not at all.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Update, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.alerts import queue
from timpora.alerts.agencies import DirectoryCache
from timpora.alerts.domain import notices
from timpora.alerts.domain.routing import Decision, Directory, Subject, route
from timpora.alerts.domain.rules import RuleBook, Severity
from timpora.alerts.models import OPEN, alerts, routed_events
from timpora.common.clock import Clock
from timpora.common.events import CloudEvent
from timpora.common.events.catalog import spec_for, spec_named
from timpora.common.events.payloads import (
    Contract,
    ForeignerEvent,
    PermitConverted,
    PermitExpired,
    PermitExpiring,
    PresenceStatus,
    ResidenceReported,
)
from timpora.common.kafka.consumer import PermanentEventError
from timpora.common.register.members import Channel

#: Namespace of alert and message ids: the same event and agency always give the same alert id.
ALERT_IDS = uuid.UUID("5d0b7b8e-2f0c-4c61-9a57-0f4d1a0c7e21")
# Built once: every event records its routing and opens its alerts with these.
_RECORD_ROUTING = insert(routed_events).on_conflict_do_nothing()
_OPEN_ALERT = insert(alerts).on_conflict_do_nothing().returning(alerts.c.id)
MOVED_AWAY = "moved out of your jurisdiction"
#: Alerts that follow a person who moves: what the new place's agencies must still act on.
_FOLLOWS_PERSON = frozenset({"permit.expiring", "permit.expired", "permit.overstay-exceeded"})
#: Alerts about a permit's standing: an extension, conversion or revocation of the permit ends them.
PERMIT_STANDING = _FOLLOWS_PERSON
#: What closing an alert needs to know of it, to tell its agency on the channels it was sent on.
_CLOSED = (
    alerts.c.id,
    alerts.c.agency_id,
    alerts.c.notice,
    alerts.c.channels,
    alerts.c.digest,
    alerts.c.digested_at,
    alerts.c.event_id,
)
_RESOLVING = frozenset(
    {
        "permit.extended",
        "permit.revoked",
        "permit.converted",
        "permit.exit-permit-issued",
        "foreigner.departed",
        "foreigner.deported",
    }
)
#: Which of a permit's alerts each event ends (an extension or conversion: all of them). An exit permit changes
#: what is coming (the reminders); a revocation ends the permit, not a deportation already due past day 60.
_ENDS: dict[str, tuple[str, ...]] = {
    "permit.exit-permit-issued": ("permit.expiring",),
    "permit.revoked": ("permit.expiring", "permit.expired"),
}
#: Events after which the person is no longer here: every open alert about them ends.
_GONE = frozenset({"foreigner.departed", "foreigner.deported"})


_WRITES = "timpora.alerts.writes"


@dataclass
class _Writes:
    """Rows a transaction's events write, sent together: a batch of events costs three statements, not
    three an event."""

    routings: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: The first notice's queue rows of each alert, inserted only if the alert turns out to be new.
    notices: dict[UUID, list[dict[str, Any]]] = field(default_factory=dict)


def _writes(session: AsyncSession) -> _Writes:
    writes: _Writes = session.info.setdefault(_WRITES, _Writes())
    return writes


def alert_id_for(event_id: str | UUID, agency_id: str) -> UUID:
    return uuid.uuid5(ALERT_IDS, f"{event_id}:{agency_id}")


def message_id_for(alert_id: UUID, message: str) -> UUID:
    """The alert's own id for its first notice; a derived, stable id for each later one (resolved, ...)."""
    return alert_id if message == "alert" else uuid.uuid5(ALERT_IDS, f"{alert_id}:{message}")


def later_notice(
    alert_id: UUID,
    *,
    key: str,
    kind: str,
    agency_id: str,
    notice: Mapping[str, Any],
    channels: Iterable[Channel | str],
    now: datetime,
    held: Collection[Channel] = (),
    gathered: Collection[Channel] = (),
    recipients: Sequence[str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> queue.Message:
    """A notice about an alert its agency has already been sent (resolved, reopened, escalated): the alert's
    stored notice again, under a message id of its own (``key`` tells it from the alert's other notices)."""
    message_id = message_id_for(alert_id, key)
    return queue.Message(
        message_id=message_id,
        kind=kind,
        alert_id=alert_id,
        agency_id=agency_id,
        channels=channels,
        held=held,
        gathered=gathered,
        recipients=recipients,
        payload=notices.message(notice, message_id=message_id, kind=kind, extra=extra),
        now=now,
    )


@dataclass
class Alerting:
    rules: RuleBook
    clock: Clock
    directory_cache: DirectoryCache

    async def directory(self, session: AsyncSession) -> Directory:
        return await self.directory_cache.get(session)

    async def handle(self, event: CloudEvent[Contract], session: AsyncSession) -> None:
        data = event.data
        if not isinstance(data, ForeignerEvent):
            raise PermanentEventError(f"{event.type} is not a registry event; the alerts service routes those only")
        name = spec_for(data).name
        try:
            event_uuid = UUID(event.id)
        except ValueError:
            raise PermanentEventError("the event id is not a UUID; alert and notice ids derive from it") from None
        now = self.clock.now()
        directory = await self.directory(session)
        rules = self.rules.refresh(directory.agencies)
        decisions = route(Subject.of(name, data), rules, directory, now)
        absent = data.foreigner.presence is not PresenceStatus.PRESENT
        if isinstance(data, PermitExpiring | PermitExpired) and absent:
            # Only someone in the country can overstay or need a reminder; such an event (from a registry
            # before it ended visit permits on exit) would tell agencies of an overstay that is not one.
            decisions = []
        elif isinstance(data, PermitExpired) and not decisions:
            # Nobody covers where the person is now (they moved out of every member's jurisdiction): the
            # agencies that hold the permit's reminders kept them, and hear of the overstay too.
            decisions = await self._reminder_holders(session, directory, data)
        _writes(session).routings.append(
            {
                "event_id": event_uuid,
                "event_type": name,
                "foreigner_id": data.foreigner.foreigner_id,
                "occurred_at": event.time,
                "routed_at": now,
                # Kept only where alerts need it later (moves, escalation); nobody chosen, nothing kept.
                "data": data.model_dump(mode="json") if decisions else {},
                "decisions": [_decision_json(decision) for decision in decisions],
            }
        )
        superseded = (
            await self._supersede(session, data, event.id, decisions, now=now)
            if isinstance(data, PermitExpired) and not absent
            else {}
        )
        for decision in decisions:
            await self.open_alert(
                session,
                directory,
                event_id=event.id,
                event_type=name,
                occurred_at=event.time,
                data=data,
                decision=decision,
                now=now,
                extra={"supersedes": superseded.get(decision.agency_id, [])} if superseded else None,
            )
        if name in _RESOLVING:
            await self._resolve(session, data, name, event_id=event_uuid, now=now)
        if isinstance(data, ResidenceReported) and data.previous_village_code not in (None, data.jurisdiction):
            await self._follow_move(session, directory, data, event_id=event_uuid, now=now)

    async def open_alert(
        self,
        session: AsyncSession,
        directory: Directory,
        *,
        event_id: str,
        event_type: str,
        occurred_at: datetime,
        data: ForeignerEvent,
        decision: Decision,
        now: datetime,
        extra: dict[str, object] | None = None,
        moved_from: UUID | None = None,
        place: str | None = None,
    ) -> None:
        """Opens the alert (unless it is open already), with its first notice queued unless it waits for a digest.
        Written with the rest of the batch's alerts (:meth:`flush`)."""
        agency = directory.agencies[decision.agency_id]
        # One alert per event and agency, always: the id says which (a move hands an alert over under the
        # new agency's id, and moving back reopens the one that was closed; see _follow_move).
        alert_id = alert_id_for(event_id, agency.id)
        subject = Subject.of(event_type, data)
        where = place or next((code for code in (*subject.places, *subject.guest_places) if agency.covers(code)), None)
        notice = notices.alert_notice(
            alert_id=alert_id,
            agency=agency,
            event_id=event_id,
            event_type=event_type,
            occurred_at=occurred_at,
            severity=decision.severity.value,
            data=data,
            place=where,
            # A guest's place: where they stay, in the agency's view only as a guest (see Subject.of).
            guest=where is not None and where in subject.guest_places and where not in subject.places,
        )
        permit = getattr(data, "permit", None) or data.foreigner.permit
        writes = _writes(session)
        writes.alerts.append(
            {
                "id": alert_id,
                "event_id": UUID(event_id),
                "agency_id": agency.id,
                "event_type": event_type,
                "severity": decision.severity.value,
                "foreigner_id": data.foreigner.foreigner_id,
                "permit_id": permit.permit_id if permit else None,
                "place": where,
                "rule_ids": list(decision.rule_ids),
                "reasons": list(decision.reasons),
                "channels": sorted(channel.value for channel in decision.channels),
                "digest": decision.digest,
                "notice": notice,
                "created_at": now,
                "moved_from": moved_from,
            }
        )
        if not decision.digest:
            writes.notices[alert_id] = queue.Message(
                message_id=message_id_for(alert_id, "alert"),
                kind="alert",
                alert_id=alert_id,
                agency_id=agency.id,
                channels=decision.channels,
                held=directory.held(agency),
                gathered=agency.grouped_channels(),
                payload=notices.message(notice, message_id=alert_id, kind="alert", extra=extra),
                now=now,
            ).rows()

    async def flush(self, session: AsyncSession) -> None:
        """Writes the routing records and alerts buffered in this transaction, and the first notices of the
        alerts that are new. Runs before anything reads alerts, and before the transaction commits."""
        writes: _Writes | None = session.info.pop(_WRITES, None)
        if writes is None:
            return
        if writes.routings:
            await session.execute(_RECORD_ROUTING, writes.routings)
        if writes.alerts:
            created = set((await session.execute(_OPEN_ALERT, writes.alerts)).scalars())
            await queue.insert_deliveries(
                session, [row for alert_id in created for row in writes.notices.get(alert_id, [])]
            )

    async def _reminder_holders(
        self, session: AsyncSession, directory: Directory, data: PermitExpired
    ) -> list[Decision]:
        await self.flush(session)
        holders = (
            await session.execute(
                select(alerts.c.agency_id, alerts.c.rule_ids)
                .where(alerts.c.permit_id == data.permit.permit_id, alerts.c.event_type == "permit.expiring")
                .where(alerts.c.status.in_(OPEN))
                .distinct()
            )
        ).all()
        decisions = []
        now, place = self.clock.now(), data.jurisdiction
        for holder in holders:
            agency = directory.agencies.get(holder.agency_id)
            # Only an agency that may hear of the person where they are now: the controller, or one whose agreement
            # admits that place (the others no longer have the person in their view). An immigration office that
            # held the reminders hears even when the place is outside its area: this path is taken only when no
            # member can be told where the person is now (an office there would have been routed to as nearest),
            # and an overstay, a legal deadline, is never told to nobody.
            if agency is None or not (
                agency.controller
                or (
                    place is not None and agency.receives("permit.expired", data.permit, place, guest=False, moment=now)
                )
            ):
                continue
            decisions.append(
                Decision(
                    agency_id=agency.id,
                    severity=Severity.CRITICAL,
                    channels=directory.configured(agency, Channel),
                    digest=False,
                    reasons=("holds the permit's reminders; no member covers where the person lives now",),
                    rule_ids=tuple(holder.rule_ids),
                )
            )
        return decisions

    async def _supersede(
        self, session: AsyncSession, data: PermitExpired, event_id: str, decisions: Sequence[Decision], *, now: datetime
    ) -> dict[str, list[str]]:
        """Closes the permit's open expiry reminders: the overstay alert replaces them. An agency that gets
        the overstay alert finds the reminders listed in it (``supersedes``); one that does not is told they
        are closed. Returns the closed reminders by agency."""
        await self.flush(session)
        alerted = {decision.agency_id for decision in decisions}
        closed = (
            await session.execute(
                update(alerts)
                .where(alerts.c.permit_id == data.permit.permit_id, alerts.c.event_type == "permit.expiring")
                .where(alerts.c.status.in_(OPEN))
                .values(status="superseded", resolved_at=now, resolved_by="timpora", resolution="permit.expired")
                .returning(*_CLOSED)
            )
        ).all()
        for row in closed:
            if row.agency_id in alerted:
                await session.execute(
                    update(alerts)
                    .where(alerts.c.id == row.id)
                    .values(superseded_by=alert_id_for(event_id, row.agency_id))
                )
        # Reminders of an agency that gets no overstay alert are told closed (which cancels their unsent
        # notices too); the others' unsent notices are simply dropped: the overstay notice lists them.
        await self._tell_closed(
            session, [row for row in closed if row.agency_id not in alerted], resolution="permit.expired", now=now
        )
        await queue.cancel_pending(session, [row.id for row in closed if row.agency_id in alerted])
        by_agency: dict[str, list[str]] = {}
        for row in closed:
            by_agency.setdefault(row.agency_id, []).append(str(row.id))
        return by_agency

    async def _resolve(
        self, session: AsyncSession, data: ForeignerEvent, name: str, *, event_id: UUID, now: datetime
    ) -> None:
        """An extension, conversion or revocation ends the permit's open alerts, a departure or deportation the
        person's (a converted permit's reminders are the old permit's: the new one is reminded of afresh)."""
        await self.flush(session)
        statement = update(alerts).where(alerts.c.status.in_(OPEN), alerts.c.event_id != event_id)
        if name in _GONE:
            statement = statement.where(alerts.c.foreigner_id == data.foreigner.foreigner_id)
        else:
            permit = data.previous_permit if isinstance(data, PermitConverted) else getattr(data, "permit", None)
            if permit is None:
                return
            # The permit's reminders and overstay end; an arrival or a residence report is not the permit's.
            statement = statement.where(
                alerts.c.permit_id == permit.permit_id,
                alerts.c.event_type.in_(_ENDS.get(name, tuple(sorted(PERMIT_STANDING)))),
            )
        await self._close(session, statement, resolution=name, now=now)

    async def _close(self, session: AsyncSession, statement: Update, *, resolution: str, now: datetime) -> list[Any]:
        """Resolves the alerts ``statement`` picks, and tells their agencies (on the channels they were sent on)."""
        closed = (
            await session.execute(
                statement.values(
                    status="resolved", resolved_at=now, resolved_by="timpora", resolution=resolution
                ).returning(*_CLOSED)
            )
        ).all()
        await self._tell_closed(session, closed, resolution=resolution, now=now)
        return list(closed)

    async def _tell_closed(
        self, session: AsyncSession, closed: Sequence[Any], *, resolution: str, now: datetime
    ) -> None:
        never_sent = await queue.cancel_pending(session, [row.id for row in closed])
        directory = await self.directory(session)
        for row in closed:
            if row.digest and row.digested_at is None:
                continue  # never sent: it simply leaves the digest
            # Where the alert itself never left (it was still gathering), its closing is no news either.
            channels = [channel for channel in row.channels if (row.id, channel) not in never_sent]
            if not channels:
                continue
            agency = directory.agencies.get(row.agency_id)
            await queue.enqueue(
                session,
                later_notice(
                    row.id,
                    key="resolved",
                    kind="resolved",
                    agency_id=row.agency_id,
                    notice=row.notice,
                    channels=channels,
                    now=now,
                    gathered=agency.grouped_channels() if agency is not None else (),
                    extra={"resolution": resolution},
                ),
            )

    async def _follow_move(
        self,
        session: AsyncSession,
        directory: Directory,
        data: ResidenceReported,
        *,
        event_id: UUID,
        now: datetime,
    ) -> None:
        """What must still be acted on about someone who moved goes to the new place's agencies; the old ones
        are told the person moved away (not where to). Where no agency covers the new place, the alerts stay
        where they are.

        Handed over per event, not per alert: an event that three old agencies held reaches each new agency
        once, under its one id. Only reminders and overstays follow the person; an arrival or an earlier
        move was news for the place it happened in, and closes there.
        """
        await self.flush(session)
        new_place = data.jurisdiction
        if new_place is None:
            return
        held = (
            await session.execute(
                select(alerts.c.id, alerts.c.agency_id, alerts.c.event_id, alerts.c.event_type).where(
                    alerts.c.foreigner_id == data.foreigner.foreigner_id,
                    alerts.c.status.in_(OPEN),
                    alerts.c.event_id != event_id,  # the move's own alerts tell both places of it
                )
            )
        ).all()
        by_event: dict[UUID, list[Any]] = {}
        for row in held:
            agency = directory.agencies.get(row.agency_id)
            if agency is None or not agency.covers(new_place):
                by_event.setdefault(row.event_id, []).append(row)
        for moved_event, leaving in by_event.items():
            if leaving[0].event_type not in _FOLLOWS_PERSON:
                await self._close(
                    session,
                    update(alerts).where(alerts.c.id.in_([row.id for row in leaving])),
                    resolution=MOVED_AWAY,
                    now=now,
                )
                continue
            successors = await self._rerouted(session, directory, moved_event, place=new_place)
            if successors is None:
                continue  # nobody's rules cover the new place: the alerts stay with the agencies that have them
            original, decisions = successors
            await self._close(
                session,
                update(alerts).where(alerts.c.id.in_([row.id for row in leaving])),
                resolution=MOVED_AWAY,
                now=now,
            )
            for decision in decisions:
                await self._hand_over(
                    session,
                    directory,
                    original=original,
                    moved_event=moved_event,
                    decision=decision,
                    moved_from=leaving[0].id,
                    place=new_place,
                    move_id=event_id,
                    now=now,
                )

    async def _hand_over(
        self,
        session: AsyncSession,
        directory: Directory,
        *,
        original: OriginalEvent,
        moved_event: UUID,
        decision: Decision,
        moved_from: UUID,
        place: str,
        move_id: UUID,
        now: datetime,
    ) -> None:
        """``decision``'s agency gets ``moved_event``'s alert: a new one, or its own again if the person comes
        back to a place whose alert was closed when they left. An alert it has open, or one an officer closed,
        is left as it is."""
        alert_id = alert_id_for(moved_event, decision.agency_id)
        existing = (
            await session.execute(select(alerts.c.status, alerts.c.resolution).where(alerts.c.id == alert_id))
        ).first()
        if existing is None:
            await self.open_alert(
                session,
                directory,
                event_id=str(moved_event),
                event_type=original.event_type,
                occurred_at=original.occurred_at,
                data=original.data,
                decision=decision,
                now=now,
                moved_from=moved_from,
                place=place,
            )
            return
        if existing.status in OPEN or existing.resolution != MOVED_AWAY:
            return
        reopened = (
            await session.execute(
                update(alerts)
                .where(alerts.c.id == alert_id)
                .values(
                    status="open",
                    resolved_at=None,
                    resolved_by=None,
                    resolution=None,
                    place=place,
                    moved_from=moved_from,
                    # As if new where it is now: its digest, its escalation clock.
                    created_at=now,
                    digested_at=None,
                    escalation_level=0,
                    escalated_at=None,
                )
                .returning(alerts.c.notice, alerts.c.channels, alerts.c.digest)
            )
        ).one()
        if reopened.digest:
            return  # it goes out with the agency's next digest
        await queue.enqueue(
            session,
            later_notice(
                alert_id,
                key=f"reopened:{move_id}",
                kind="alert",
                agency_id=decision.agency_id,
                notice=reopened.notice,
                channels=reopened.channels,
                now=now,
                held=directory.held(directory.agencies[decision.agency_id]),
                gathered=directory.agencies[decision.agency_id].grouped_channels(),
            ),
        )

    async def _rerouted(
        self, session: AsyncSession, directory: Directory, event_id: UUID, *, place: str
    ) -> tuple[OriginalEvent, list[Decision]] | None:
        """The original event and who its rules choose for ``place``; None when nobody is chosen."""
        original = await original_event(session, event_id)
        if original is None:
            return None
        # Where they live now only: the hotels of the original event are not where the alert moves (their
        # agencies had it, or not, for the stay; a move does not hand it to them again).
        moved = dataclasses.replace(
            Subject.of(original.event_type, original.data), places=(place,), guest_places=(), last_seen=None
        )
        decisions = route(moved, self.rules.rules, directory, self.clock.now())
        if not decisions:
            return None
        return original, decisions


@dataclass(frozen=True, slots=True)
class OriginalEvent:
    """A routed event as it was recorded: what moving and escalating alerts re-route."""

    event_type: str
    occurred_at: datetime
    data: ForeignerEvent


async def original_event(session: AsyncSession, event_id: UUID) -> OriginalEvent | None:
    row = (await session.execute(select(routed_events).where(routed_events.c.event_id == event_id))).one()
    data = spec_named(row.event_type).model.model_validate(row.data)
    if not isinstance(data, ForeignerEvent):
        return None
    return OriginalEvent(row.event_type, row.occurred_at, data)


def _decision_json(decision: Decision) -> dict[str, object]:
    return {
        "agency_id": decision.agency_id,
        "rule_ids": list(decision.rule_ids),
        "reasons": list(decision.reasons),
        "channels": sorted(channel.value for channel in decision.channels),
        "severity": decision.severity.value,
        "digest": decision.digest,
    }
