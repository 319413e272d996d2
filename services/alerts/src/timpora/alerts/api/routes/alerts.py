"""An agency's own alerts: list, read, acknowledge, resolve. Another agency's alert is 404, exactly
like one that does not exist."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import Row, select, tuple_

from timpora.alerts import lifecycle
from timpora.alerts.api.deps import AgencyKey
from timpora.alerts.api.models import Acknowledgement, AlertPage, AlertQuery, AlertView, Resolution
from timpora.alerts.models import alerts
from timpora.common.http.deps import Runtime

router = APIRouter(prefix="/v1/alerts", tags=["alerts (agencies)"])
_NOT_FOUND = "no such alert for your agency"


def view(row: Row[Any]) -> AlertView:
    return AlertView.model_validate(row, from_attributes=True)


def _cursor(row: AlertView) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def _after(cursor: str) -> tuple[datetime, UUID]:
    try:
        created, alert_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), UUID(alert_id)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["query", "after"], "msg": "not a cursor this API returned", "type": "value_error"}],
        ) from None


@router.get("", summary="Your agency's alerts, newest first")
async def list_alerts(runtime: Runtime, key: AgencyKey, query: Annotated[AlertQuery, Query()]) -> AlertPage:
    statement = select(alerts).where(alerts.c.agency_id == key.holder)
    if query.status is not None:
        statement = statement.where(alerts.c.status == query.status)
    if query.event_type is not None:
        statement = statement.where(alerts.c.event_type == query.event_type)
    if query.after is not None:
        statement = statement.where(tuple_(alerts.c.created_at, alerts.c.id) < tuple_(*_after(query.after)))
    statement = statement.order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(query.limit + 1)
    async with runtime.sessions() as session:
        rows = [view(row) for row in (await session.execute(statement)).all()]
    page = rows[: query.limit]
    return AlertPage(alerts=page, next=_cursor(page[-1]) if len(rows) > query.limit else None)


@router.get("/{alert_id}", summary="One of your agency's alerts")
async def get_alert(runtime: Runtime, key: AgencyKey, alert_id: UUID) -> AlertView:
    async with runtime.sessions() as session:
        row = (
            await session.execute(select(alerts).where(alerts.c.id == alert_id, alerts.c.agency_id == key.holder))
        ).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _NOT_FOUND)
    return view(row)


@router.post("/{alert_id}/acknowledge", summary="Say your agency has the alert in hand (stops its escalation)")
async def acknowledge(runtime: Runtime, key: AgencyKey, alert_id: UUID, body: Acknowledgement) -> AlertView:
    change = lifecycle.Change(alert_id, key.holder, f"{body.by} (key {key.key_id})", runtime.clock.now())
    return await _apply(runtime, change, lambda session: lifecycle.acknowledge(session, change))


@router.post("/{alert_id}/resolve", summary="Close the alert, saying what was done")
async def resolve(runtime: Runtime, key: AgencyKey, alert_id: UUID, body: Resolution) -> AlertView:
    change = lifecycle.Change(alert_id, key.holder, f"{body.by} (key {key.key_id})", runtime.clock.now())
    return await _apply(runtime, change, lambda session: lifecycle.resolve(session, change, body.resolution))


async def _apply(runtime: Runtime, change: lifecycle.Change, action: lifecycle.Action) -> AlertView:
    async with runtime.sessions() as session, session.begin():
        try:
            found = await action(session)
        except lifecycle.AlertStateError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, _NOT_FOUND)
        row = (await session.execute(select(alerts).where(alerts.c.id == change.alert_id))).one()
    return view(row)
