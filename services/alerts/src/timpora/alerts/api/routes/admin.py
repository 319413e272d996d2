"""The operator's view: the directory, the rules in force, who each event went to and why, every
delivery attempt, the dead letters, and replays. Members and their agreements change in the register only
(timpora.common.register), never here."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import Row, func, or_, select, update

from timpora.alerts import queue
from timpora.alerts.api.deps import AlertingDep, OperatorKey
from timpora.alerts.api.models import (
    AgencyView,
    AttemptView,
    ChannelHealth,
    DeadLetter,
    DeliveryView,
    Replay,
    RoutingView,
)
from timpora.alerts.models import agencies, alerts, deliveries, delivery_attempts, routed_events
from timpora.alerts.settings import AlertsSettings
from timpora.common import audit, register
from timpora.common.config_files import ConfigFileError
from timpora.common.http.deps import Runtime
from timpora.common.http.errors import described
from timpora.common.kafka.admin import latest_records
from timpora.common.register import destinations
from timpora.common.settings import narrow

router = APIRouter(prefix="/v1/admin", tags=["operators"])


def _agency_view(row: Row[Any]) -> AgencyView:
    return AgencyView(agency=row.definition, **{name: getattr(row, name) for name in _AGENCY_STATE})


_AGENCY_STATE = (
    "source",
    "updated_at",
    "removed_at",
    "webhook_disabled_at",
    "webhook_disabled_reason",
    "webhook_failing_since",
)


@router.get(
    "/agencies",
    summary="The register's members as the service has them, and the state of each (webhook secrets never shown)",
)
async def list_agencies(runtime: Runtime, operator: OperatorKey) -> list[AgencyView]:
    waiting = deliveries.c.status.in_(("gathering", "grouped", "pending", "held"))
    # One pass over the deliveries for every agency's health, channel by channel: the operator's first look at 2 a.m.
    # (a working e-mail must not hide a webhook that has delivered nothing for a day).
    health = select(
        deliveries.c.agency_id,
        deliveries.c.channel,
        func.max(deliveries.c.delivered_at).label("last_delivered_at"),
        func.count().filter(waiting).label("waiting"),
        func.count().filter(deliveries.c.status == "dead").label("dead"),
    ).group_by(deliveries.c.agency_id, deliveries.c.channel)
    async with runtime.sessions() as session:
        rows = [
            row
            for row in (await session.execute(select(agencies).order_by(agencies.c.id))).all()
            if operator.reaches(row.id)
        ]
        by_channel: dict[str, list[Row[Any]]] = {}
        for found in (await session.execute(health)).all():
            by_channel.setdefault(found.agency_id, []).append(found)
    return [_agency_view(row).model_copy(update={"health": _health(by_channel.get(row.id, []))}) for row in rows]


def _health(channels: list[Row[Any]]) -> ChannelHealth:
    last = {row.channel: row.last_delivered_at for row in channels}
    delivered = [moment for moment in last.values() if moment is not None]
    return ChannelHealth(
        last_delivered_at=max(delivered) if delivered else None,
        last_delivered_by_channel=last,
        waiting=sum(row.waiting for row in channels),
        dead=sum(row.dead for row in channels),
    )


_WEBHOOK_STATE = ("webhook_disabled_at", "webhook_disabled_reason", "webhook_failing_since")


@router.post(
    "/agencies/{agency_id}/webhook/enable",
    summary="Re-enable a disabled webhook; held notices resume",
    responses={404: described("No such agency")},
)
async def enable_webhook(runtime: Runtime, key: OperatorKey, alerting: AlertingDep, agency_id: str) -> AgencyView:
    await _reachable(runtime, agency_id)
    async with runtime.sessions() as session, session.begin():
        before = (
            await session.execute(
                select(*(agencies.c[name] for name in _WEBHOOK_STATE))
                .where(agencies.c.id == agency_id)
                .with_for_update()
            )
        ).first()
        if before is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such agency")
        row = (
            await session.execute(
                update(agencies)
                .where(agencies.c.id == agency_id)
                .values(webhook_disabled_at=None, webhook_disabled_reason=None, webhook_failing_since=None)
                .returning(agencies)
            )
        ).one()
        await queue.release_held(session, agency_id, now=runtime.clock.now())
        await audit.record(
            session,
            service=runtime.name,
            actor=key.actor,
            action="agency.webhook.enable",
            target=agency_id,
            old=dict(before._mapping),
            new={name: getattr(row, name) for name in _WEBHOOK_STATE},
        )
    alerting.directory_cache.invalidate()
    return _agency_view(row)


async def _reachable(runtime: Runtime, agency_id: str) -> None:
    """Refuses (422) to enable a webhook whose host is, or now resolves to, an address webhooks may not reach: held
    notices would be released only to be refused one by one. A name that does not resolve now is let through (the
    sender checks it again at every call)."""
    async with runtime.sessions() as session:
        definition = await session.scalar(select(agencies.c.definition).where(agencies.c.id == agency_id))
    webhook = None if definition is None else definition["channels"].get("webhook")
    if webhook is None:
        return
    allowed = narrow(runtime.settings, AlertsSettings).webhook_allowed_networks
    try:
        await destinations.resolve(webhook["url"], allowed)
    except destinations.RefusedDestinationError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"webhook not enabled: {error}") from None
    except OSError:
        return


@router.post("/agencies/{agency_id}/replay", summary="Send an agency's notices of a time range again")
async def replay(runtime: Runtime, key: OperatorKey, agency_id: str, body: Replay) -> dict[str, int]:
    if not key.reaches(agency_id):
        # Another office's agency: not this operator's to send anything to (nor to know of).
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such agency")
    async with runtime.sessions() as session, session.begin():
        count = await queue.replay(
            session,
            agency_id=agency_id,
            since=body.since,
            until=body.until,
            now=runtime.clock.now(),
            channel=body.channel,
        )
        await audit.record(
            session,
            service=runtime.name,
            actor=key.actor,
            action="agency.replay",
            target=agency_id,
            new={**body.model_dump(mode="json"), "requeued": count},
        )
    return {"requeued": count}


@router.get("/register", summary="The register in force here, and why the file on disk is not, if it is not")
async def register_in_force(_: OperatorKey, alerting: AlertingDep) -> dict[str, Any]:
    cache = alerting.directory_cache
    book = register.book(cache.register_file)
    return {"file": str(cache.register_file), "digest": cache.synced, "refused": cache.refused or book.refused}


@router.get("/rules", summary="The routing rules in force, and why the file on disk is not, if it is not")
async def rules(_: OperatorKey, alerting: AlertingDep) -> dict[str, Any]:
    book = alerting.rules
    return {
        "file": str(book.path),
        "refused": book.refused,
        "rules": [rule.model_dump(mode="json") for rule in book.rules],
    }


@router.post(
    "/rules/reload",
    summary="Read the rule file now; a broken file is refused, the rules in force kept",
    responses={422: described("The rule file is broken: where and why; the rules in force stay")},
)
async def reload_rules(runtime: Runtime, key: OperatorKey, alerting: AlertingDep) -> dict[str, Any]:
    async with runtime.sessions() as session:
        directory = await alerting.directory(session)
    before = [rule.model_dump(mode="json") for rule in alerting.rules.rules]
    refused = None
    try:
        alerting.rules.reload(directory.agencies)
    except ConfigFileError as error:
        refused = str(error)
    after = [rule.model_dump(mode="json") for rule in alerting.rules.rules]
    # Recorded refused or not: an operator asked, and the rules in force are what they are after it.
    async with runtime.sessions() as session, session.begin():
        await audit.record(
            session,
            service=runtime.name,
            actor=key.actor,
            action="rules.reload" if refused is None else "rules.reload.refused",
            target=str(alerting.rules.path),
            old=before,
            new=after if refused is None else {"rules": after, "refused": refused},
        )
    if refused is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, refused)
    return {"loaded": len(alerting.rules.rules)}


@router.get(
    "/events/{event_id}",
    summary="Which agencies an event went to, and why",
    responses={404: described("No such event routed")},
)
async def routing(runtime: Runtime, _: OperatorKey, event_id: UUID) -> RoutingView:
    async with runtime.sessions() as session:
        row = (await session.execute(select(routed_events).where(routed_events.c.event_id == event_id))).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such event routed")
        opened = (await session.execute(select(alerts.c.id).where(alerts.c.event_id == event_id))).scalars().all()
    return RoutingView(
        event_id=row.event_id,
        event_type=row.event_type,
        occurred_at=row.occurred_at,
        routed_at=row.routed_at,
        decisions=row.decisions,
        alerts=list(opened),
    )


@router.get("/deliveries", summary="Deliveries, newest first, with every attempt")
async def list_deliveries(
    runtime: Runtime,
    operator: OperatorKey,
    *,
    delivery_status: Annotated[
        str | None, Query(alias="status", pattern="^(gathering|grouped|pending|delivered|dead|held|cancelled)$")
    ] = None,
    agency_id: Annotated[str | None, Query(max_length=63)] = None,
    alert_id: UUID | None = None,
    group_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[DeliveryView]:
    statement = select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
    if delivery_status is not None:
        statement = statement.where(deliveries.c.status == delivery_status)
    if agency_id is not None:
        statement = statement.where(deliveries.c.agency_id == agency_id)
    if operator.reach is not None:
        statement = statement.where(deliveries.c.agency_id.in_(sorted(operator.reach)))
    if alert_id is not None:
        statement = statement.where(deliveries.c.alert_id == alert_id)
    if group_id is not None:
        # The message itself (with its attempts) and every notice it held.
        statement = statement.where(or_(deliveries.c.group_id == group_id, deliveries.c.message_id == group_id))
    async with runtime.sessions() as session:
        rows = (await session.execute(statement)).all()
        attempts = (
            await session.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.delivery_id.in_([row.id for row in rows]))
                .order_by(delivery_attempts.c.id)
            )
        ).all()
    history: dict[int, list[AttemptView]] = {}
    for attempt in attempts:
        history.setdefault(attempt.delivery_id, []).append(AttemptView.model_validate(attempt, from_attributes=True))
    return [
        DeliveryView.model_validate(row, from_attributes=True).model_copy(update={"history": history.get(row.id, [])})
        for row in rows
    ]


@router.get("/dead-letters", summary="The latest records the alerts service could not process, and why")
async def dead_letters(
    runtime: Runtime, _: OperatorKey, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[DeadLetter]:
    records = await latest_records(
        runtime.settings.kafka, runtime.settings.kafka.catalog.alerts_dead_letters.name, limit=limit
    )
    letters = []
    for record in records:
        headers = {name: value.decode(errors="replace") for name, value in record.headers}
        # The record's value is personal data and is not shown here; the reason says what was wrong.
        letters.append(
            DeadLetter(
                partition=record.partition,
                offset=record.offset,
                key=record.key.decode(errors="replace") if record.key else None,
                reason=headers.get("dlq_reason", ""),
                consumer=headers.get("dlq_consumer", ""),
                source_topic=headers.get("dlq_source_topic", ""),
                source_offset=headers.get("dlq_source_offset", ""),
                failed_at=headers.get("dlq_failed_at", ""),
                event_type=headers.get("ce_type"),
            )
        )
    return letters
