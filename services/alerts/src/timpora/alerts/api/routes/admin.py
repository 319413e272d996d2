"""The operator's view: the directory, the rules in force, who each event went to and why, every
delivery attempt, the dead letters, and replays."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import Row, select, update

from timpora.alerts import agencies as directory_store
from timpora.alerts import queue
from timpora.alerts.api.deps import AlertingDep, OperatorKey
from timpora.alerts.api.models import (
    AgencyView,
    AttemptView,
    DeadLetter,
    DeliveryView,
    Replay,
    RoutingView,
)
from timpora.alerts.domain.directory import Agency
from timpora.alerts.models import agencies, alerts, deliveries, delivery_attempts, routed_events
from timpora.common.config_files import ConfigFileError
from timpora.common.http.deps import Runtime
from timpora.common.kafka.admin import ensure_topics, latest_records

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


@router.get("/agencies", summary="The agency directory (webhook secrets are never shown)")
async def list_agencies(runtime: Runtime, _: OperatorKey) -> list[AgencyView]:
    async with runtime.sessions() as session:
        rows = (await session.execute(select(agencies).order_by(agencies.c.id))).all()
    return [_agency_view(row) for row in rows]


@router.put("/agencies/{agency_id}", summary="Add or replace an agency")
async def put_agency(
    runtime: Runtime, _: OperatorKey, alerting: AlertingDep, agency_id: str, agency: Agency
) -> AgencyView:
    if agency.id != agency_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body", "id"], "msg": "must equal the agency id in the path", "type": "value_error"}],
        )
    if agency.channels.webhook is not None and agency.channels.webhook.secret is None:
        # Naming one of the server's environment variables would let a caller sign with, say, a password.
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["body", "channels", "webhook", "secret"],
                    "msg": "give the webhook's secret itself; secret_env is for the directory file",
                    "type": "value_error",
                }
            ],
        )
    if agency.channels.kafka:
        await ensure_topics(runtime.settings.kafka, [runtime.settings.kafka.catalog.agency_alerts(agency.id)])
    async with runtime.sessions() as session, session.begin():
        await directory_store.save(session, agency, source="api", now=runtime.clock.now())
        row = (await session.execute(select(agencies).where(agencies.c.id == agency_id))).one()
    alerting.directory_cache.invalidate()
    return _agency_view(row)


@router.delete("/agencies/{agency_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove an agency")
async def remove_agency(runtime: Runtime, _: OperatorKey, alerting: AlertingDep, agency_id: str) -> Response:
    async with runtime.sessions() as session, session.begin():
        removed = await directory_store.remove(session, agency_id, now=runtime.clock.now())
    if not removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such agency")
    alerting.directory_cache.invalidate()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/agencies/{agency_id}/webhook/enable", summary="Re-enable a disabled webhook; held notices resume")
async def enable_webhook(runtime: Runtime, _: OperatorKey, alerting: AlertingDep, agency_id: str) -> AgencyView:
    async with runtime.sessions() as session, session.begin():
        row = (
            await session.execute(
                update(agencies)
                .where(agencies.c.id == agency_id)
                .values(webhook_disabled_at=None, webhook_disabled_reason=None, webhook_failing_since=None)
                .returning(agencies)
            )
        ).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such agency")
        await session.execute(
            update(deliveries)
            .where(deliveries.c.agency_id == agency_id, deliveries.c.status == "held")
            .values(status="pending", next_attempt_at=runtime.clock.now(), first_attempt_at=None, attempts=0)
        )
    alerting.directory_cache.invalidate()
    return _agency_view(row)


@router.post("/agencies/{agency_id}/replay", summary="Send an agency's notices of a time range again")
async def replay(runtime: Runtime, _: OperatorKey, agency_id: str, body: Replay) -> dict[str, int]:
    async with runtime.sessions() as session, session.begin():
        count = await queue.replay(
            session,
            agency_id=agency_id,
            since=body.since,
            until=body.until,
            now=runtime.clock.now(),
            channel=body.channel,
        )
    return {"requeued": count}


@router.get("/rules", summary="The routing rules in force, and why the file on disk is not, if it is not")
async def rules(_: OperatorKey, alerting: AlertingDep) -> dict[str, Any]:
    book = alerting.rules
    return {
        "file": str(book.path),
        "refused": book.refused,
        "rules": [rule.model_dump(mode="json") for rule in book.rules],
    }


@router.post("/rules/reload", summary="Read the rule file now; a broken file is refused, the rules in force kept")
async def reload_rules(runtime: Runtime, _: OperatorKey, alerting: AlertingDep) -> dict[str, Any]:
    async with runtime.sessions() as session:
        directory = await alerting.directory(session)
    try:
        alerting.rules.reload(directory.agencies)
    except ConfigFileError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    return {"loaded": len(alerting.rules.rules)}


@router.get("/events/{event_id}", summary="Which agencies an event went to, and why")
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
    _: OperatorKey,
    delivery_status: Annotated[
        str | None, Query(alias="status", pattern="^(pending|delivered|dead|held|cancelled)$")
    ] = None,
    agency_id: Annotated[str | None, Query(max_length=63)] = None,
    alert_id: UUID | None = None,
) -> list[DeliveryView]:
    statement = select(deliveries).order_by(deliveries.c.id.desc()).limit(200)
    if delivery_status is not None:
        statement = statement.where(deliveries.c.status == delivery_status)
    if agency_id is not None:
        statement = statement.where(deliveries.c.agency_id == agency_id)
    if alert_id is not None:
        statement = statement.where(deliveries.c.alert_id == alert_id)
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
